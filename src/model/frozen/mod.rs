//! Frozen convolutions inside a training step on the CPU (flex under autodiff): the forward by our kernels, and
//! the gradient for the input, the one the step needs from a frozen layer, by our kernels too.
//!
//! burn's autodiff runs flex's own conv both ways: the forward that our kernels beat 1.7–2.9× in wasm, and the
//! input gradient as a transposed convolution, for a depthwise conv a matrix product per channel and image.
//! Here a frozen layer becomes one node of the graph whose backward is our code: a 1×1 conv's input gradient is
//! the 1×1 conv with the transposed weight, a depthwise conv's is the depthwise conv of the (zero-dilated, at
//! stride 2) output gradient with the kernel flipped. The ReLU6 after either is part of the node; its gradient
//! mask comes from the output, kept for the backward pass.

use std::fmt::Debug;
use std::marker::PhantomData;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

use super::depthwise::channels_last::transpose;
use super::depthwise::f32_values;
use super::pointwise::image;

mod lora;
pub use lora::lora_tracked;

/// A frozen layer as plain arrays: its forward, and its input gradient.
pub(crate) trait FrozenLayer: Clone + Send + Debug + 'static {
    /// The output for `x` (contiguous f32 values from offset 0, as `f32_values` gives them).
    fn forward(&self, x: &FlexTensor) -> FlexTensor;
    /// The gradient for the input from the output's, `y` being what `forward` returned.
    fn input_grad(&self, y: &FlexTensor, grad: FlexTensor) -> FlexTensor;
}

/// Whether `x` lives on flex under autodiff (a training step on the CPU).
pub(crate) fn on_flex_autodiff(x: &Tensor<4>) -> bool {
    let device = x.device();
    device.is_autodiff() && device.without_autodiff() == Device::flex()
}

/// Whether a conv's parameters are all frozen (no gradient wanted for them).
pub(crate) fn is_frozen(conv: &Conv2d) -> bool {
    !conv.weight.val().is_require_grad() && conv.bias.as_ref().is_none_or(|b| !b.val().is_require_grad())
}

/// A parameter's values on flex, from a tensor on flex with or without autodiff.
pub(crate) fn param_values<const D: usize>(t: Tensor<D>) -> Option<FlexTensor> {
    let t = if t.device().is_autodiff() { t.inner() } else { t };
    f32_values(t)
}

/// `layer(x)` as one node of the autodiff graph on flex, or `None` when `x` is not an f32 tensor there.
pub(crate) fn tracked<L: FrozenLayer>(layer: L, x: Tensor<4>) -> Option<Tensor<4>> {
    let x = x.try_into_primitive::<Autodiff<Flex>>().ok()?;
    let node = x.node();
    let values = whole(x.into_primitive())?;
    let y = match Node::<L>(PhantomData)
        .prepare::<NoCheckpointing>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = layer.forward(&values);
            prep.finish((layer, y.clone()), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(layer.forward(&values)),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// A flex primitive as contiguous f32 values from offset 0.
fn whole(t: FlexTensor) -> Option<FlexTensor> {
    f32_values(Tensor::<4>::from_primitive::<Flex>(t))
}

#[derive(Debug)]
struct Node<L>(PhantomData<L>);

impl<L: FrozenLayer> Backward<Flex, 1> for Node<L> {
    /// The layer and its output.
    type State = (L, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (layer, y) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let grad = whole(grad).expect("an f32 gradient");
            layer.input_grad(&y, grad)
        });
    }
}

/// Zeroes the gradient where ReLU6 clipped its output (`y` at 0 or 6): nothing passes there.
pub(crate) fn relu6_mask(grad: &mut [f32], y: &[f32]) {
    for (g, &y) in grad.iter_mut().zip(y) {
        if !(y > 0.0 && y < 6.0) {
            *g = 0.0;
        }
    }
}

/// A frozen 1×1 conv (stride 1, no padding, one group), ReLU6 after it when `clamp`.
#[derive(Clone, Debug)]
pub(crate) struct Pointwise {
    /// `[c_out, c_in]`.
    weight: FlexTensor,
    bias: Vec<f32>,
    clamp: bool,
}

impl Pointwise {
    /// The layer of `conv`, or `None` for a conv of another kind.
    pub fn of(conv: &Conv2d, clamp: bool) -> Option<Self> {
        let [c_out, c_in, _, _] = conv.weight.dims();
        let unpadded = match conv.padding {
            PaddingConfig2d::Valid => true,
            PaddingConfig2d::Explicit(top, left, bottom, right) => top + left + bottom + right == 0,
            _ => false,
        };
        let plain = conv.kernel_size == [1, 1] && conv.stride == [1, 1] && conv.groups == 1 && unpadded;
        if !plain || conv.weight.dims() != [c_out, c_in, 1, 1] {
            return None;
        }
        let bias = match &conv.bias {
            Some(bias) => param_values(bias.val())?.storage::<f32>().to_vec(),
            None => vec![0f32; c_out],
        };
        Some(Self {
            weight: param_values(conv.weight.val())?,
            bias,
            clamp,
        })
    }

    fn c_in(&self) -> usize {
        self.weight.layout().shape()[1]
    }
}

/// `y = w · x + b` per image for `x` `[n, c_in, h, w]`, weight `[c_out][c_in]` → `[n, c_out, h, w]`.
fn per_image(x: &FlexTensor, w: &[f32], bias: &[f32], clamp: bool) -> FlexTensor {
    let dims = x.layout().shape();
    let [n, c_in, h, wd] = [dims[0], dims[1], dims[2], dims[3]];
    let c_out = bias.len();
    let pixels = h * wd;
    let mut y = vec![0f32; n * c_out * pixels];
    for (x, y) in x
        .storage::<f32>()
        .chunks_exact(c_in * pixels)
        .zip(y.chunks_exact_mut(c_out * pixels))
    {
        image(x, w, bias, [c_in, pixels], clamp, y);
    }
    FlexTensor::from_data(TensorData::new(y, [n, c_out, h, wd]))
}

impl FrozenLayer for Pointwise {
    fn forward(&self, x: &FlexTensor) -> FlexTensor {
        per_image(x, self.weight.storage(), &self.bias, self.clamp)
    }

    fn input_grad(&self, y: &FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !self.clamp {
            return self.transposed_product(&grad);
        }
        let mut values = grad.storage::<f32>().to_vec();
        relu6_mask(&mut values, y.storage());
        self.transposed_product(&FlexTensor::from_data(TensorData::new(
            values,
            grad.layout().shape().to_vec(),
        )))
    }
}

impl Pointwise {
    /// `Wᵀ·g` per image: the input gradient for an output gradient `g` already masked by the ReLU6.
    fn transposed_product(&self, g: &FlexTensor) -> FlexTensor {
        let (c_out, c_in) = (self.bias.len(), self.c_in());
        let mut transposed = vec![0f32; c_in * c_out];
        transpose(self.weight.storage(), c_out, c_in, &mut transposed);
        per_image(g, &transposed, &vec![0f32; c_in], false)
    }
}

/// `conv(x)`, then ReLU6 when `clamp`, for a frozen 1×1 `conv` in a training step on the CPU in wasm (natively
/// flex's `gemm` has AVX2 and FMA kernels, as in `pointwise`); `None` elsewhere.
pub fn pointwise_tracked(conv: &Conv2d, x: &Tensor<4>, clamp: bool) -> Option<Tensor<4>> {
    if !cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        return None;
    }
    pointwise_node(conv, x, clamp)
}

fn pointwise_node(conv: &Conv2d, x: &Tensor<4>, clamp: bool) -> Option<Tensor<4>> {
    if !on_flex_autodiff(x) || !is_frozen(conv) || conv.weight.dims()[1] != x.dims()[1] {
        return None;
    }
    tracked(Pointwise::of(conv, clamp)?, x.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::relu6;

    /// Output and input gradient of `ours` against burn's conv (+ ReLU6) under autodiff, for a loss that weighs
    /// every output differently.
    pub(crate) fn check_against_burn(
        x: Tensor<4>,
        ours: impl Fn(Tensor<4>) -> Option<Tensor<4>>,
        burns: impl Fn(Tensor<4>) -> Tensor<4>,
        case: &str,
    ) {
        let run = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            let x = x.clone().require_grad();
            let y = f(x.clone());
            let n = y.dims().iter().product::<usize>();
            let weights: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let weights = Tensor::<4>::from_data(TensorData::new(weights, y.dims()), &y.device());
            let loss = (y.clone() * weights).sum();
            let grads = loss.backward();
            let gx = x.grad(&grads).expect("a gradient for x");
            (
                y.inner().into_data().try_to_vec::<f32>().unwrap(),
                gx.into_data().try_to_vec::<f32>().unwrap(),
            )
        };
        let (y_ours, g_ours) = run(&|x| ours(x).expect("runs as a frozen node"));
        let (y_burn, g_burn) = run(&burns);
        let gap = |a: &[f32], b: &[f32]| crate::floats::max_abs_diff(a, b) / crate::floats::max_abs(b).max(1.0);
        assert_eq!(y_ours.len(), y_burn.len(), "{case}");
        assert_eq!(g_ours.len(), g_burn.len(), "{case}");
        assert!(
            gap(&y_ours, &y_burn) < 1e-5,
            "{case}: outputs differ by {}",
            gap(&y_ours, &y_burn)
        );
        assert!(
            gap(&g_ours, &g_burn) < 1e-5,
            "{case}: input gradients differ by {}",
            gap(&g_ours, &g_burn)
        );
        let clipped = y_ours.contains(&0.0) && y_ours.contains(&6.0);
        assert!(
            clipped || !case.contains("clamp true"),
            "{case}: no output clipped at 0 and at 6"
        );
    }

    #[test]
    fn pointwise_node_matches_burn() {
        let device = Device::flex().autodiff();
        for (c_in, c_out, size) in [(16, 24, 7), (130, 7, 9), (35, 6, 5)] {
            let conv = Conv2dConfig::new([c_in, c_out], [1, 1]).init(&device).no_grad();
            let x = Tensor::<4>::random([2, c_in, size, size], Distribution::Normal(0.0, 8.0), &device);
            for clamp in [false, true] {
                let case = format!("{c_in}→{c_out} at {size}², clamp {clamp}");
                check_against_burn(
                    x.clone(),
                    |x| pointwise_node(&conv, &x, clamp),
                    |x| if clamp { relu6(conv.forward(x)) } else { conv.forward(x) },
                    &case,
                );
            }
        }
    }

    /// Trainable convs keep burn's path: the node gives no gradient for the weight.
    #[test]
    fn trainable_convs_are_left_to_burn() {
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([4, 4], [1, 1]).init(&device);
        let x = Tensor::<4>::zeros([1, 4, 2, 2], &device);
        assert!(pointwise_node(&conv, &x, false).is_none());
        assert!(pointwise_node(&conv.no_grad(), &Tensor::zeros([1, 4, 2, 2], &Device::flex()), false).is_none());
    }
}
