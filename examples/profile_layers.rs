//! Where the backbone's time goes on a device: each stage (stem, expand 1×1, depthwise k×k, project 1×1,
//! head) timed separately over all blocks, batch 8, with a synchronising read after each stage.
//! `cargo run --release --example profile_layers [-- vulkan]` (Vulkan needs `--features vulkan`).

use std::collections::BTreeMap;
use std::time::Instant;

use ajuste::model::depthwise::depthwise_relu6;
use ajuste::model::embed::input_tensor;
use ajuste::model::load_efficientnet;
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor};

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

/// Runs `f`, waits for the device, and adds the elapsed time to `stage`.
fn timed(totals: &mut BTreeMap<&'static str, f64>, stage: &'static str, f: impl FnOnce() -> Tensor<4>) -> Tensor<4> {
    let start = Instant::now();
    let out = f();
    // A one-element read forces the work to finish (async backends would otherwise only queue it).
    let _ = pollster::block_on(out.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data_async());
    *totals.entry(stage).or_default() += start.elapsed().as_secs_f64() * 1000.0;
    out
}

fn main() {
    let device = if std::env::args().any(|a| a == "vulkan") {
        vulkan()
    } else {
        Device::flex()
    };
    let model = load_efficientnet(&std::fs::read(WEIGHTS).unwrap(), &device).unwrap();
    let pixels = vec![100u8; 224 * 224 * 3];
    let images: Vec<&[u8]> = (0..8).map(|_| pixels.as_slice()).collect();
    let mut totals = BTreeMap::new();
    for run in 0..3 {
        let mut t = BTreeMap::new();
        let mut x = timed(&mut t, "1 stem conv 3x3", || model.stem(input_tensor(&images, &device)));
        for block in &model.blocks {
            let input = x.clone();
            let mut h = x;
            if let Some(expand) = &block.expand {
                h = timed(&mut t, "2 expand conv 1x1", || relu6(expand.forward(h)));
            }
            h = timed(&mut t, "3 depthwise conv kxk", || depthwise_relu6(&block.dw, h));
            h = timed(&mut t, "4 project conv 1x1", || block.project.forward(h));
            x = if block.residual {
                timed(&mut t, "5 residual add", || input + h)
            } else {
                h
            };
        }
        timed(&mut t, "6 head conv 1x1 + pool", || {
            model.pool(x).unsqueeze_dims(&[2, 3])
        });
        if run > 0 {
            for (k, v) in t {
                *totals.entry(k).or_default() += v / 2.0;
            }
        }
    }
    let all: f64 = totals.values().sum();
    println!("| stage (batch 8, all blocks) | ms | share |");
    println!("|---|---:|---:|");
    for (k, v) in &totals {
        println!("| {} | {v:.1} | {:.0}% |", &k[2..], v / all * 100.0);
    }
    println!("| total | {all:.1} | {:.1} images/s |", 8000.0 / all);
}

#[cfg(feature = "vulkan")]
fn vulkan() -> Device {
    Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)
}

#[cfg(not(feature = "vulkan"))]
fn vulkan() -> Device {
    panic!("build with --features vulkan")
}
