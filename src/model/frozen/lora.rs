//! A frozen 1×1 conv with its LoRA adapter in a training step on the CPU, as one node of the autodiff graph.
//!
//! burn's graph ran it as seven ops (the conv, the adapter's two small convs, a scale, a sum and, for expand and
//! head convs, a clamp), each with its own passes over the activations: in wasm the adapters and their ReLU6
//! cost more than the frozen convs they sit on (`tests/bench_train.rs`). Here the forward is one conv with the
//! merged weight `W' = W + s·B·A` (and the ReLU6 in the same pass), and the backward, for `g` the output gradient
//! after the ReLU6 mask and `h = A·x`:
//! - `∂L/∂x = W'ᵀ·g`, one conv with the transposed merged weight;
//! - `∂L/∂B = s · Σ g·hᵀ` and `∂L/∂A = s · Σ (Bᵀ·g)·xᵀ`, summed over the images: products of rank `r`.
//!
//! Every product runs through `pointwise::image` (`y = w·x` for `x` `[k][p]`, `w` `[m][k]`).

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

use super::{FrozenLayer, Pointwise, is_frozen, on_flex_autodiff, relu6_mask, whole};
use crate::model::depthwise::channels_last::transpose;
use crate::model::lora::Lora;
use crate::model::pointwise::image;

/// `relu6?(base(x) + s·B(A(x)))` for a frozen 1×1 `base` and its adapter, as one node under autodiff on flex in
/// wasm; `None` elsewhere (then burn's ops run). Natively flex's `gemm` (AVX2, FMA) runs burn's ops faster: the
/// LoRA step on cached cuts went from 16.5 to 10.6 images/s with this node there (`bench_finetune`).
pub fn lora_tracked(base: &Conv2d, lora: &Lora, x: &Tensor<4>, clamp: bool) -> Option<Tensor<4>> {
    if !cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        return None;
    }
    lora_node(base, lora, x, clamp)
}

fn lora_node(base: &Conv2d, lora: &Lora, x: &Tensor<4>, clamp: bool) -> Option<Tensor<4>> {
    if !on_flex_autodiff(x) || !is_frozen(base) || base.weight.dims()[1] != x.dims()[1] {
        return None;
    }
    let conv = Pointwise::of(base, clamp)?;
    let a = lora.a.val().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let b = lora.b.val().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let x = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let nodes = [x.node(), a.node(), b.node()];
    let adapter = Adapter::new(whole(a.into_primitive())?, whole(b.into_primitive())?, lora.scale, conv);
    let x = whole(x.into_primitive())?;
    let y = adapter.merged.forward(&x);
    let y = match Node.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((adapter, x, y.clone()), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// The adapter's factors and the conv with them merged in.
#[derive(Clone, Debug)]
struct Adapter {
    /// `[r][c_in]`.
    a: Vec<f32>,
    /// `[c_out][r]`.
    b: Vec<f32>,
    rank: usize,
    scale: f32,
    /// The conv with weight `W + s·B·A`.
    merged: Pointwise,
}

impl Adapter {
    fn new(a: FlexTensor, b: FlexTensor, scale: f32, conv: Pointwise) -> Self {
        let rank = a.layout().shape()[0];
        let (a, b) = (a.storage::<f32>().to_vec(), b.storage::<f32>().to_vec());
        let [c_out, c_in] = [conv.bias.len(), conv.c_in()];
        // B·A: `[c_out][r] · [r][c_in]`.
        let mut delta = vec![0f32; c_out * c_in];
        image(&a, &b, &vec![0f32; c_out], [rank, c_in], false, &mut delta);
        let weight: Vec<f32> = conv
            .weight
            .storage::<f32>()
            .iter()
            .zip(&delta)
            .map(|(w, d)| w + scale * d)
            .collect();
        let merged = Pointwise {
            weight: FlexTensor::from_data(TensorData::new(weight, [c_out, c_in])),
            ..conv
        };
        Self {
            a,
            b,
            rank,
            scale,
            merged,
        }
    }

    /// `(∂L/∂A, ∂L/∂B)` from `x` `[n, c_in, h, w]` and the masked output gradient `g` `[n, c_out, h, w]`.
    fn factor_grads(&self, x: &[f32], g: &[f32], pixels: usize) -> (Vec<f32>, Vec<f32>) {
        let (r, c_out, c_in) = (self.rank, self.merged.bias.len(), self.merged.c_in());
        let mut b_t = vec![0f32; r * c_out];
        transpose(&self.b, c_out, r, &mut b_t);
        let (mut grad_a, mut grad_b) = (vec![0f32; r * c_in], vec![0f32; c_out * r]);
        let (mut h, mut h_t, mut gh) = (vec![0f32; r * pixels], vec![0f32; pixels * r], vec![0f32; r * pixels]);
        let (mut x_t, mut part_a, mut part_b) =
            (vec![0f32; pixels * c_in], vec![0f32; r * c_in], vec![0f32; c_out * r]);
        let (zeros_r, zeros_out) = (vec![0f32; r], vec![0f32; c_out]);
        for (x, g) in x.chunks_exact(c_in * pixels).zip(g.chunks_exact(c_out * pixels)) {
            // h = A·x, then ∂L/∂B += g·hᵀ.
            image(x, &self.a, &zeros_r, [c_in, pixels], false, &mut h);
            transpose(&h, r, pixels, &mut h_t);
            image(&h_t, g, &zeros_out, [pixels, r], false, &mut part_b);
            grad_b.iter_mut().zip(&part_b).for_each(|(s, v)| *s += v);
            // Bᵀ·g, then ∂L/∂A += (Bᵀ·g)·xᵀ.
            image(g, &b_t, &zeros_r, [c_out, pixels], false, &mut gh);
            transpose(x, c_in, pixels, &mut x_t);
            image(&x_t, &gh, &zeros_r, [pixels, c_in], false, &mut part_a);
            grad_a.iter_mut().zip(&part_a).for_each(|(s, v)| *s += v);
        }
        for v in grad_a.iter_mut().chain(grad_b.iter_mut()) {
            *v *= self.scale;
        }
        (grad_a, grad_b)
    }
}

#[derive(Debug)]
struct Node;

impl Backward<Flex, 3> for Node {
    /// The adapter, the input and the output.
    type State = (Adapter, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_a, node_b] = ops.parents;
        let (adapter, x, y) = ops.state;
        let grad = whole(grads.consume::<Flex>(&ops.node)).expect("an f32 gradient");
        let shape = grad.layout().shape().to_vec();
        let mut g = grad.storage::<f32>().to_vec();
        let merged = &adapter.merged;
        if merged.clamp {
            relu6_mask(&mut g, y.storage());
        }
        let g = FlexTensor::from_data(TensorData::new(g, shape.clone()));
        if node_a.is_some() || node_b.is_some() {
            let (grad_a, grad_b) = adapter.factor_grads(x.storage(), g.storage(), shape[2] * shape[3]);
            let (r, c_in, c_out) = (adapter.rank, merged.c_in(), merged.bias.len());
            if let Some(node) = node_a {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(grad_a, [r, c_in])));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(grad_b, [c_out, r])));
            }
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, merged.transposed_product(&g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use burn::module::{Module, Param};
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::activation::relu6;
    use burn::tensor::{Device, Distribution};

    /// Output and the gradients for x, A and B against burn's ops for the same adapter, with and without the
    /// ReLU6, on shapes with remainders after every tile.
    #[test]
    fn lora_node_matches_burn() {
        let device = Device::flex().autodiff();
        for (c_in, c_out, rank, size) in [(24, 40, 4, 5), (130, 9, 16, 7), (7, 33, 3, 3)] {
            let conv = Conv2dConfig::new([c_in, c_out], [1, 1]).init(&device).no_grad();
            let mut lora = Lora::new(c_in, c_out, rank, 2.0 * rank as f32, &mut Rng::new(1), &device);
            lora.b = Param::from_tensor(Tensor::random([c_out, rank], Distribution::Normal(0.0, 0.3), &device));
            let x = Tensor::<4>::random([3, c_in, size, size], Distribution::Normal(0.0, 8.0), &device).require_grad();
            for clamp in [false, true] {
                let run = |ours: bool| {
                    let y = if ours {
                        lora_node(&conv, &lora, &x, clamp).expect("runs as one node")
                    } else {
                        let y = conv.forward(x.clone()) + lora.forward(x.clone());
                        if clamp { relu6(y) } else { y }
                    };
                    let n = y.dims().iter().product::<usize>();
                    let weights: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
                    let grads = (y.clone() * Tensor::from_data(TensorData::new(weights, y.dims()), &device))
                        .sum()
                        .backward();
                    let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
                    let flat = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
                    [
                        values(y.inner()),
                        values(x.grad(&grads).unwrap()),
                        flat(lora.a.val().grad(&grads).unwrap()),
                        flat(lora.b.val().grad(&grads).unwrap()),
                    ]
                };
                let (ours, burns) = (run(true), run(false));
                for (what, (o, b)) in ["output", "∂x", "∂A", "∂B"].iter().zip(ours.iter().zip(&burns)) {
                    assert_eq!(o.len(), b.len(), "{what}");
                    let scale = crate::floats::max_abs(b).max(1.0);
                    let gap = crate::floats::max_abs_diff(o, b) / scale;
                    assert!(
                        gap < 1e-5,
                        "{c_in}→{c_out} r{rank} {size}², clamp {clamp}: {what} differs by {gap}"
                    );
                }
                if clamp {
                    assert!(ours[0].contains(&0.0) && ours[0].contains(&6.0), "nothing clipped");
                }
            }
        }
    }
}
