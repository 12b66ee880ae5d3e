//! Auto on letters far from ImageNet photos: a subset of bench/data/letters26 (8 letters, 5 images each to
//! fine-tune on, 8 each held out), few epochs. The shipped Auto (`run_job`, as the page runs it: head, then LoRA on
//! the last 8 blocks) must beat head only on the held-out images, as the full benchmark shows at scale.

mod common;

use ajuste::data::{ClassData, Dataset, Sample};
use ajuste::head::argmax;
use ajuste::model::embed::input_tensor;
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::{FinetuneChoice, TrainOptions};
use ajuste::predict::exported_model;
use ajuste::preprocess::prepare_rgb;
use ajuste::train::job::{Job, run_job};
use ajuste::train::{EmbeddingCache, TrainEvent, Trained};
use burn::tensor::Device;
use common::job_host::TestHost;

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

/// A dataset of the 8 letters' training images, in memory.
fn dataset(images: Vec<Vec<u8>>, labels: &[usize]) -> Dataset {
    let mut classes: Vec<Vec<Sample>> = (0..CLASSES).map(|_| Vec::new()).collect();
    for (i, (pixels, &label)) in images.into_iter().zip(labels).enumerate() {
        classes[label].push(Sample::new(format!("{i}.png"), pixels));
    }
    let classes = classes
        .into_iter()
        .enumerate()
        .map(|(c, samples)| ClassData::new(((b'A' + c as u8) as char).to_string(), samples))
        .collect();
    Dataset { classes }
}

/// Runs the shipped job (what the page runs) and returns the kept model.
fn train(base: &EfficientNetLite0, data: &Dataset, options: TrainOptions, cache: &mut EmbeddingCache) -> Trained {
    let device = Device::flex();
    let host = TestHost::never_stopping();
    let job = Job {
        model: base,
        device: &device,
        dataset: data,
        options,
        batch_size: 16,
    };
    pollster::block_on(run_job(job, cache, &host));
    match host.events.into_inner().pop() {
        Some(TrainEvent::Finished(trained)) => *trained,
        other => panic!("the job did not finish: {other:?}"),
    }
}

/// Accuracy of a kept model on `images`, through its export (what Try it and every download use).
fn accuracy(weights: &[u8], trained: &Trained, images: &[Vec<u8>], labels: &[usize]) -> f32 {
    let device = Device::flex();
    let model = load_efficientnet(&exported_model(weights, trained).unwrap(), &device).unwrap();
    let mut hits = 0;
    for (chunk, truth) in images.chunks(16).zip(labels.chunks(16)) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let logits = model.forward(input_tensor(&refs, &device));
        let logits = pollster::block_on(logits.into_data_async())
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        let classes = logits.len() / refs.len();
        hits += logits
            .chunks(classes)
            .zip(truth)
            .filter(|(row, label)| argmax(row) == **label)
            .count();
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
    let data = dataset(images, &labels);
    let mut cache = EmbeddingCache::default();
    // Head only gets the default 50 epochs; Auto (its head run and its LoRA run) 15, to keep the test short.
    let head_options = TrainOptions {
        finetune: FinetuneChoice::Head,
        patience: 0,
        batch_size: 16,
        ..TrainOptions::default()
    };
    let auto_options = TrainOptions {
        finetune: FinetuneChoice::Auto,
        epochs: 15,
        ..head_options.clone()
    };
    let head_only = train(&base, &data, head_options, &mut cache);
    let auto = train(&base, &data, auto_options, &mut cache);
    let explanation = auto.report.explanation.clone().unwrap_or_default();
    assert_eq!(auto.report.runs.len(), 2, "Auto ran the head, then LoRA");
    let head_accuracy = accuracy(&weights, &head_only, &test_images, &test_labels);
    let auto_accuracy = accuracy(&weights, &auto, &test_images, &test_labels);
    eprintln!(
        "head only {head_accuracy:.3}, Auto {auto_accuracy:.3} ({:?} kept): {explanation}",
        auto.report.mode
    );
    assert!(
        auto_accuracy > head_accuracy,
        "Auto ({auto_accuracy:.3}) did not beat head only ({head_accuracy:.3}) on held-out letters: {explanation}"
    );
}
