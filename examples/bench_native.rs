//! Native benchmark: backbone images/second at batch 1 and 16 on the CPU (flex) backend, and with
//! `--features vulkan` on a GPU through wgpu/Vulkan; plus the 50-epoch head training on the reference
//! embeddings. Prints a markdown table. `cargo run --release --example bench_native [-- --iters N]`

use std::time::Instant;

use ajuste::model::embed::input_tensor;
use ajuste::model::{EfficientNetLite0, TensorFile, load_efficientnet};
use ajuste::train::{TrainOptions, Trainer};
use burn::tensor::Device;

const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
const EMBEDDINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/model/reference_embeddings.safetensors"
);

fn images_per_second(model: &EfficientNetLite0, device: &Device, batch: usize, iters: usize) -> f64 {
    let pixels = vec![128u8; 224 * 224 * 3];
    let images: Vec<&[u8]> = (0..batch).map(|_| pixels.as_slice()).collect();
    let run = || {
        let out = model.embed(input_tensor(&images, device));
        // Reading back is part of the cost a user pays; natively a blocking read is fine.
        let _ = pollster::block_on(out.into_data_async()).expect("read back");
    };
    run(); // warm-up: kernel compilation, allocations
    let start = Instant::now();
    for _ in 0..iters {
        run();
    }
    (batch * iters) as f64 / start.elapsed().as_secs_f64()
}

fn head_training_seconds(set: &str) -> (f64, f32) {
    let bytes = std::fs::read(EMBEDDINGS).expect("reference embeddings (../shared/model)");
    let file = TensorFile::parse(&bytes).expect("parses");
    let ints = |name: &str| -> Vec<usize> {
        let view = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let t = view.tensor(name).unwrap();
        t.data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect()
    };
    let labels = ints(&format!("{set}.labels"));
    let (shape, features) = file.f32_any_shape(&format!("{set}.embeddings")).unwrap();
    let k = labels.iter().max().unwrap() + 1;
    let options = TrainOptions {
        patience: 0,
        ..TrainOptions::default()
    };
    let start = Instant::now();
    let mut trainer = Trainer::new(
        features,
        shape[1],
        labels,
        ints(&format!("{set}.train_idx")),
        ints(&format!("{set}.val_idx")),
        k,
        options,
    )
    .unwrap();
    while !trainer.is_done() {
        trainer.step_epoch();
    }
    let accuracy = trainer.history().last().unwrap().val_accuracy;
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

fn main() {
    let iters: usize = std::env::args()
        .skip_while(|a| a != "--iters")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let weights = std::fs::read(WEIGHTS).expect("shipped weights");
    let devices: Vec<(&str, Device)> = [Some(("CPU (flex, native)", Device::flex())), gpu_device()]
        .into_iter()
        .flatten()
        .collect();

    println!("| backend | batch | images/s |");
    println!("|---|---|---|");
    for (name, device) in &devices {
        let model = load_efficientnet(&weights, device).expect("weights");
        for batch in [1, 16] {
            let ips = images_per_second(&model, device, batch, iters);
            println!("| {name} | {batch} | {ips:.1} |");
        }
    }
    println!();
    println!("| head training, 50 epochs, linear head | seconds | val accuracy |");
    println!("|---|---|---|");
    for set in ["gcompris3", "gcompris5"] {
        let (seconds, accuracy) = head_training_seconds(set);
        println!("| {set} (native) | {seconds:.3} | {accuracy:.3} |");
    }
}
