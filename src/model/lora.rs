//! LoRA (Hu et al., 2021) on 1×1 convolutions: the frozen conv plus a trainable low-rank change.
//!
//! `y = conv(x) + scale · B(A(x))` with A `[r, c_in]` (random, std 1/√c_in) and B `[c_out, r]` (zeros), so a
//! fresh adapter leaves the pretrained output unchanged and only `r·(c_in + c_out)` numbers train. The conv
//! keeps its BN-folded weight and bias; merging adds `scale · B·A` to that weight.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu6;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::frozen::lora_tracked;
use super::pointwise::conv1x1;
use crate::rng::Rng;

/// The low-rank adapter of one 1×1 conv.
#[derive(Module, Debug)]
pub struct Lora {
    /// `[rank, c_in]`.
    pub a: Param<Tensor<2>>,
    /// `[c_out, rank]`.
    pub b: Param<Tensor<2>>,
    /// α / rank.
    pub scale: f32,
}

/// A standard normal draw (Box–Muller) from the crate's seeded generator.
pub fn normal(rng: &mut Rng) -> f32 {
    let u1 = (rng.next_f32() as f64).max(1e-12);
    let u2 = rng.next_f32() as f64;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

impl Lora {
    /// A fresh adapter for a conv `c_in → c_out`: A ~ N(0, 1/c_in) drawn from `rng`, B = 0, scale α/rank.
    pub fn new(c_in: usize, c_out: usize, rank: usize, alpha: f32, rng: &mut Rng, device: &Device) -> Self {
        let std = 1.0 / (c_in as f32).sqrt();
        let a: Vec<f32> = (0..rank * c_in).map(|_| normal(rng) * std).collect();
        Self {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(a, [rank, c_in]), device)),
            b: Param::from_tensor(Tensor::zeros([c_out, rank], device)),
            scale: alpha / rank as f32,
        }
    }

    pub fn rank(&self) -> usize {
        self.a.dims()[0]
    }

    /// The adapter's contribution `scale · B(A(x))` for `x` `[n, c_in, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [rank, c_in] = self.a.dims();
        let c_out = self.b.dims()[0];
        if gpu_products(&x) {
            return matmul_1x1(self.b.val(), matmul_1x1(self.a.val(), x)).mul_scalar(self.scale);
        }
        let options = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let h = conv2d(x, self.a.val().reshape([rank, c_in, 1, 1]), None, options());
        conv2d(h, self.b.val().reshape([c_out, rank, 1, 1]), None, options()).mul_scalar(self.scale)
    }

    /// `scale · B·A` as a conv weight `[c_out, c_in, 1, 1]`.
    pub fn delta_weight(&self) -> Tensor<4> {
        let [_, c_in] = self.a.dims();
        let c_out = self.b.dims()[0];
        self.b
            .val()
            .matmul(self.a.val())
            .mul_scalar(self.scale)
            .reshape([c_out, c_in, 1, 1])
    }

    /// The frozen conv with this adapter folded in: weight `W + scale · B·A`, bias unchanged.
    pub fn merge(&self, base: &Conv2d) -> Conv2d {
        let mut merged = base.clone();
        let weight = base.weight.val() + self.delta_weight();
        merged.weight = Param::from_tensor(weight.detach());
        merged
    }
}

/// Whether `x` lives on a GPU (anything but the flex CPU backend).
fn on_gpu(x: &Tensor<4>) -> bool {
    x.device().without_autodiff() != Device::flex()
}

/// How a GPU runs 1×1 convs, chosen by where it runs because that decides which kernels burn has there.
/// Natively (Vulkan) they run as matrix products: burn's matmul uses the tensor cores, and on an H200 its direct
/// conv (what `conv2d` runs without autotune) took 94 % of the backbone's GPU time. In a browser, WebGPU offers no
/// cooperative-matrix units, so the matmul falls back to a per-thread tiled kernel that, for our shapes (`n·h·w`
/// rows, up to 1,152 channels), launches a handful of workgroups that each walk the whole product: on an H200 in
/// Chromium a block cost ~3 ms + 9 µs per channel whatever the batch. There inference runs our tiled kernel
/// (`tiled_1x1`) and training burn's direct conv, which alone ran the embedding 35× faster at batch 1, 7× at
/// batch 64, and the fine-tuning step 3.4–4.2× (bench/results/2026-12-02-h200-browser.md). The flex CPU backend
/// has its own 1×1 kernel (`pointwise::conv1x1`).
const GPU_PRODUCTS: bool = !cfg!(target_arch = "wasm32");

fn gpu_products(x: &Tensor<4>) -> bool {
    GPU_PRODUCTS && on_gpu(x)
}

/// `linear(x)` for `x` `[n, d_in]`; in a browser on a GPU as a 1×1 conv of `[n, d_in, 1, 1]` for the reason of
/// `GPU_PRODUCTS` (the classifier's `[n, 1280] · [1280, k]` is one of the shapes burn's fallback matmul walks in a
/// handful of workgroups). Differentiable either way.
pub fn dense(linear: &Linear, x: Tensor<2>) -> Tensor<2> {
    if GPU_PRODUCTS || x.device().without_autodiff() == Device::flex() {
        return linear.forward(x);
    }
    let [n, d_in] = x.dims();
    let d_out = linear.weight.dims()[1];
    let weight = linear.weight.val().transpose().reshape([d_out, d_in, 1, 1]);
    let bias = linear.bias.as_ref().map(|b| b.val());
    let y = conv2d(
        x.reshape([n, d_in, 1, 1]),
        weight,
        bias,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    );
    y.reshape([n, d_out])
}

/// Whether `x` runs the blocks channels-last (`[n, h, w, c]` in memory): inference on a GPU, each 1×1 conv as one
/// product of pixel rows `[n·h·w, c_in] · [c_in, c_out]` natively, or our tiled kernel in a browser
/// (`GPU_PRODUCTS`). burn's direct conv (the depthwise convs) computes channels-last and copies NCHW input into
/// that layout first; kept channels-last between layers, nothing is copied, and the embedding at batch 64 ran
/// 1.4× faster on an H200. Training (autodiff) keeps NCHW, natively with a product per image (`matmul_1x1`):
/// burn's untuned matmul ran the backward of the row products 2–5× slower than their forward, and the LoRA step
/// at half the speed.
pub fn channels_last(x: &Tensor<4>) -> bool {
    on_gpu(x) && !x.device().is_autodiff()
}

/// `[n, c, h, w]` → `[n, h, w, c]`, a view: no copy when the memory is already channels-last.
pub fn to_nhwc(x: Tensor<4>) -> Tensor<4> {
    x.permute([0, 2, 3, 1])
}

/// `[n, h, w, c]` → `[n, c, h, w]`, a view.
pub fn to_nchw(x: Tensor<4>) -> Tensor<4> {
    x.permute([0, 3, 1, 2])
}

/// A 1×1 conv (stride 1, no padding, one group) with its optional adapter on channels-last `x` `[n, h, w, c_in]`:
/// `base(x) + scale · B(A(x))` as `[n, h, w, c_out]`.
pub fn conv_rows(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>) -> Tensor<4> {
    rows(base, lora, x, false)
}

/// [`conv_rows`] followed by ReLU6, in the same kernel where ours runs (`tiled_1x1`, in a browser).
pub fn conv_rows_relu6(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>) -> Tensor<4> {
    rows(base, lora, x, true)
}

fn rows(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>, clamp: bool) -> Tensor<4> {
    let [n, h, w, c_in] = x.dims();
    let c_out = base.weight.dims()[0];
    let mut weight = base.weight.val().reshape([c_out, c_in]);
    // Inference only (no gradients), so the adapter is folded into the weight: one product of the pixel rows.
    if let Some(lora) = lora {
        weight = weight + lora.b.val().matmul(lora.a.val()).mul_scalar(lora.scale);
    }
    let bias = base.bias.as_ref().map(|b| b.val());
    #[cfg(target_arch = "wasm32")]
    if let Some(b) = &bias
        && let Some(y) = super::tiled_1x1::conv1x1(&x, &weight, b, clamp)
    {
        return y;
    }
    let out = if GPU_PRODUCTS {
        let mut out = x.reshape([n * h * w, c_in]).matmul(weight.transpose());
        if let Some(bias) = bias {
            out = out + bias.reshape([1, c_out]);
        }
        out.reshape([n, h, w, c_out])
    } else {
        conv_rows_direct(weight, bias, x)
    };
    if clamp { relu6(out) } else { out }
}

/// [`conv_rows`] by burn's direct conv: input and weight as NCHW views of channels-last memory (the layout that
/// kernel computes in), so nothing is copied.
pub fn conv_rows_direct(weight: Tensor<2>, bias: Option<Tensor<1>>, x: Tensor<4>) -> Tensor<4> {
    let [c_out, c_in] = weight.dims();
    let weight = weight.reshape([c_out, 1, 1, c_in]).permute([0, 3, 1, 2]);
    to_nhwc(conv2d(
        to_nchw(x),
        weight,
        bias,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    ))
}

/// A 1×1 conv with its optional adapter on `x` `[n, c_in, h, w]`: `base(x) + scale · B(A(x))`, or exactly
/// `base(x)` without one.
pub fn conv_with_lora(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>) -> Tensor<4> {
    conv_lora(base, lora, x, false)
}

/// [`conv_with_lora`] followed by ReLU6, in the same pass where the CPU kernel computes it.
pub fn conv_with_lora_relu6(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>) -> Tensor<4> {
    conv_lora(base, lora, x, true)
}

fn conv_lora(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>, clamp: bool) -> Tensor<4> {
    let act = |y: Tensor<4>| if clamp { relu6(y) } else { y };
    if channels_last(&x) {
        return to_nchw(rows(base, lora, to_nhwc(x), clamp));
    }
    match lora {
        // Inference on the CPU: the adapter folded into the weight, one conv (as `conv_rows` does on a GPU).
        Some(lora) if !on_gpu(&x) && !x.device().is_autodiff() => pointwise(&lora.merge(base), x, clamp),
        Some(lora) => match lora_tracked(base, lora, &x, clamp) {
            Some(y) => y,
            None => act(pointwise(base, x.clone(), false) + lora.forward(x)),
        },
        None => pointwise(base, x, clamp),
    }
}

/// `weight` `[c_out, c_in]` as a 1×1 conv of `x` `[n, c_in, h, w]`: `[c_out, c_in] · [c_in, h·w]` for each image.
fn matmul_1x1(weight: Tensor<2>, x: Tensor<4>) -> Tensor<4> {
    let [n, c_in, h, w] = x.dims();
    let c_out = weight.dims()[0];
    let out = weight.reshape([1, c_out, c_in]).matmul(x.reshape([n, c_in, h * w]));
    out.reshape([n, c_out, h, w])
}

/// A 1×1 conv (stride 1, no padding, one group) on `x` `[n, c_in, h, w]`, then ReLU6 when `clamp`: by
/// `pointwise::conv1x1` on the CPU, on a GPU as matrix products or burn's conv (`GPU_PRODUCTS`).
fn pointwise(conv: &Conv2d, x: Tensor<4>, clamp: bool) -> Tensor<4> {
    if !on_gpu(&x) {
        return conv1x1(conv, x, clamp);
    }
    if !GPU_PRODUCTS {
        let out = conv.forward(x);
        return if clamp { relu6(out) } else { out };
    }
    let [c_out, c_in, _, _] = conv.weight.dims();
    let out = matmul_1x1(conv.weight.val().reshape([c_out, c_in]), x);
    let out = match &conv.bias {
        Some(bias) => out + bias.val().reshape([1, c_out, 1, 1]),
        None => out,
    };
    if clamp { relu6(out) } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    fn max_gap(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// The GPU paths (channels-last rows, and a product per image) compute what `conv2d` does, checked on the CPU
    /// where all run.
    #[test]
    fn channels_last_rows_match_conv2d() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([24, 40], [1, 1]).init(&device);
        let x = Tensor::<4>::random([3, 24, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        let gap = max_gap(
            to_nchw(conv_rows(&conv, None, to_nhwc(x.clone()))),
            conv.forward(x.clone()),
        );
        assert!(gap < 1e-5, "1×1 conv as matmul differs by {gap}");
        // The browser's form (`GPU_PRODUCTS` false): burn's direct conv on channels-last views.
        let [c_out, c_in, _, _] = conv.weight.dims();
        let bias = conv.bias.as_ref().map(|b| b.val());
        let direct = conv_rows_direct(conv.weight.val().reshape([c_out, c_in]), bias, to_nhwc(x.clone()));
        let gap = max_gap(to_nchw(direct), conv.forward(x.clone()));
        assert!(
            gap < 1e-5,
            "1×1 conv by the direct kernel on channels-last views differs by {gap}"
        );

        let mut lora = Lora::new(24, 40, 4, 8.0, &mut Rng::new(3), &device);
        lora.b = Param::from_tensor(Tensor::random([40, 4], Distribution::Normal(0.0, 1.0), &device));
        let rows = to_nchw(conv_rows(&conv, Some(&lora), to_nhwc(x.clone())));
        let gap = max_gap(rows, conv_with_lora(&conv, Some(&lora), x.clone()));
        assert!(gap < 1e-5, "LoRA as matmuls differs by {gap}");

        // Training's path: a product per image.
        let [c_out, c_in, _, _] = conv.weight.dims();
        let batched = matmul_1x1(conv.weight.val().reshape([c_out, c_in]), x.clone())
            + conv.bias.as_ref().unwrap().val().reshape([1, c_out, 1, 1]);
        let gap = max_gap(batched, conv.forward(x.clone()));
        assert!(gap < 1e-5, "1×1 conv as a product per image differs by {gap}");
        let by_matmul = matmul_1x1(lora.b.val(), matmul_1x1(lora.a.val(), x.clone())).mul_scalar(lora.scale);
        let gap = max_gap(by_matmul, lora.forward(x));
        assert!(gap < 1e-5, "LoRA as products per image differs by {gap}");
    }
}
