//! The depthwise conv channels-last, for the 7×7 planes: the inner loop runs over channels in blocks of 16, the
//! sum over the k×k taps in registers, between two transposes.

use super::Geometry;

/// Channels summed together in registers: four 128-bit vectors.
const BLOCK: usize = 16;

/// `y = relu6(depthwise(x) + bias)` (without the clamp unless `g.relu6`) for a batch: `x` `[n, c, in_h, in_w]`, `weight` `[c, 1, k_h, k_w]`,
/// `y` `[n, c, out_h, out_w]`.
pub(super) fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
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
                    out[c0 + l] = g.activate(acc[l] + bias[c0 + l]);
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
                out[ch] = g.activate(acc + bias[ch]);
            }
        }
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
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
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
