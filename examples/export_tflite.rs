//! Writes `model.tflite` and `model_int8.tflite` from a trained `model.safetensors` (the page's download or
//! `ajuste train`'s), the int8 model calibrated on the images of a folder of class folders (the training
//! images), as the page does in its worker; for `scripts/check_tflite.py` and the table in
//! `bench/results/2026-12-06-tflite.md`. Also writes `golden.probabilities.safetensors`: the Rust model's
//! probabilities on the four golden inputs of tests/fixtures, which `check_tflite.py --probabilities` compares
//! the float model's with.
//!
//!     cargo run --release --example export_tflite -- MODEL.safetensors TRAIN_DIR OUT_DIR

use std::path::{Path, PathBuf};
use std::time::Instant;

use ajuste::export::tflite::{calibrate, calibration_subset};
use ajuste::export::{model_tflite, model_tflite_int8};
use ajuste::head::metrics::softmax;
use ajuste::model::embed::input_tensor;
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use burn::tensor::Device;

/// Every file of the class folders of `dir`, sorted (class after class, as the page lists its images).
fn images(dir: &Path) -> Vec<PathBuf> {
    let mut classes: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the training folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    classes
        .iter()
        .flat_map(|c| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(c).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            files
        })
        .collect()
}

/// The Rust model's probabilities on the golden inputs, as `[4, K]` f32 in a safetensors file.
fn golden_probabilities(network: &EfficientNetLite0, device: &Device) -> Vec<u8> {
    let root = env!("CARGO_MANIFEST_DIR");
    let golden = std::fs::read(format!("{root}/tests/fixtures/golden_shipped.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&golden).unwrap();
    let pixels = file.tensor("input_u8_hwc").unwrap().data().to_vec();
    let images: Vec<&[u8]> = pixels.chunks(224 * 224 * 3).collect();
    let mut flat = Vec::new();
    for image in &images {
        let logits = network.forward(input_tensor(&[image], device));
        let logits = pollster::block_on(logits.into_data_async())
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        flat.extend(softmax(&logits));
    }
    let shape = vec![images.len(), flat.len() / images.len()];
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &bytes).unwrap();
    safetensors::serialize([("probabilities", view)], None).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, train, out] = &args[..] else {
        eprintln!("usage: export_tflite MODEL.safetensors TRAIN_DIR OUT_DIR");
        std::process::exit(2);
    };
    let bytes = std::fs::read(model).expect("the model file");
    std::fs::create_dir_all(out).unwrap();
    let started = Instant::now();
    // The "none of these" threshold of `config.json` beside the model (`ajuste train` and the page write it).
    let config = Path::new(model).with_file_name("config.json");
    let threshold = std::fs::read(&config)
        .ok()
        .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
        .and_then(|c| c["none_of_these"]["threshold"].as_f64())
        .map(|t| t as f32);
    eprintln!("none of these: {threshold:?} (from {})", config.display());
    let float = model_tflite(&bytes, threshold).expect("model.tflite");
    std::fs::write(format!("{out}/model.tflite"), &float).unwrap();
    eprintln!("model.tflite: {} bytes in {:.2?}", float.len(), started.elapsed());

    let files = images(Path::new(train));
    // Only the images calibration uses are read and prepared (the page reads them from its storage the same way).
    let chosen = calibration_subset(files.len());
    let prepared: Vec<Vec<u8>> = chosen
        .iter()
        .map(|&i| ajuste::preprocess::prepare_rgb(&std::fs::read(&files[i]).unwrap()).expect("an image"))
        .collect();
    let refs: Vec<&[u8]> = prepared.iter().map(|p| p.as_slice()).collect();
    let device = Device::flex();
    let network = load_efficientnet(&bytes, &device).expect("the network");
    std::fs::write(
        format!("{out}/golden.probabilities.safetensors"),
        golden_probabilities(&network, &device),
    )
    .unwrap();
    let started = Instant::now();
    let ranges = pollster::block_on(calibrate(&network, &refs, &device, |_, _| {})).expect("calibration");
    let calibrated = started.elapsed();
    let int8 = model_tflite_int8(&bytes, &ranges, threshold).expect("model_int8.tflite");
    std::fs::write(format!("{out}/model_int8.tflite"), &int8).unwrap();
    eprintln!(
        "model_int8.tflite: {} bytes, calibrated on {} of {} training images in {calibrated:.2?} (CPU, {} threads)",
        int8.len(),
        ranges.images,
        files.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
