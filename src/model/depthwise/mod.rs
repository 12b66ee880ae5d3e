//! Each block's depthwise k×k conv + ReLU6 on the CPU, in two kernels, both bit for bit what flex computes, and
//! the stem conv (`conv_relu6`) row by row.
//!
//! - **Row by row** (`rows.rs`; output rows 14 wide or more): each channel's plane is copied with its zero padding, and each
//!   output row is summed 16 values at a time in registers, a weight broadcast per tap; at stride 2 a vector takes
//!   every second value of two. flex's own loop is far slower here (2.0–2.9× from the 112×112 to the 14×14 planes
//!   in wasm in one run of `bench/cpu.sh`; as fast or faster natively).
//! - **Channels-last** (`channels_last.rs`; the 7×7 outputs): a 7-wide row leaves most of each vector empty, so the inner loop runs over
//!   channels instead (multiples of 16 in this model), the price being two transposes: 1.4–2.1× flex's speed.
//!
//! The sum is taken in flex's order (taps row by row, bias last, no fused multiply-add; padding taps add zeros,
//! which change nothing), so the output equals flex's bit for bit. Under autodiff on flex, a frozen depthwise conv
//! runs these kernels as one node of the graph, its input gradient too (`grad.rs`, `frozen`); other devices and
//! trainable convs run burn's conv.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu6;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

use super::frozen::{FrozenLayer, is_frozen, on_flex_autodiff, param_values, relu6_mask, tracked};
use super::lora::{to_nchw, to_nhwc};

pub(crate) mod channels_last;
mod grad;
mod rows;

/// From this plane width on, a layer runs row by row (NCHW) rather than channels-last.
const ROWS_FROM: usize = 14;

/// `relu6(conv(x))` for a depthwise `conv` (one group per channel): our kernels on flex, as one node of the
/// graph with our backward for a frozen conv under autodiff (`frozen`), burn's conv elsewhere.
pub fn depthwise_relu6(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if let Some(y) = on_flex(conv, &x) {
        return y;
    }
    if on_flex_autodiff(&x)
        && is_frozen(conv)
        && let Some(layer) = Depthwise::of(conv, x.dims(), None)
        && let Some(y) = tracked(layer, x.clone())
    {
        return y;
    }
    relu6(conv.forward(x))
}

/// `relu6(conv(x))` for a depthwise `conv` on channels-last `x` `[n, h, w, c]` → `[n, h', w', c]`: the GPU path
/// (`lora::channels_last`). burn's direct conv computes channels-last, so handing it the input and the weight as
/// NCHW views of channels-last memory spares it a copy of each.
pub fn depthwise_relu6_nhwc(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return to_nhwc(relu6(conv.forward(to_nchw(x))));
    };
    let [c, _, kh, kw] = conv.weight.dims();
    let options =
        ConvOptions::new_with_padding(conv.stride, [(top, bottom), (left, right)], conv.dilation, conv.groups);
    // `[c, 1, kh, kw]` and `[c, kh, kw, 1]` hold the same numbers in the same order; the view puts the (size-1)
    // input-channel dim innermost, as the kernel wants it.
    let weight = conv.weight.val().reshape([c, kh, kw, 1]).permute([0, 3, 1, 2]);
    let y = conv2d(to_nchw(x), weight, conv.bias.as_ref().map(|b| b.val()), options);
    relu6(to_nhwc(y))
}

/// The shape of one depthwise layer.
#[derive(Clone, Debug)]
struct Geometry {
    channels: usize,
    in_h: usize,
    in_w: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Zero rows above and columns left of the input (the rest of the padding only shapes `out_h`, `out_w`).
    top: usize,
    left: usize,
    out_h: usize,
    out_w: usize,
    /// Whether the output is clamped to [0, 6] (the layers' ReLU6); not for the input gradient (`grad.rs`).
    relu6: bool,
}

impl Geometry {
    fn activate(&self, v: f32) -> f32 {
        if self.relu6 { v.clamp(0.0, 6.0) } else { v }
    }

    /// Row by row (NCHW) or channels-last, as the output's width decides.
    fn by_rows(&self) -> bool {
        self.out_w >= ROWS_FROM && matches!(self.stride, [1, 1] | [2, 2])
    }

    /// `y` `[n, c, out_h, out_w]` from `x` `[n, c, in_h, in_w]` and the weight `[c, 1, k_h, k_w]`.
    fn run(&self, by_rows: bool, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
        let forward = if by_rows { rows::forward } else { channels_last::forward };
        forward(self, x, weight, bias, y);
    }
}

/// A depthwise conv + ReLU6 as plain arrays: the forward, and (`frozen::FrozenLayer`) the input gradient.
#[derive(Clone, Debug)]
pub(crate) struct Depthwise {
    g: Geometry,
    weight: Vec<f32>,
    bias: Vec<f32>,
    by_rows: bool,
}

impl Depthwise {
    /// The layer of `conv` on input of shape `dims`, row by row (`Some(true)`), channels-last (`Some(false)`) or
    /// as the plane's size decides (`None`); `None` for a conv of another kind.
    fn of(conv: &Conv2d, dims: [usize; 4], rows: Option<bool>) -> Option<Self> {
        let [_, channels, _, _] = dims;
        let [k_h, k_w] = conv.kernel_size;
        if conv.groups != channels || conv.weight.dims() != [channels, 1, k_h, k_w] {
            return None;
        }
        let g = geometry(conv, dims)?;
        // The input gradient mirrors the padding (`grad.rs`): at most k − 1 before the input.
        if g.top >= k_h || g.left >= k_w {
            return None;
        }
        let by_rows = rows.unwrap_or(g.by_rows()) && matches!(conv.stride, [1, 1] | [2, 2]);
        let (weight, bias) = operands(conv)?;
        Some(Self {
            g,
            weight,
            bias,
            by_rows,
        })
    }
}

impl FrozenLayer for Depthwise {
    fn forward(&self, x: &FlexTensor) -> FlexTensor {
        let n = x.layout().shape()[0];
        let g = &self.g;
        let mut y = vec![0f32; n * g.channels * g.out_h * g.out_w];
        g.run(self.by_rows, x.storage(), &self.weight, &self.bias, &mut y);
        FlexTensor::from_data(TensorData::new(y, [n, g.channels, g.out_h, g.out_w]))
    }

    fn input_grad(&self, y: &FlexTensor, grad: FlexTensor) -> FlexTensor {
        let n = grad.layout().shape()[0];
        let mut grad = grad.storage::<f32>().to_vec();
        relu6_mask(&mut grad, y.storage());
        let gx = grad::input_grad(&self.g, &self.weight, grad, n);
        FlexTensor::from_data(TensorData::new(gx, [n, self.g.channels, self.g.in_h, self.g.in_w]))
    }
}

fn on_flex(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    on_flex_by(conv, x, None)
}

/// [`on_flex`] row by row (`Some(true)`), channels-last (`Some(false)`) or as the plane's size decides (`None`).
fn on_flex_by(conv: &Conv2d, x: &Tensor<4>, rows: Option<bool>) -> Option<Tensor<4>> {
    if x.device() != Device::flex() {
        return None;
    }
    let layer = Depthwise::of(conv, x.dims(), rows)?;
    let y = layer.forward(&f32_values(x.clone())?);
    Some(Tensor::from_primitive::<Flex>(y))
}

/// `relu6(conv(x))` for a dense `conv` (one group) with few input channels: the stem, 3 → 32 channels at stride 2
/// on the 224×224 input. On flex it runs row by row like the large depthwise planes, each output channel summing
/// every input plane's taps: 1.9–2.2× flex's im2col and matrix product in wasm (`bench/cpu.sh`). The sum's order
/// differs from flex's, so the output agrees to rounding, not bit for bit.
pub fn conv_relu6(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match dense_on_flex(conv, &x) {
        Some(y) => y,
        None => relu6(conv.forward(x)),
    }
}

fn dense_on_flex(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let [n, c_in, _, _] = x.dims();
    let c_out = conv.weight.dims()[0];
    if conv.groups != 1 || conv.weight.dims()[1] != c_in || c_in > 4 || !matches!(conv.stride, [1, 1] | [2, 2]) {
        return None;
    }
    if x.device() != Device::flex() {
        return None;
    }
    let g = geometry(conv, x.dims())?;
    let (weight, bias) = operands(conv)?;
    let x = f32_values(x.clone())?;
    let mut y = vec![0f32; n * c_out * g.out_h * g.out_w];
    rows::dense(&g, c_in, x.storage(), &weight, &bias, &mut y);
    let y = FlexTensor::from_data(TensorData::new(y, [n, c_out, g.out_h, g.out_w]));
    Some(Tensor::from_primitive::<Flex>(y))
}
/// The layer's shape, for a conv with explicit padding and no dilation on input of shape `dims`.
fn geometry(conv: &Conv2d, dims: [usize; 4]) -> Option<Geometry> {
    if conv.dilation != [1, 1] {
        return None;
    }
    let [_, channels, in_h, in_w] = dims;
    let kernel = conv.kernel_size;
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return None;
    };
    let out = |size: usize, k: usize, s: usize, pad: usize| (size + pad).checked_sub(k).map(|span| span / s + 1);
    Some(Geometry {
        channels,
        in_h,
        in_w,
        kernel,
        stride: conv.stride,
        top,
        left,
        out_h: out(in_h, kernel[0], conv.stride[0], top + bottom)?,
        out_w: out(in_w, kernel[1], conv.stride[1], left + right)?,
        relu6: true,
    })
}

/// The weight and the bias (zeros without one) as f32 values.
fn operands(conv: &Conv2d) -> Option<(Vec<f32>, Vec<f32>)> {
    let c_out = conv.weight.dims()[0];
    let bias = match &conv.bias {
        Some(bias) => param_values(bias.val())?.storage::<f32>().to_vec(),
        None => vec![0f32; c_out],
    };
    Some((param_values(conv.weight.val())?.storage::<f32>().to_vec(), bias))
}

/// The tensor's flex primitive as contiguous f32 values from offset 0 (`storage` is then exactly its values).
pub(super) fn f32_values<const D: usize>(t: Tensor<D>) -> Option<FlexTensor> {
    let t = t.try_into_primitive::<Flex>().ok()?;
    if t.dtype() != DType::F32 {
        return None;
    }
    let whole =
        t.is_contiguous() && t.layout().start_offset() == 0 && t.storage::<f32>().len() == t.layout().num_elements();
    Some(if whole { t } else { FlexTensor::from_data(t.into_data()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::efficientnet::tf_same_padding;
    use crate::model::frozen::tests::check_against_burn;
    use burn::module::Module;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// Every depthwise shape of the model's kinds (3×3 and 5×5, stride 1 and 2, TF-SAME padding), with channel
    /// counts that leave a remainder after the blocks of 16 and rows that leave one after the runs of 16, equals
    /// burn's conv + ReLU6 on flex bit for bit, channels-last and row by row.
    #[test]
    fn equals_flex_conv_bit_for_bit() {
        let device = Device::flex();
        for (channels, size, kernel, stride) in [
            (16, 9, 3, 1),
            (19, 10, 3, 2),
            (35, 7, 5, 1),
            (48, 14, 5, 2),
            (5, 4, 3, 2),
            (3, 40, 3, 1),
            (2, 37, 5, 2),
        ] {
            let conv = Conv2dConfig::new([channels, channels], [kernel, kernel])
                .with_stride([stride, stride])
                .with_groups(channels)
                .with_padding(tf_same_padding(size, kernel, stride))
                .init(&device);
            // Scaled so that part of the output clips at 0 and at 6.
            let x = Tensor::<4>::random([2, channels, size, size], Distribution::Normal(0.0, 20.0), &device);
            let burns = relu6(conv.forward(x.clone())).into_data();
            for rows in [false, true] {
                let ours = on_flex_by(&conv, &x, Some(rows)).unwrap().into_data();
                let case = format!("{channels} ch, {size}², k{kernel} s{stride}, by rows {rows}");
                assert_eq!(ours.shape(), burns.shape(), "{case}");
                let (a, b) = (ours.try_to_vec::<f32>().unwrap(), burns.try_to_vec::<f32>().unwrap());
                let differ = a.iter().zip(&b).filter(|(p, q)| p.to_bits() != q.to_bits()).count();
                assert_eq!(differ, 0, "{case}: {differ} of {} differ", a.len());
                assert!(a.contains(&0.0) && a.contains(&6.0) && a.iter().any(|&v| v > 0.0 && v < 6.0));
            }
        }
    }

    /// As a frozen node under autodiff, the output and the input gradient are burn's conv + ReLU6's, by rows and
    /// channels-last, at strides 1 and 2.
    #[test]
    fn frozen_node_matches_burn() {
        let device = Device::flex().autodiff();
        for (channels, size, kernel, stride) in [
            (16, 9, 3, 1),
            (19, 10, 3, 2),
            (35, 7, 5, 1),
            (6, 14, 5, 2),
            (3, 16, 3, 1),
        ] {
            let conv = Conv2dConfig::new([channels, channels], [kernel, kernel])
                .with_stride([stride, stride])
                .with_groups(channels)
                .with_padding(tf_same_padding(size, kernel, stride))
                .init(&device)
                .no_grad();
            let x = Tensor::<4>::random([2, channels, size, size], Distribution::Normal(0.0, 8.0), &device);
            for rows in [false, true] {
                let case = format!("{channels} ch, {size}², k{kernel} s{stride}, by rows {rows}, clamp true");
                check_against_burn(
                    x.clone(),
                    |x| tracked(Depthwise::of(&conv, x.dims(), Some(rows))?, x),
                    |x| relu6(conv.forward(x)),
                    &case,
                );
            }
        }
    }

    /// The stem's dense conv, row by row, agrees with flex's to rounding (its sum runs in another order).
    #[test]
    fn dense_conv_matches_flex() {
        let device = Device::flex();
        for (c_in, c_out, size, kernel, stride) in [(3, 32, 36, 3, 2), (2, 5, 19, 3, 1), (3, 4, 23, 5, 2)] {
            let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(tf_same_padding(size, kernel, stride))
                .init(&device);
            let x = Tensor::<4>::random([2, c_in, size, size], Distribution::Normal(0.0, 20.0), &device);
            let ours = dense_on_flex(&conv, &x).expect("runs on flex");
            let flex = relu6(conv.forward(x));
            assert_eq!(ours.dims(), flex.dims());
            let gap: f32 = (ours.clone() - flex).abs().max().into_scalar();
            assert!(
                gap < 1e-4,
                "{c_in}→{c_out}, {size}², k{kernel} s{stride}: differs by {gap}"
            );
            let values = ours.into_data().try_to_vec::<f32>().unwrap();
            assert!(values.contains(&0.0) && values.contains(&6.0));
        }
    }
}
