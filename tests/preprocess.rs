//! Rust preprocessing against the reference's (Pillow) output for the same photos.

mod common;

use ajuste::preprocess::{IMAGE_SIZE, normalize_hwc, prepare_rgb};
use common::golden_input;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn read(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_224_png_normalises_to_the_golden_input_exactly() {
    let input = golden_input(&read("golden_shipped.safetensors"));
    let plane = 3 * IMAGE_SIZE * IMAGE_SIZE;
    for (i, name) in ["gradient.png", "random_seed0.png", "chelsea_cat.png", "coffee.png"]
        .iter()
        .enumerate()
    {
        let x = normalize_hwc(&prepare_rgb(&read(&format!("golden/{name}"))).unwrap());
        assert_eq!(x, input[i * plane..(i + 1) * plane], "{name}");
    }
}

/// The originals (451×300, 600×400) cropped and resized in Rust vs the reference's Pillow BICUBIC output (the
/// golden 224 PNGs). Our resampler follows Pillow's fixed-point arithmetic, so the result is identical, byte for
/// byte. Measured with crates instead: `image` CatmullRom max |Δ| 1 / 3, `fast_image_resize` 6.1 max 1 / 8.
#[test]
fn resizing_the_originals_matches_pillow() {
    for (original, reference) in [
        ("chelsea_cat_original.png", "chelsea_cat.png"),
        ("coffee_original.png", "coffee.png"),
    ] {
        let ours = prepare_rgb(&read(&format!("golden/{original}"))).unwrap();
        let theirs = prepare_rgb(&read(&format!("golden/{reference}"))).unwrap();
        let diffs: Vec<i32> = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        let max = *diffs.iter().max().unwrap();
        println!("{original}: mean |Δ| {mean:.3}, max {max}");
        assert_eq!(max, 0, "{original}: mean |Δ| {mean}, max {max}");
    }
}
