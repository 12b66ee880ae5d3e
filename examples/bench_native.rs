//! Native benchmark: backbone images/second at batch 1 and 16 on the CPU (flex) backend, and with
//! `--features vulkan` on a GPU through wgpu/Vulkan; plus the 50-epoch head training on the reference
//! embeddings, ours (plain Rust), and with `--features bench-burn-head` the same head written with burn's
//! autodiff on each device. Prints markdown tables.
//! `cargo run --release --example bench_native [--features bench-burn-head] [-- --iters N] [--batches 1,16,64]
//! [--gpu-only]`

use std::time::Instant;

use ajuste::floats::{max_abs, max_abs_diff};
use ajuste::head::Trainer;
use ajuste::model::embed::input_tensor;
use ajuste::model::{EfficientNetLite0, TensorFile, load_efficientnet};
use ajuste::options::TrainOptions;
use burn::tensor::{Device, Tensor};

#[cfg(feature = "bench-burn-head")]
#[path = "../tests/common/burn_head.rs"]
mod burn_head;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
const EMBEDDINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference_embeddings.safetensors"
);

/// Images/s of the backbone at `batch`: (from host pixels, as a user pays: conversion, upload, forward, read-back;
/// with the input tensor already on the device, as PyTorch's benchmark times it: forward and read-back only).
fn images_per_second(model: &EfficientNetLite0, device: &Device, batch: usize, iters: usize) -> (f64, f64) {
    let pixels = vec![128u8; 224 * 224 * 3];
    let images: Vec<&[u8]> = (0..batch).map(|_| pixels.as_slice()).collect();
    let forward = |input: Tensor<4>| {
        // Reading back is part of the cost a user pays; natively a blocking read is fine.
        let _ = pollster::block_on(model.embed(input).into_data_async()).expect("read back");
    };
    let on_device = input_tensor(&images, device);
    let mut rates = [0.0; 2];
    for (rate, from_host) in rates.iter_mut().zip([true, false]) {
        let run = || {
            forward(if from_host {
                input_tensor(&images, device)
            } else {
                on_device.clone()
            })
        };
        run(); // warm-up: kernel compilation, allocations
        let start = Instant::now();
        for _ in 0..iters {
            run();
        }
        *rate = (batch * iters) as f64 / start.elapsed().as_secs_f64();
    }
    (rates[0], rates[1])
}

/// Largest |difference| between `device`'s embeddings and the flex CPU backend's for two distinct images, and the
/// largest |value|: a check that a fast GPU path computes the same function.
fn embedding_gap(weights: &[u8], device: &Device) -> (f32, f32) {
    let images: Vec<Vec<u8>> = (0..2u32)
        .map(|k| {
            (0..224 * 224 * 3u32)
                .map(|i| ((i * (7 + k) + i / 672 * 13) % 256) as u8)
                .collect()
        })
        .collect();
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let embed = |device: &Device| -> Vec<f32> {
        let model = load_efficientnet(weights, device).expect("weights");
        let out = model.embed(input_tensor(&refs, device));
        pollster::block_on(out.into_data_async())
            .expect("read back")
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (cpu, gpu) = (embed(&Device::flex()), embed(device));
    (max_abs_diff(&cpu, &gpu), max_abs(&cpu))
}

/// A reference embedding set: features, their width, labels, train and validation indices, class count.
struct EmbeddingSet {
    features: Vec<f32>,
    dim: usize,
    labels: Vec<usize>,
    train: Vec<usize>,
    val: Vec<usize>,
    classes: usize,
}

fn embedding_set(set: &str) -> EmbeddingSet {
    let bytes = std::fs::read(EMBEDDINGS).expect("reference embeddings (tests/fixtures)");
    let file = TensorFile::parse(&bytes).expect("parses");
    let view = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ints = |name: &str| -> Vec<usize> {
        view.tensor(&format!("{set}.{name}"))
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect()
    };
    let labels = ints("labels");
    let (shape, features) = file.f32_any_shape(&format!("{set}.embeddings")).unwrap();
    EmbeddingSet {
        features,
        dim: shape[1],
        classes: labels.iter().max().unwrap() + 1,
        labels,
        train: ints("train_idx"),
        val: ints("val_idx"),
    }
}

/// Our trainer (plain Rust), 50 epochs, no early stop: (seconds, last validation accuracy).
fn head_training_seconds(set: &EmbeddingSet) -> (f64, f32) {
    let options = TrainOptions {
        patience: 0,
        ..TrainOptions::default()
    };
    let start = Instant::now();
    let mut trainer = Trainer::new(
        set.features.clone(),
        set.dim,
        set.labels.clone(),
        set.train.clone(),
        set.val.clone(),
        set.classes,
        options,
    )
    .unwrap();
    while !trainer.is_done() {
        trainer.step_epoch();
    }
    let accuracy = trainer.history().last().unwrap().val_accuracy;
    (start.elapsed().as_secs_f64(), accuracy)
}

/// The same head through burn's autodiff and Adam on `device`: (seconds, last validation accuracy).
#[cfg(feature = "bench-burn-head")]
fn burn_head_training_seconds(set: &EmbeddingSet, device: &Device) -> (f64, f32) {
    let data = burn_head::HeadData {
        features: &set.features,
        dim: set.dim,
        labels: &set.labels,
        train: &set.train,
        val: &set.val,
        classes: set.classes,
    };
    let start = Instant::now();
    let accuracy = pollster::block_on(burn_head::train_linear_head(&data, device, 50));
    (start.elapsed().as_secs_f64(), accuracy)
}

#[cfg(feature = "vulkan")]
fn gpu_device() -> Option<(&'static str, Device)> {
    Some((
        "wgpu Vulkan (native)",
        Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
    ))
}

#[cfg(not(feature = "vulkan"))]
fn gpu_device() -> Option<(&'static str, Device)> {
    None
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let iters: usize = arg("--iters").and_then(|v| v.parse().ok()).unwrap_or(3);
    let batches: Vec<usize> = arg("--batches").map_or(vec![1, 16, 64], |v| {
        v.split(',').map(|b| b.parse().expect("--batches 1,16,64")).collect()
    });
    let gpu_only = std::env::args().any(|a| a == "--gpu-only");
    let weights = std::fs::read(WEIGHTS).expect("shipped weights");
    let cpu = (!gpu_only).then(|| ("CPU (flex, native)", Device::flex()));
    let devices: Vec<(&str, Device)> = [cpu, gpu_device()].into_iter().flatten().collect();

    println!("| backend | batch | images/s from host pixels | images/s, input on the device |");
    println!("|---|---|---|---|");
    for (name, device) in &devices {
        let model = load_efficientnet(&weights, device).expect("weights");
        for &batch in &batches {
            let (host, on_device) = images_per_second(&model, device, batch, iters);
            println!("| {name} | {batch} | {host:.1} | {on_device:.1} |");
        }
    }
    if let Some((name, device)) = gpu_device() {
        let (gap, scale) = embedding_gap(&weights, &device);
        println!("\n{name} against flex CPU, 2 images: max |embedding difference| {gap:.2e} (max |value| {scale:.2})");
    }
    println!();
    println!("| head training, 50 epochs, linear head | seconds | val accuracy |");
    println!("|---|---|---|");
    for name in ["gcompris3", "gcompris5"] {
        let set = embedding_set(name);
        let (seconds, accuracy) = head_training_seconds(&set);
        println!("| {name}, ours (plain Rust) | {seconds:.3} | {accuracy:.3} |");
        #[cfg(feature = "bench-burn-head")]
        for (device_name, device) in &devices {
            let (seconds, accuracy) = burn_head_training_seconds(&set, device);
            println!("| {name}, burn autodiff + Adam on {device_name} | {seconds:.3} | {accuracy:.3} |");
        }
    }
}
