//! The input gradient of a depthwise conv, by the forward kernels.
//!
//! Output `y[oh][ow] = Σ w[i][j] · x[oh·s + i − top][ow·s + j − left]`, so `∂L/∂x[r][c]` sums `w[i][j] · g[oh][ow]`
//! over the outputs that read `x[r][c]`. At stride 1 that is a depthwise conv of the output gradient `g` with the
//! kernel flipped and the padding mirrored (`k − 1 − top` above, `k − 1 − left` on the left). At stride 2 the
//! same holds for `g` with a zero between every two values (rows and columns), at four times the multiplies; only
//! one layer of a LoRA tail has stride 2.

use super::Geometry;

/// `∂L/∂x` `[n, c, in_h, in_w]` from the output gradient `grad` `[n, c, out_h, out_w]` (after the ReLU6 mask).
pub(super) fn input_grad(g: &Geometry, weight: &[f32], grad: Vec<f32>, n: usize) -> Vec<f32> {
    let [k_h, k_w] = g.kernel;
    let [s_h, s_w] = g.stride;
    let (planes, taps) = (n * g.channels, k_h * k_w);
    let (g_h, g_w) = ((g.out_h - 1) * s_h + 1, (g.out_w - 1) * s_w + 1);
    let grad = if (s_h, s_w) == (1, 1) {
        grad
    } else {
        let mut dilated = vec![0f32; planes * g_h * g_w];
        for (src, dst) in grad
            .chunks_exact(g.out_h * g.out_w)
            .zip(dilated.chunks_exact_mut(g_h * g_w))
        {
            for (oh, row) in src.chunks_exact(g.out_w).enumerate() {
                for (ow, &v) in row.iter().enumerate() {
                    dst[oh * s_h * g_w + ow * s_w] = v;
                }
            }
        }
        dilated
    };
    let flipped: Vec<f32> = weight
        .chunks_exact(taps)
        .flat_map(|w| w.iter().rev().copied())
        .collect();
    let back = Geometry {
        channels: g.channels,
        in_h: g_h,
        in_w: g_w,
        kernel: g.kernel,
        stride: [1, 1],
        top: k_h - 1 - g.top,
        left: k_w - 1 - g.left,
        out_h: g.in_h,
        out_w: g.in_w,
        relu6: false,
    };
    let mut gx = vec![0f32; planes * g.in_h * g.in_w];
    back.run(back.by_rows(), &grad, &flipped, &vec![0f32; g.channels], &mut gx);
    gx
}
