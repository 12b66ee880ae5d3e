//! Convolutions row by row on zero-padded planes, vectorised along each output row: the depthwise convs of the
//! planes 14 wide or more, and the stem.

use super::Geometry;

/// Outputs of one row summed together in registers: four 128-bit vectors, four independent sums.
const RUN: usize = 16;

/// Large planes, NCHW: each channel's plane is copied into a zero-padded one, then every output row is computed
/// 16 values at a time, vectorised along the row (at stride 2 a vector takes every second value of two). The taps
/// are summed in flex's order, the padding's zeros included, which adds nothing: the output equals flex's bit for
/// bit. Strides 1 and 2 only.
pub(super) fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
    let [k_h, k_w] = g.kernel;
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    let mut padded = Padded::new(g, 1);
    for (i, (x, y)) in x.chunks_exact(in_plane).zip(y.chunks_exact_mut(out_plane)).enumerate() {
        let c = i % g.channels;
        padded.fill(g, x);
        let taps = padded.taps(g, &weight[c * k_h * k_w..][..k_h * k_w]);
        for (oh, out) in y.chunks_exact_mut(g.out_w).enumerate() {
            taps.row(padded.rows(g, oh), bias[c], out);
        }
    }
}

/// The planes of one image with their zero padding: every row an output reads, as wide as `slack_width`.
struct Padded {
    values: Vec<f32>,
    p_w: usize,
    /// Values per padded plane.
    plane: usize,
    planes: usize,
}

impl Padded {
    fn new(g: &Geometry, planes: usize) -> Self {
        let p_h = (g.out_h - 1) * g.stride[0] + g.kernel[0];
        let p_w = slack_width(g.out_w, g.stride[1], g.kernel[1]);
        Self {
            values: vec![0f32; planes * p_h * p_w],
            p_w,
            plane: p_h * p_w,
            planes,
        }
    }

    /// Copies `x`'s planes in; the padding, never written, stays zero.
    fn fill(&mut self, g: &Geometry, x: &[f32]) {
        let p_h = self.plane / self.p_w;
        // Input row r is padded row r + top; what lies outside the padded plane is read by no output.
        let width = g.in_w.min(self.p_w - g.left);
        for (x, padded) in x
            .chunks_exact(g.in_h * g.in_w)
            .zip(self.values.chunks_exact_mut(self.plane))
        {
            for r in 0..g.in_h.min(p_h.saturating_sub(g.top)) {
                padded[(r + g.top) * self.p_w + g.left..][..width].copy_from_slice(&x[r * g.in_w..][..width]);
            }
        }
    }

    /// What output row `oh` reads: from its first input row in the first plane to the end of the last plane.
    fn rows(&self, g: &Geometry, oh: usize) -> &[f32] {
        &self.values[oh * g.stride[0] * self.p_w..]
    }

    /// The taps of one output channel, `w` `[planes][k_h][k_w]`.
    fn taps<'a>(&self, g: &Geometry, w: &'a [f32]) -> Taps<'a> {
        Taps {
            w,
            kernel: g.kernel,
            stride: g.stride[1],
            relu6: g.relu6,
            p_w: self.p_w,
            plane: self.plane,
            planes: self.planes,
        }
    }
}

/// One output channel's taps over `planes` zero-padded planes `p_w` wide, `plane` values apart.
struct Taps<'a> {
    w: &'a [f32],
    kernel: [usize; 2],
    stride: usize,
    relu6: bool,
    p_w: usize,
    plane: usize,
    planes: usize,
}

impl Taps<'_> {
    /// One output row from the padded rows it reads (`Padded::rows`), in runs of 16: a last, shorter run is
    /// computed whole (its extra lanes read the padding's slack) and stored in part, so every output comes from
    /// four independent sums and none from a scalar loop.
    fn row(&self, rows: &[f32], bias: f32, out: &mut [f32]) {
        let [k_h, k_w] = self.kernel;
        let reach = (self.planes - 1) * self.plane + k_h * self.p_w;
        assert!(rows.len() >= reach && self.p_w >= slack_width(out.len(), self.stride, k_w));
        assert!(self.w.len() >= self.planes * k_h * k_w);
        for ow in (0..out.len()).step_by(RUN) {
            self.run(rows, ow, bias, out);
        }
    }

    /// Outputs `ow..ow + 16` of the row (those that exist).
    #[inline(always)]
    fn run(&self, rows: &[f32], ow: usize, bias: f32, out: &mut [f32]) {
        let [k_h, k_w] = self.kernel;
        let s = self.stride;
        let mut acc = [Quad::ZERO; RUN / 4];
        for c in 0..self.planes {
            for kh in 0..k_h {
                let row = c * self.plane + kh * self.p_w;
                for kw in 0..k_w {
                    let w = self.w[(c * k_h + kh) * k_w + kw];
                    for (v, acc) in acc.iter_mut().enumerate() {
                        let start = row + (ow + 4 * v) * s + kw;
                        // SAFETY: `row` asserted rows.len() ≥ (planes − 1)·plane + k_h·p_w with p_w ≥
                        // `slack_width`, and ow + 4v + 3 is below out_w rounded up to 16, so the 8 values from
                        // `start` (2 vectors at stride 2) are in bounds.
                        acc.mul_add(w, unsafe { Quad::load(rows.as_ptr().add(start), s) });
                    }
                }
            }
        }
        for (v, acc) in acc.into_iter().enumerate() {
            let at = ow + 4 * v;
            if at < out.len() {
                let n = 4.min(out.len() - at);
                out[at..at + n].copy_from_slice(&acc.finish(bias, self.relu6)[..n]);
            }
        }
    }
}

/// The padded width a row of `out_w` outputs needs: the inputs of `out_w` rounded up to runs of 16, plus 8 values
/// of slack for the last vector's loads.
fn slack_width(out_w: usize, stride: usize, k_w: usize) -> usize {
    (out_w.div_ceil(RUN) * RUN - 1) * stride + k_w + 8
}

/// Four f32 lanes: one 128-bit vector in wasm.
#[derive(Clone, Copy)]
struct Quad(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] core::arch::wasm32::v128,
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [f32; 4],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Quad {
    const ZERO: Self = Self(core::arch::wasm32::f32x4(0.0, 0.0, 0.0, 0.0));

    /// Values `p[0], p[s], p[2s], p[3s]` for a stride `s` of 1 or 2.
    /// SAFETY: `p` must point at 8 readable floats.
    #[inline(always)]
    unsafe fn load(p: *const f32, s: usize) -> Self {
        use core::arch::wasm32::{i32x4_shuffle, v128, v128_load};
        unsafe {
            let a = v128_load(p as *const v128);
            if s == 1 {
                return Self(a);
            }
            Self(i32x4_shuffle::<0, 2, 4, 6>(a, v128_load(p.add(4) as *const v128)))
        }
    }

    /// `self += x · w` lane by lane (a multiply, then an add, as flex).
    #[inline(always)]
    fn mul_add(&mut self, w: f32, x: Self) {
        use core::arch::wasm32::{f32x4_add, f32x4_mul, f32x4_splat};
        self.0 = f32x4_add(self.0, f32x4_mul(x.0, f32x4_splat(w)));
    }

    #[inline(always)]
    fn finish(self, bias: f32, relu6: bool) -> [f32; 4] {
        use core::arch::wasm32::{f32x4_add, f32x4_pmax, f32x4_pmin, f32x4_splat, v128, v128_store};
        let mut v = f32x4_add(self.0, f32x4_splat(bias));
        // pmax(v, 0) is `v < 0 ? 0 : v` and pmin(v, 6) is `6 < v ? 6 : v`, as `clamp` computes them.
        if relu6 {
            v = f32x4_pmin(f32x4_pmax(v, f32x4_splat(0.0)), f32x4_splat(6.0));
        }
        let mut out = [0f32; 4];
        // SAFETY: `out` holds 4 floats; v128_store takes any alignment.
        unsafe { v128_store(out.as_mut_ptr() as *mut v128, v) };
        out
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Quad {
    const ZERO: Self = Self([0.0; 4]);

    /// SAFETY: `p` must point at 8 readable floats.
    #[inline(always)]
    unsafe fn load(p: *const f32, s: usize) -> Self {
        Self(std::array::from_fn(|l| unsafe { *p.add(l * s) }))
    }

    #[inline(always)]
    fn mul_add(&mut self, w: f32, x: Self) {
        for (acc, x) in self.0.iter_mut().zip(x.0) {
            *acc += x * w;
        }
    }

    fn finish(self, bias: f32, relu6: bool) -> [f32; 4] {
        self.0
            .map(|v| if relu6 { (v + bias).clamp(0.0, 6.0) } else { v + bias })
    }
}

/// The stem's dense conv: each of the `c_out` output channels sums the taps of all `c_in` input planes, weights
/// `[c_out][c_in][k_h][k_w]`; `x` `[n, c_in, in_h, in_w]`, `y` `[n, c_out, out_h, out_w]`.
pub(super) fn dense(g: &Geometry, c_in: usize, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
    let [k_h, k_w] = g.kernel;
    let (in_image, out_plane) = (c_in * g.in_h * g.in_w, g.out_h * g.out_w);
    let c_out = bias.len();
    let mut padded = Padded::new(g, c_in);
    for (x, y) in x.chunks_exact(in_image).zip(y.chunks_exact_mut(c_out * out_plane)) {
        padded.fill(g, x);
        for (co, y) in y.chunks_exact_mut(out_plane).enumerate() {
            let taps = padded.taps(g, &weight[co * c_in * k_h * k_w..][..c_in * k_h * k_w]);
            for (oh, out) in y.chunks_exact_mut(g.out_w).enumerate() {
                taps.row(padded.rows(g, oh), bias[co], out);
            }
        }
    }
}
