//! Auto on letters far from ImageNet photos: a subset of bench/data/letters26 (8 letters, 5 images each to
//! fine-tune on, 8 each held out), few epochs. Auto (head, then LoRA on the last 8 blocks) must beat head only on
//! the held-out images, as the full benchmark shows at scale (README, "Deeper fine-tuning").

use ajuste::data::split::stratified_split;
use ajuste::finetune::{AutoChoice, AutoTrainer, FinetuneOptions, TrainData};
use ajuste::model::embed::{embed_batch, input_tensor};
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::preprocess::prepare_rgb;
use ajuste::train::{Head, TrainOptions};
use burn::tensor::Device;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CLASSES: usize = 8;

/// (images, labels) of the first `per_class` listed images of each of the first 8 letters in `part`.
fn letters(part: &str, per_class: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{ROOT}/bench/data/letters26/letters26_split.json")).unwrap())
            .unwrap();
    let (mut images, mut labels, mut seen) = (Vec::new(), Vec::new(), [0usize; CLASSES]);
    for path in split[part].as_array().unwrap() {
        let path = path.as_str().unwrap();
        let class = (path.as_bytes()[0] - b'A') as usize;
        if class >= CLASSES || seen[class] == per_class {
            continue;
        }
        seen[class] += 1;
        let bytes = std::fs::read(format!("{ROOT}/bench/data/letters26/{path}")).unwrap();
        images.push(prepare_rgb(&bytes).unwrap_or_else(|e| panic!("{path}: {e}")));
        labels.push(class);
    }
    (images, labels)
}

fn embed(model: &EfficientNetLite0, images: &[Vec<u8>], device: &Device) -> Vec<f32> {
    images
        .chunks(16)
        .flat_map(|c| {
            let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            pollster::block_on(embed_batch(model, &refs, device)).unwrap()
        })
        .collect()
}

fn head_accuracy(head: &Head, model: &EfficientNetLite0, images: &[Vec<u8>], labels: &[usize], device: &Device) -> f32 {
    let predicted = head.predict(&embed(model, images, device), images.len());
    let hits = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    hits as f32 / labels.len() as f32
}

fn model_accuracy(model: &EfficientNetLite0, images: &[Vec<u8>], labels: &[usize], device: &Device) -> f32 {
    let mut hits = 0;
    for (chunk, truth) in images.chunks(16).zip(labels.chunks(16)) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let predicted = model.forward(input_tensor(&refs, device)).argmax(1);
        let predicted = pollster::block_on(predicted.into_data_async())
            .unwrap()
            .convert::<i64>();
        let predicted = predicted.try_to_vec::<i64>().unwrap();
        hits += predicted.iter().zip(truth).filter(|&(&p, &l)| p as usize == l).count();
    }
    hits as f32 / labels.len() as f32
}

#[test]
fn auto_beats_head_only_on_letters() {
    let device = Device::flex();
    let weights = std::fs::read(format!("{ROOT}/public/models/efficientnet_lite0.safetensors")).unwrap();
    let base = load_efficientnet(&weights, &device).unwrap();
    let (images, labels) = letters("train", 5);
    let (test_images, test_labels) = letters("test", 8);
    let split = stratified_split(&labels, 0.2, 0);
    let data = TrainData {
        images,
        labels,
        num_classes: CLASSES,
        train: split.train,
        val: split.val,
    };
    let head_options = TrainOptions {
        epochs: 50,
        patience: 0,
        ..TrainOptions::default()
    };
    let lora_options = FinetuneOptions {
        epochs: 15,
        batch_size: 16,
        patience: 0,
        ..FinetuneOptions::default()
    };
    let mut auto = AutoTrainer::new(&base, data, head_options, lora_options, None).unwrap();
    while !auto.is_done() {
        pollster::block_on(auto.step()).unwrap();
    }
    let report = auto.report().unwrap();
    let head_only = head_accuracy(
        auto.head_trainer().unwrap().best().0,
        &base,
        &test_images,
        &test_labels,
        &device,
    );
    let auto_accuracy = match report.choice {
        AutoChoice::Lora => model_accuracy(
            &auto.lora_trainer().unwrap().best_model(),
            &test_images,
            &test_labels,
            &device,
        ),
        AutoChoice::HeadOnly => head_only,
    };
    eprintln!(
        "head only {head_only:.3}, Auto {auto_accuracy:.3}: {}",
        report.explanation
    );
    assert!(
        auto_accuracy > head_only,
        "Auto ({auto_accuracy:.3}) did not beat head only ({head_only:.3}) on held-out letters: {}",
        report.explanation
    );
}
