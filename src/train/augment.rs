//! Training-time augmentation of prepared images (224×224×3 HWC u8): random resized crop and a small rotation
//! in one bilinear inverse mapping, an optional horizontal flip, then brightness and contrast jitter.
//!
//! It runs per image per epoch on a 2-core wasm CPU, so it allocates only the output, draws a handful of numbers
//! per image, takes sine and cosine once per image, and maps each output pixel with two multiply-adds per axis.
//! Points that fall outside the source replicate its edge: prepared images are composited over white, so for
//! drawings and letters the edge is the white page, and for photos it continues the scene instead of adding a
//! hard white or black border the network could learn as a cue of "augmented".

use crate::finetune::Augment;
use crate::options::AugmentOptions;
use crate::preprocess::IMAGE_SIZE;
use crate::rng::Rng;

impl AugmentOptions {
    /// The per-image transform the deep trainer takes, or `None` when disabled (the trainer may then cache
    /// activations at the cut).
    pub fn transform(&self) -> Option<Augment> {
        let opts = self.clone();
        self.enabled
            .then(|| Box::new(move |pixels: &[u8], rng: &mut Rng| augment(pixels, &opts, rng)) as Augment)
    }
}

/// Uniform in `[lo, hi)`.
fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.next_f32()
}

/// Width and height (in source pixels) and top-left corner of a random crop, torchvision's RandomResizedCrop
/// recipe: area and log-aspect drawn uniformly, up to 10 tries to fit, else the largest centred crop.
fn random_crop(side: f32, opts: &AugmentOptions, rng: &mut Rng) -> (f32, f32, f32, f32) {
    let area = side * side;
    let (log_a0, log_a1) = (opts.crop_aspect[0].ln(), opts.crop_aspect[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, opts.crop_scale[0], opts.crop_scale[1]);
        let aspect = uniform(rng, log_a0, log_a1).exp();
        let w = (target * aspect).sqrt();
        let h = (target / aspect).sqrt();
        if w <= side && h <= side {
            let x = uniform(rng, 0.0, side - w);
            let y = uniform(rng, 0.0, side - h);
            return (w, h, x, y);
        }
    }
    (side, side, 0.0, 0.0)
}

/// One augmented copy of `pixels` (224×224×3 HWC u8), drawn from `rng`; the input itself when disabled.
pub fn augment(pixels: &[u8], opts: &AugmentOptions, rng: &mut Rng) -> Vec<u8> {
    const N: usize = IMAGE_SIZE;
    assert_eq!(pixels.len(), N * N * 3, "augment takes prepared 224×224×3 images");
    if !opts.enabled {
        return pixels.to_vec();
    }
    let side = N as f32;
    let (w, h, x0, y0) = random_crop(side, opts, rng);
    let angle = uniform(rng, -opts.rotation_degrees, opts.rotation_degrees).to_radians();
    let flip = opts.horizontal_flip && rng.next_f32() < 0.5;
    let brightness = uniform(rng, 1.0 - opts.brightness, 1.0 + opts.brightness);
    let contrast = uniform(rng, 1.0 - opts.contrast, 1.0 + opts.contrast);

    // Inverse map, output pixel centre (u, v) relative to the output centre → source point:
    // src = crop centre + R(angle) · diag(±w/N, h/N) · (u, v), in pixel-centre coordinates.
    let (sin, cos) = angle.sin_cos();
    let (kx, ky) = (if flip { -w / side } else { w / side }, h / side);
    let (m00, m01, m10, m11) = (cos * kx, -sin * ky, sin * kx, cos * ky);
    let (cx, cy) = (x0 + w / 2.0 - 0.5, y0 + h / 2.0 - 0.5);
    let half = side / 2.0 - 0.5;
    let max = side - 1.0;

    let mut out = vec![0u8; N * N * 3];
    // Σ of 1000 × luma (BT.601 weights, integers) for the contrast's mean grey.
    let mut luma_sum: u64 = 0;
    for (y, row) in out.chunks_exact_mut(N * 3).enumerate() {
        let v = y as f32 - half;
        let (row_x, row_y) = (cx + m01 * v, cy + m11 * v);
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let u = x as f32 - half;
            let sx = (row_x + m00 * u).clamp(0.0, max);
            let sy = (row_y + m10 * u).clamp(0.0, max);
            let (ix, iy) = (sx as usize, sy as usize);
            let (fx, fy) = (sx - ix as f32, sy - iy as f32);
            let (ix1, iy1) = ((ix + 1).min(N - 1), (iy + 1).min(N - 1));
            let (p00, p01) = ((iy * N + ix) * 3, (iy * N + ix1) * 3);
            let (p10, p11) = ((iy1 * N + ix) * 3, (iy1 * N + ix1) * 3);
            for c in 0..3 {
                let top = pixels[p00 + c] as f32 + fx * (pixels[p01 + c] as f32 - pixels[p00 + c] as f32);
                let bottom = pixels[p10 + c] as f32 + fx * (pixels[p11 + c] as f32 - pixels[p10 + c] as f32);
                px[c] = (top + fy * (bottom - top)).round().clamp(0.0, 255.0) as u8;
            }
            luma_sum += 299 * px[0] as u64 + 587 * px[1] as u64 + 114 * px[2] as u64;
        }
    }

    // brightness then contrast: c·(b·p) + (1 − c)·mean(b·p) = c·b·p + (1 − c)·b·mean(p), one affine map per
    // image, applied through a 256-entry table.
    if brightness != 1.0 || contrast != 1.0 {
        let mean = luma_sum as f32 / (1000.0 * (N * N) as f32);
        let gain = contrast * brightness;
        let offset = (1.0 - contrast) * brightness * mean;
        let mut table = [0u8; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = (gain * i as f32 + offset).round().clamp(0.0, 255.0) as u8;
        }
        out.iter_mut().for_each(|p| *p = table[*p as usize]);
    }
    out
}

#[cfg(test)]
mod tests;
