//! Each block's depthwise k×k conv + ReLU6 on the CPU, in two kernels, both bit for bit what flex computes, and
//! the stem conv (`conv_relu6`) row by row.
//!
//! - **Row by row** (output rows 14 wide or more): each channel's plane is copied with its zero padding, and each
//!   output row is summed 16 values at a time in registers, a weight broadcast per tap; at stride 2 a vector takes
//!   every second value of two. flex's own loop is far slower here (2.0–2.9× from the 112×112 to the 14×14 planes
//!   in wasm in one run of `bench/cpu.sh`; as fast or faster natively).
//! - **Channels-last** (the 7×7 outputs): a 7-wide row leaves most of each vector empty, so the inner loop runs over
//!   channels instead (multiples of 16 in this model), the price being two transposes: 1.4–2.1× flex's speed.
//!
//! The sum is taken in flex's order (taps row by row, bias last, no fused multiply-add; padding taps add zeros,
//! which change nothing), so the output equals flex's bit for bit. Other devices and autodiff tensors run burn's
//! conv.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu6;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

use super::lora::{to_nchw, to_nhwc};

/// Channels summed together in registers: four 128-bit vectors.
const BLOCK: usize = 16;
/// From this plane width on, a layer runs row by row (NCHW) rather than channels-last.
const ROWS_FROM: usize = 14;
/// Outputs of one row summed together in registers: four 128-bit vectors, four independent sums.
const RUN: usize = 16;

/// `relu6(conv(x))` for a depthwise `conv` (one group per channel).
pub fn depthwise_relu6(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match on_flex(conv, &x) {
        Some(y) => y,
        None => relu6(conv.forward(x)),
    }
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
}

fn on_flex(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    on_flex_by(conv, x, None)
}

/// [`on_flex`] row by row (`Some(true)`), channels-last (`Some(false)`) or as the plane's size decides (`None`).
fn on_flex_by(conv: &Conv2d, x: &Tensor<4>, rows: Option<bool>) -> Option<Tensor<4>> {
    let [n, channels, _, _] = x.dims();
    let [k_h, k_w] = conv.kernel_size;
    if conv.groups != channels || conv.weight.dims() != [channels, 1, k_h, k_w] {
        return None;
    }
    let g = geometry(conv, x)?;
    let by_rows = rows.unwrap_or(g.out_w >= ROWS_FROM) && matches!(conv.stride, [1, 1] | [2, 2]);
    let (x, weight, bias) = operands(conv, x)?;
    let mut y = vec![0f32; n * channels * g.out_h * g.out_w];
    let forward = if by_rows { forward_rows } else { forward };
    forward(&g, &x, &weight, &bias, &mut y);
    let y = FlexTensor::from_data(TensorData::new(y, [n, channels, g.out_h, g.out_w]));
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
    let [c_out, _, k_h, k_w] = conv.weight.dims();
    if conv.groups != 1 || conv.weight.dims()[1] != c_in || c_in > 4 || !matches!(conv.stride, [1, 1] | [2, 2]) {
        return None;
    }
    let g = geometry(conv, x)?;
    let (x, weight, bias) = operands(conv, x)?;
    let (in_image, out_plane) = (c_in * g.in_h * g.in_w, g.out_h * g.out_w);
    let mut y = vec![0f32; n * c_out * out_plane];
    let mut padded = Padded::new(&g, c_in);
    for (x, y) in x.chunks_exact(in_image).zip(y.chunks_exact_mut(c_out * out_plane)) {
        padded.fill(&g, x);
        for (co, y) in y.chunks_exact_mut(out_plane).enumerate() {
            let taps = padded.taps(&g, &weight[co * c_in * k_h * k_w..][..c_in * k_h * k_w]);
            for (oh, out) in y.chunks_exact_mut(g.out_w).enumerate() {
                taps.row(padded.rows(&g, oh), bias[co], out);
            }
        }
    }
    let y = FlexTensor::from_data(TensorData::new(y, [n, c_out, g.out_h, g.out_w]));
    Some(Tensor::from_primitive::<Flex>(y))
}

/// The layer's shape, for a conv on flex with explicit padding and no dilation.
fn geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
    if x.device() != Device::flex() || conv.dilation != [1, 1] {
        return None;
    }
    let [_, channels, in_h, in_w] = x.dims();
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
    })
}

/// The input, the weight and the bias (zeros without one) as f32 values.
fn operands(conv: &Conv2d, x: &Tensor<4>) -> Option<(FlexValues, FlexValues, Vec<f32>)> {
    let c_out = conv.weight.dims()[0];
    let bias = match &conv.bias {
        Some(bias) => f32_values(bias.val())?.storage::<f32>().to_vec(),
        None => vec![0f32; c_out],
    };
    Some((
        FlexValues(f32_values(x.clone())?),
        FlexValues(f32_values(conv.weight.val())?),
        bias,
    ))
}

/// A flex tensor's f32 values (from [`f32_values`]).
struct FlexValues(FlexTensor);

impl std::ops::Deref for FlexValues {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        self.0.storage()
    }
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

/// `y = relu6(depthwise(x) + bias)` for a batch: `x` `[n, c, in_h, in_w]`, `weight` `[c, 1, k_h, k_w]`,
/// `y` `[n, c, out_h, out_w]`.
fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
    let c = g.channels;
    let taps = g.kernel[0] * g.kernel[1];
    // Weights channels-last: each tap's 16 channels are one contiguous run, like the input's.
    let mut w_last = vec![0f32; taps * c];
    transpose(weight, c, taps, &mut w_last);
    let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    let mut x_last = vec![0f32; in_plane * c];
    let mut y_last = vec![0f32; out_plane * c];
    for (x, y) in x.chunks_exact(c * in_plane).zip(y.chunks_exact_mut(c * out_plane)) {
        transpose(x, c, in_plane, &mut x_last);
        image(g, &x_last, &w_last, bias, &mut y_last);
        transpose(&y_last, out_plane, c, y);
    }
}

/// One image, channels-last in and out.
fn image(g: &Geometry, x: &[f32], w: &[f32], bias: &[f32], y: &mut [f32]) {
    let c = g.channels;
    let [k_h, k_w] = g.kernel;
    let [s_h, s_w] = g.stride;
    for oh in 0..g.out_h {
        let rows = inside(oh * s_h, g.top, k_h, g.in_h);
        for ow in 0..g.out_w {
            let cols = inside(ow * s_w, g.left, k_w, g.in_w);
            let out = &mut y[(oh * g.out_w + ow) * c..][..c];
            // The tap at (kh, kw) reads input pixel (oh·s + kh − top, ow·s + kw − left).
            let pixel = |kh: usize, kw: usize| ((oh * s_h + kh - g.top) * g.in_w + ow * s_w + kw - g.left) * c;
            let mut c0 = 0;
            while c0 + BLOCK <= c {
                let mut acc = Acc::ZERO;
                for kh in rows.clone() {
                    for kw in cols.clone() {
                        let xs = &x[pixel(kh, kw) + c0..][..BLOCK];
                        let ws = &w[(kh * k_w + kw) * c + c0..][..BLOCK];
                        acc.mul_add(xs, ws);
                    }
                }
                let acc = acc.values();
                for l in 0..BLOCK {
                    out[c0 + l] = (acc[l] + bias[c0 + l]).clamp(0.0, 6.0);
                }
                c0 += BLOCK;
            }
            for ch in c0..c {
                let mut acc = 0f32;
                for kh in rows.clone() {
                    for kw in cols.clone() {
                        acc += x[pixel(kh, kw) + ch] * w[(kh * k_w + kw) * c + ch];
                    }
                }
                out[ch] = (acc + bias[ch]).clamp(0.0, 6.0);
            }
        }
    }
}

/// Large planes, NCHW: each channel's plane is copied into a zero-padded one, then every output row is computed
/// 16 values at a time, vectorised along the row (at stride 2 a vector takes every second value of two). The taps
/// are summed in flex's order, the padding's zeros included, which adds nothing: the output equals flex's bit for
/// bit. Strides 1 and 2 only.
fn forward_rows(g: &Geometry, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
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
                out[at..at + n].copy_from_slice(&acc.finish(bias)[..n]);
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
    fn finish(self, bias: f32) -> [f32; 4] {
        use core::arch::wasm32::{f32x4_add, f32x4_pmax, f32x4_pmin, f32x4_splat, v128, v128_store};
        let v = f32x4_add(self.0, f32x4_splat(bias));
        // pmax(v, 0) is `v < 0 ? 0 : v` and pmin(v, 6) is `6 < v ? 6 : v`, as `clamp` computes them.
        let v = f32x4_pmin(f32x4_pmax(v, f32x4_splat(0.0)), f32x4_splat(6.0));
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

    fn finish(self, bias: f32) -> [f32; 4] {
        self.0.map(|v| (v + bias).clamp(0.0, 6.0))
    }
}

/// The taps `k` of a window starting at `start − pad` that fall inside `0..size` (the rest read padding zeros).
fn inside(start: usize, pad: usize, kernel: usize, size: usize) -> std::ops::Range<usize> {
    let first = pad.saturating_sub(start);
    let end = (size + pad).saturating_sub(start).min(kernel);
    first..end.max(first)
}

/// Sixteen running sums, `acc += x · w` lane by lane (a multiply, then an add: no fused multiply-add, as flex).
#[derive(Clone, Copy)]
struct Acc(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] [core::arch::wasm32::v128; 4],
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [f32; BLOCK],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Acc {
    const ZERO: Self = Self([core::arch::wasm32::f32x4(0.0, 0.0, 0.0, 0.0); 4]);

    #[inline(always)]
    fn mul_add(&mut self, x: &[f32], w: &[f32]) {
        use core::arch::wasm32::{f32x4_add, f32x4_mul, v128, v128_load};
        let (x, w) = (&x[..BLOCK], &w[..BLOCK]);
        for (l, acc) in self.0.iter_mut().enumerate() {
            // SAFETY: both slices hold BLOCK = 16 values, so lanes 4l..4l+4 are in bounds; v128_load takes any alignment.
            let (xv, wv) = unsafe {
                (
                    v128_load(x.as_ptr().add(4 * l) as *const v128),
                    v128_load(w.as_ptr().add(4 * l) as *const v128),
                )
            };
            *acc = f32x4_add(*acc, f32x4_mul(xv, wv));
        }
    }

    fn values(self) -> [f32; BLOCK] {
        let mut out = [0f32; BLOCK];
        for (l, acc) in self.0.iter().enumerate() {
            // SAFETY: `out` has room for 16 values; v128_store takes any alignment.
            unsafe {
                core::arch::wasm32::v128_store(out.as_mut_ptr().add(4 * l) as *mut core::arch::wasm32::v128, *acc)
            };
        }
        out
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Acc {
    const ZERO: Self = Self([0.0; BLOCK]);

    #[inline(always)]
    fn mul_add(&mut self, x: &[f32], w: &[f32]) {
        for ((acc, x), w) in self.0.iter_mut().zip(&x[..BLOCK]).zip(&w[..BLOCK]) {
            *acc += x * w;
        }
    }

    fn values(self) -> [f32; BLOCK] {
        self.0
    }
}

/// `dst[j][i] = src[i][j]` for `src` `[rows][cols]`: 16×16 tiles so both sides stay in cache, 4×4 blocks inside
/// them moved through registers.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const TILE: usize = 16;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    for r0 in (0..rows).step_by(TILE) {
        let r_end = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c_end = (c0 + TILE).min(cols);
            let mut r = r0;
            while r + 4 <= r_end {
                let mut col = c0;
                while col + 4 <= c_end {
                    transpose4(src, rows, cols, dst, r, col);
                    col += 4;
                }
                for col in col..c_end {
                    for rr in r..r + 4 {
                        dst[col * rows + rr] = src[rr * cols + col];
                    }
                }
                r += 4;
            }
            for rr in r..r_end {
                for col in c0..c_end {
                    dst[col * rows + rr] = src[rr * cols + col];
                }
            }
        }
    }
}

/// The 4×4 block at (`r`, `col`) of `src` `[rows][cols]`, transposed into `dst`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn transpose4(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], r: usize, col: usize) {
    use core::arch::wasm32::{i32x4_shuffle, v128, v128_load, v128_store};
    // SAFETY: `transpose` checked both slices against rows·cols and calls this for r + 4 <= rows,
    // col + 4 <= cols, so every 4-value row read and written is in bounds; v128 loads and stores take any alignment.
    unsafe {
        let row = |i: usize| v128_load(src.as_ptr().add((r + i) * cols + col) as *const v128);
        let (a, b, c, d) = (row(0), row(1), row(2), row(3));
        let ab_lo = i32x4_shuffle::<0, 4, 1, 5>(a, b);
        let cd_lo = i32x4_shuffle::<0, 4, 1, 5>(c, d);
        let ab_hi = i32x4_shuffle::<2, 6, 3, 7>(a, b);
        let cd_hi = i32x4_shuffle::<2, 6, 3, 7>(c, d);
        let out = [
            i32x4_shuffle::<0, 1, 4, 5>(ab_lo, cd_lo),
            i32x4_shuffle::<2, 3, 6, 7>(ab_lo, cd_lo),
            i32x4_shuffle::<0, 1, 4, 5>(ab_hi, cd_hi),
            i32x4_shuffle::<2, 3, 6, 7>(ab_hi, cd_hi),
        ];
        for (j, v) in out.into_iter().enumerate() {
            v128_store(dst.as_mut_ptr().add((col + j) * rows + r) as *mut v128, v);
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn transpose4(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], r: usize, col: usize) {
    for j in col..col + 4 {
        for i in r..r + 4 {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::efficientnet::tf_same_padding;
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

    #[test]
    fn taps_inside_the_image() {
        // A 3-wide window at -1 (top padding 1) on a 5-wide row: the first tap reads padding.
        assert_eq!(inside(0, 1, 3, 5), 1..3);
        assert_eq!(inside(2, 1, 3, 5), 0..3);
        // The window at 4 − 1 = 3 reaches 5: its last tap is padding.
        assert_eq!(inside(4, 1, 3, 5), 0..2);
        assert_eq!(inside(6, 0, 3, 5), 0..0);
    }

    #[test]
    fn transpose_round_trips() {
        let src: Vec<f32> = (0..17 * 33).map(|i| i as f32).collect();
        let mut t = vec![0f32; src.len()];
        let mut back = vec![0f32; src.len()];
        transpose(&src, 17, 33, &mut t);
        assert_eq!(t[5 * 17 + 3], src[3 * 33 + 5]);
        transpose(&t, 33, 17, &mut back);
        assert_eq!(back, src);
    }
}
