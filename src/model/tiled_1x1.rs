//! A 1×1 conv on WebGPU as a tiled matrix product of our own (a cubecl kernel), for inference in the browser.
//!
//! WebGPU has no cooperative-matrix units, and burn's fallback matmul launched a handful of workgroups for our
//! shapes (`lora::GPU_PRODUCTS`); its direct conv, which the browser used instead, has each thread read its own
//! inputs and weights for 4 outputs (0.6 TFLOP/s on an H200 in Chromium). Here a workgroup of 16×16 threads
//! computes a 64 × 64 tile of the output (pixels × output channels), 4 × 4 per thread, staging 16 input channels
//! of both operands at a time in shared memory, so each loaded value serves 64 products. Bias and the optional
//! ReLU6 are applied before the one store. On an H200 in Chromium that is 2.8–2.9× burn's direct conv on block 12
//! at batch 64, and the whole embedding 2.9× (bench/results/2026-12-02-h200-browser.md). Training keeps burn's conv,
//! whose backward it needs.

use burn::backend::Wgpu;
use burn::tensor::{DType, Tensor};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Output tile: pixels and output channels per workgroup (the kernel's literals 64, 16 and 4 follow from these
/// and from staging 16 input channels per pass).
const TILE: u32 = 64;
/// Threads per side of the workgroup; each computes `(TILE / SIDE)²` outputs.
const SIDE: u32 = 16;

#[cube(launch_unchecked)]
fn conv1x1_kernel(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    out: &mut [f32],
    rows: u32,
    k: u32,
    cols: u32,
    #[comptime] relu6: bool,
) {
    let tx = UNIT_POS_X;
    let ty = UNIT_POS_Y;
    let tid = ty * 16 + tx;
    let row0 = CUBE_POS_Y * 64;
    let col0 = CUBE_POS_X * 64;
    // Input-channel-major tiles: `xs[kk * 64 + r]`, `ws[kk * 64 + c]`.
    let mut xs = Shared::new_slice(1024usize);
    let mut ws = Shared::new_slice(1024usize);
    let mut acc = Array::<f32>::new(16usize);
    #[unroll]
    for i in 0..16usize {
        acc[i] = 0.0f32;
    }
    let mut k0 = 0u32;
    while k0 < k {
        // 1,024 values of each operand, 4 per thread; consecutive threads read consecutive input channels.
        #[unroll]
        for l in 0..4u32 {
            let e = tid + l * 256;
            let r = e / 16;
            let kk = e % 16;
            let gk = k0 + kk;
            let gr = row0 + r;
            let gc = col0 + r;
            let mut xv = 0.0f32;
            if gr < rows && gk < k {
                xv = x[(gr * k + gk) as usize];
            }
            let mut wv = 0.0f32;
            if gc < cols && gk < k {
                wv = w[(gc * k + gk) as usize];
            }
            xs[(kk * 64 + r) as usize] = xv;
            ws[(kk * 64 + r) as usize] = wv;
        }
        sync_cube();
        #[unroll]
        for kk in 0..16u32 {
            #[unroll]
            for i in 0..4u32 {
                let a = xs[(kk * 64 + ty + i * 16) as usize];
                #[unroll]
                for j in 0..4u32 {
                    let idx = (i * 4 + j) as usize;
                    acc[idx] += a * ws[(kk * 64 + tx + j * 16) as usize];
                }
            }
        }
        sync_cube();
        k0 += 16;
    }
    #[unroll]
    for i in 0..4u32 {
        let r = row0 + ty + i * 16;
        #[unroll]
        for j in 0..4u32 {
            let c = col0 + tx + j * 16;
            if r < rows && c < cols {
                let mut v = acc[(i * 4 + j) as usize] + bias[c as usize];
                if relu6 {
                    v = f32::clamp(v, 0.0f32, 6.0f32);
                }
                out[(r * cols + c) as usize] = v;
            }
        }
    }
}

fn contiguous_f32(t: &CubeTensor) -> bool {
    t.dtype == DType::F32 && t.is_contiguous()
}

/// `x` `[n, h, w, c_in]` (channels-last, contiguous) · `weight` `[c_out, c_in]`ᵀ + `bias`, clamped to [0, 6] when
/// `relu6`, as `[n, h, w, c_out]`; `None` where the operands are not f32 on burn's wgpu backend and contiguous.
pub fn conv1x1(x: &Tensor<4>, weight: &Tensor<2>, bias: &Tensor<1>, relu6: bool) -> Option<Tensor<4>> {
    let [n, h, w, c_in] = x.dims();
    let [c_out, _] = weight.dims();
    let x = x.clone().try_into_primitive::<Wgpu>().ok()?;
    let weight = weight.clone().try_into_primitive::<Wgpu>().ok()?;
    let bias = bias.clone().try_into_primitive::<Wgpu>().ok()?;
    if !(contiguous_f32(&x) && contiguous_f32(&weight) && contiguous_f32(&bias)) {
        return None;
    }
    let rows = n * h * w;
    // WebGPU allows 65,535 workgroups per dimension (batches beyond ~330 images on the 112×112 planes).
    if rows.div_ceil(TILE as usize) > 65_535 {
        return None;
    }
    let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), [n, h, w, c_out].into(), DType::F32);
    let count = CubeCount::Static(
        c_out.div_ceil(TILE as usize) as u32,
        rows.div_ceil(TILE as usize) as u32,
        1,
    );
    // SAFETY: every index is checked against `rows`, `k` and `cols`, which are the buffers' true extents.
    unsafe {
        conv1x1_kernel::launch_unchecked(
            &x.client,
            count,
            CubeDim::new_2d(SIDE, SIDE),
            BufferArg::from_raw_parts(x.handle.clone(), rows * c_in),
            BufferArg::from_raw_parts(weight.handle.clone(), c_out * c_in),
            BufferArg::from_raw_parts(bias.handle.clone(), c_out),
            BufferArg::from_raw_parts(out.handle.clone(), rows * c_out),
            rows as u32,
            c_in as u32,
            c_out as u32,
            relu6,
        );
    }
    Some(Tensor::from_primitive::<Wgpu>(out))
}
