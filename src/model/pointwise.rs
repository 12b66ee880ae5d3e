//! The 1×1 convolutions on the CPU in the browser (flex, wasm SIMD), with the bias and ReLU6 in the same pass.
//!
//! flex runs a 1×1 conv as a `gemm` call per image: it zero-fills the output, packs both operands into panels,
//! multiplies, then adds the bias in a second pass, and ReLU6 is a third. Here each output tile of 4 channels ×
//! 8 pixels sums `w[co][ci] · x[ci][p..p+8]` over the input channels in registers, a weight broadcast per input
//! channel, and the bias and the clamp are applied before the one store. The weight is read where it lies (flex
//! packs it again for every image, a real share of the small products of the 7×7 and 14×14 blocks); the input
//! too, except with many input channels, where a panel of it is first packed strip by strip. Over the model's 1×1
//! layers that is 1.5–1.9× flex's speed in wasm (`bench/cpu.sh`, per layer). Used in wasm with SIMD only:
//! natively flex's `gemm` has AVX2 and FMA kernels, so there it stays; the tests run this kernel natively against
//! flex.

use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor};
use burn_flex::Flex;

use super::depthwise::f32_values;
use super::frozen::{FrozenLayer, Pointwise, pointwise_tracked};

/// Output channels per tile (each a broadcast weight).
const ROWS: usize = 4;
/// Pixels per tile: two 128-bit vectors.
const COLS: usize = 8;
/// Input channels summed per pass; more are summed in passes, the partial sums kept in the output.
const KC: usize = 256;
/// Pixels per panel: every tile of output channels reads the panel's inputs again, from the L2 cache
/// (`KC × PANEL` floats, 64 KB).
const PANEL: usize = 64;
/// From this many input channels, a panel's inputs are first copied strip by strip into one contiguous block:
/// read down a column of the plane, 8 floats from every row, a tile touches a cache line per input channel.
const PACK_FROM: usize = 128;

/// `conv(x)`, then ReLU6 when `clamp`, for a 1×1 conv with stride 1, no padding and one group: our kernel on
/// flex in wasm, in a training step too for a frozen conv (`frozen`); burn's conv elsewhere.
pub fn conv1x1(conv: &Conv2d, x: Tensor<4>, clamp: bool) -> Tensor<4> {
    if cfg!(all(target_arch = "wasm32", target_feature = "simd128"))
        && let Some(y) = on_flex(conv, &x, clamp)
    {
        return y;
    }
    if let Some(y) = pointwise_tracked(conv, &x, clamp) {
        return y;
    }
    let y = conv.forward(x);
    if clamp { relu6(y) } else { y }
}

fn on_flex(conv: &Conv2d, x: &Tensor<4>, clamp: bool) -> Option<Tensor<4>> {
    if x.device() != Device::flex() || conv.weight.dims()[1] != x.dims()[1] {
        return None;
    }
    let y = Pointwise::of(conv, clamp)?.forward(&f32_values(x.clone())?);
    Some(Tensor::from_primitive::<Flex>(y))
}

/// One image: `y[co][p] = b[co] + Σ_ci w[co][ci] · x[ci][p]`, clamped to [0, 6] when `clamp`, for `x`
/// `[c_in][pixels]`, `w` `[c_out][c_in]`, `y` `[c_out][pixels]`. The sum runs over `ci` in order.
///
/// Tiles of 4 output channels × 8 pixels, over panels of 64 pixels and passes of up to 256 input channels. A
/// tile reads its inputs where they lie, or, with many input channels, from a copy of the panel packed strip by
/// strip; the last, partial strip of a plane is always copied, with zeros past the edge.
pub fn image(x: &[f32], w: &[f32], bias: &[f32], [c_in, pixels]: [usize; 2], clamp: bool, y: &mut [f32]) {
    let c_out = bias.len();
    assert!(x.len() >= c_in * pixels && w.len() >= c_out * c_in && y.len() >= c_out * pixels);
    let pack = c_in >= PACK_FROM;
    let mut packed = vec![0f32; KC.min(c_in) * PANEL];
    for k0 in (0..c_in).step_by(KC) {
        let k1 = (k0 + KC).min(c_in);
        let kc = k1 - k0;
        let pass = Pass {
            w,
            c_in,
            pixels,
            k0,
            k1,
            first: k0 == 0,
            last: k1 == c_in,
            clamp,
        };
        for p0 in (0..pixels).step_by(PANEL) {
            let p1 = (p0 + PANEL).min(pixels);
            // Each strip's inputs: where they are in `x` (start, stride) or in `packed`.
            let mut strips = Vec::with_capacity(PANEL / COLS);
            for (s, p) in (p0..p1).step_by(COLS).enumerate() {
                let valid = COLS.min(p1 - p);
                if valid == COLS && !pack {
                    strips.push((Source::Input(k0 * pixels + p), p, valid));
                    continue;
                }
                let block = &mut packed[s * kc * COLS..][..kc * COLS];
                for (ci, lanes) in (k0..k1).zip(block.chunks_exact_mut(COLS)) {
                    Lanes::read(&x[ci * pixels + p..][..valid]).write(lanes);
                }
                strips.push((Source::Packed(s * kc * COLS), p, valid));
            }
            let mut co = 0;
            while co + ROWS <= c_out {
                for &(source, p, valid) in &strips {
                    pass.tile::<ROWS>(source.view(x, &packed, pixels), co, bias, y, [p, valid]);
                }
                co += ROWS;
            }
            for co in co..c_out {
                for &(source, p, valid) in &strips {
                    pass.tile::<1>(source.view(x, &packed, pixels), co, bias, y, [p, valid]);
                }
            }
        }
    }
}

/// Where a strip's inputs are: from this offset of `x` (one row of the plane per input channel), or of the
/// packed copy (8 floats per input channel).
#[derive(Clone, Copy)]
enum Source {
    Input(usize),
    Packed(usize),
}

impl Source {
    /// The values from the strip's start, and the distance between two input channels' values.
    fn view<'a>(self, x: &'a [f32], packed: &'a [f32], pixels: usize) -> (&'a [f32], usize) {
        match self {
            Source::Input(at) => (&x[at..], pixels),
            Source::Packed(at) => (&packed[at..], COLS),
        }
    }
}

/// One pass over input channels `k0..k1` of one image's product.
struct Pass<'a> {
    w: &'a [f32],
    c_in: usize,
    pixels: usize,
    k0: usize,
    k1: usize,
    /// The first pass starts from zero, the others from the partial sums in `y`.
    first: bool,
    /// The last pass adds the bias and clamps.
    last: bool,
    clamp: bool,
}

impl Pass<'_> {
    /// Output channels `co..co + R` at the strip of pixels `p..p + valid` (valid ≤ 8).
    #[inline(always)]
    fn tile<const R: usize>(
        &self,
        (strip, stride): (&[f32], usize),
        co: usize,
        bias: &[f32],
        y: &mut [f32],
        [p, valid]: [usize; 2],
    ) {
        let row = |r: usize| (co + r) * self.pixels + p..(co + r) * self.pixels + p + valid;
        let kc = self.k1 - self.k0;
        assert!(kc > 0 && strip.len() >= (kc - 1) * stride + COLS && (co + R) * self.c_in <= self.w.len());
        let mut acc = [Lanes::ZERO; R];
        if !self.first {
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = Lanes::read(&y[row(r)]);
            }
        }
        let w = self.w[co * self.c_in + self.k0..].as_ptr();
        let xs = strip.as_ptr();
        for k in 0..kc {
            // SAFETY: the assert above: the strip holds 8 values at every k·stride for k < kc, and rows
            // co..co+R of w have c_in values, of which k0 + k < k1 ≤ c_in is read.
            unsafe {
                let x = Lanes::load(xs.add(k * stride));
                for (r, acc) in acc.iter_mut().enumerate() {
                    acc.mul_add(w.add(r * self.c_in + k), x);
                }
            }
        }
        for (r, acc) in acc.into_iter().enumerate() {
            let acc = if self.last {
                acc.finish(bias[co + r], self.clamp)
            } else {
                acc
            };
            acc.write(&mut y[row(r)]);
        }
    }
}

/// Eight f32 lanes: two 128-bit vectors in wasm.
#[derive(Clone, Copy)]
struct Lanes(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] [core::arch::wasm32::v128; 2],
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [f32; COLS],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes {
    const ZERO: Self = Self([core::arch::wasm32::f32x4(0.0, 0.0, 0.0, 0.0); 2]);

    /// SAFETY: `p` must point at 8 readable floats.
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        use core::arch::wasm32::{v128, v128_load};
        unsafe { Self([v128_load(p as *const v128), v128_load(p.add(4) as *const v128)]) }
    }

    /// `self += *w · xs` lane by lane (a multiply, then an add: wasm SIMD has no fused multiply-add).
    /// SAFETY: `w` must point at a readable float.
    #[inline(always)]
    unsafe fn mul_add(&mut self, w: *const f32, xs: Self) {
        use core::arch::wasm32::{f32x4_add, f32x4_mul, v128_load32_splat};
        // One broadcasting load.
        let w = unsafe { v128_load32_splat(w as *const u32) };
        self.0[0] = f32x4_add(self.0[0], f32x4_mul(w, xs.0[0]));
        self.0[1] = f32x4_add(self.0[1], f32x4_mul(w, xs.0[1]));
    }

    #[inline(always)]
    fn finish(self, bias: f32, clamp: bool) -> Self {
        use core::arch::wasm32::{f32x4_add, f32x4_pmax, f32x4_pmin, f32x4_splat};
        let b = f32x4_splat(bias);
        let mut v = self.0.map(|v| f32x4_add(v, b));
        if clamp {
            let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
            // pmax(v, 0) is `v < 0 ? 0 : v` and pmin(v, 6) is `6 < v ? 6 : v`: NaN stays NaN, as with `clamp`.
            v = v.map(|v| f32x4_pmin(f32x4_pmax(v, zero), six));
        }
        Self(v)
    }

    #[inline(always)]
    fn store(self, out: &mut [f32]) {
        use core::arch::wasm32::{v128, v128_store};
        let out = &mut out[..COLS];
        // SAFETY: `out` holds 8 floats; v128_store takes any alignment.
        unsafe {
            v128_store(out.as_mut_ptr() as *mut v128, self.0[0]);
            v128_store(out.as_mut_ptr().add(4) as *mut v128, self.0[1]);
        }
    }

    fn values(self) -> [f32; COLS] {
        let mut out = [0f32; COLS];
        self.store(&mut out);
        out
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Lanes {
    const ZERO: Self = Self([0.0; COLS]);

    /// SAFETY: `p` must point at 8 readable floats.
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Self(unsafe { *(p as *const [f32; COLS]) })
    }

    /// SAFETY: `w` must point at a readable float.
    #[inline(always)]
    unsafe fn mul_add(&mut self, w: *const f32, xs: Self) {
        let w = unsafe { *w };
        for (acc, x) in self.0.iter_mut().zip(xs.0) {
            *acc += w * x;
        }
    }

    fn finish(self, bias: f32, clamp: bool) -> Self {
        Self(
            self.0
                .map(|v| if clamp { (v + bias).clamp(0.0, 6.0) } else { v + bias }),
        )
    }

    fn store(self, out: &mut [f32]) {
        out[..COLS].copy_from_slice(&self.0);
    }

    fn values(self) -> [f32; COLS] {
        self.0
    }
}

impl Lanes {
    /// Up to 8 values of `y` (zeros past its end).
    #[inline(always)]
    fn read(y: &[f32]) -> Self {
        if y.len() == COLS {
            // SAFETY: `y` holds 8 floats.
            return unsafe { Self::load(y.as_ptr()) };
        }
        let mut v = [0f32; COLS];
        v[..y.len()].copy_from_slice(y);
        // SAFETY: `v` holds 8 floats.
        unsafe { Self::load(v.as_ptr()) }
    }

    /// The first `y.len()` (up to 8) lanes into `y`.
    #[inline(always)]
    fn write(self, y: &mut [f32]) {
        let n = y.len();
        if n == COLS {
            self.store(y);
        } else {
            y.copy_from_slice(&self.values()[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// Tile edges in both directions (channels not a multiple of 4, planes not a multiple of 8, several panels
    /// and passes), inputs read in place and packed, against flex's conv, with and without the clamp.
    #[test]
    fn equals_flex_conv() {
        let device = Device::flex();
        for (c_in, c_out, size) in [
            (16, 24, 7),
            (35, 6, 9),
            (3, 5, 1),
            (1152, 8, 6),
            (40, 13, 12),
            (24, 9, 10),
            (130, 7, 9),
        ] {
            let conv = Conv2dConfig::new([c_in, c_out], [1, 1]).init(&device);
            // Scaled so that part of the output clips at 0 and at 6.
            let x = Tensor::<4>::random([2, c_in, size, size], Distribution::Normal(0.0, 8.0), &device);
            let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
            let (xs, ws) = (values(x.clone()), values(conv.weight.val()));
            let bias: Vec<f32> = conv.bias.as_ref().unwrap().val().into_data().try_to_vec().unwrap();
            let pixels = size * size;
            for clamp in [false, true] {
                let mut ours = vec![0f32; 2 * c_out * pixels];
                for (x, y) in xs
                    .chunks_exact(c_in * pixels)
                    .zip(ours.chunks_exact_mut(c_out * pixels))
                {
                    image(x, &ws, &bias, [c_in, pixels], clamp, y);
                }
                let flex = values(conv1x1(&conv, x.clone(), clamp));
                let gap = crate::floats::max_abs_diff(&ours, &flex);
                let scale = crate::floats::max_abs(&flex).max(1.0);
                assert!(
                    gap <= 1e-5 * scale,
                    "{c_in}→{c_out} at {size}², clamp {clamp}: differs by {gap}"
                );
                if clamp && ours.len() > 100 {
                    assert!(
                        ours.contains(&0.0) && ours.contains(&6.0),
                        "{c_in}→{c_out}: no value clipped"
                    );
                }
            }
        }
    }
}
