//! LoRA (Hu et al., 2021) on 1×1 convolutions: the frozen conv plus a trainable low-rank change.
//!
//! `y = conv(x) + scale · B(A(x))` with A `[r, c_in]` (random, std 1/√c_in) and B `[c_out, r]` (zeros), so a
//! fresh adapter leaves the pretrained output unchanged and only `r·(c_in + c_out)` numbers train. The conv
//! keeps its BN-folded weight and bias; merging adds `scale · B·A` to that weight.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

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

/// A 1×1 conv with its optional adapter: `base(x) + scale · B(A(x))`, or exactly `base(x)` without one.
pub fn conv_with_lora(base: &Conv2d, lora: Option<&Lora>, x: Tensor<4>) -> Tensor<4> {
    match lora {
        Some(lora) => base.forward(x.clone()) + lora.forward(x),
        None => base.forward(x),
    }
}
