//! The downloads: model.safetensors loads back into the Rust model with the same predictions, is valid
//! safetensors for an independent parser, and keeps the reference's names, shapes and values.

mod common;

use ajuste::export::{ExportMetadata, config_json, head_safetensors, labels_txt, model_safetensors};
use ajuste::head::{Head, NamedTensor, Trainer};
use ajuste::model::embed::embed_and_classify;
use ajuste::model::{TensorFile, load_efficientnet};
use ajuste::options::{HeadOptions, TrainOptions};
use burn::tensor::{Device, Tensor, TensorData};
use common::golden_input;
use safetensors::tensor::TensorView;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/golden_shipped.safetensors");
const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A trained 3-class head and its metadata (trained for a few epochs on seeded random features).
fn trained(hidden_units: usize) -> (Head, ExportMetadata) {
    let n = 30;
    let mut rng = ajuste::rng::Rng::new(5);
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let features: Vec<f32> = (0..n * 1280)
        .map(|i| rng.next_f32() + (labels[i / 1280] * 7 == i % 1280 % 21) as u8 as f32)
        .collect();
    let options = TrainOptions {
        epochs: 3,
        head: HeadOptions {
            hidden_units,
            ..Default::default()
        },
        ..TrainOptions::default()
    };
    let mut t = Trainer::new(
        features,
        1280,
        labels,
        (0..24).collect(),
        (24..30).collect(),
        3,
        options.clone(),
    )
    .unwrap();
    while !t.is_done() {
        t.step_epoch();
    }
    let names = vec!["cat".to_string(), "dog".into(), "bird \"quoted\"".into()];
    let meta = ExportMetadata::new(names, options, &t, &[1.0, 0.5, 0.0], 24, 6);
    (t.best().0.clone(), meta)
}

/// Independent parse: 8-byte length, JSON header, contiguous in-bounds offsets, sizes matching shapes.
fn parse(bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut spans: Vec<(u64, u64, u64)> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(_, v)| {
            let o = v["data_offsets"].as_array().unwrap();
            let elems: u64 = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product();
            assert_eq!(v["dtype"], "F32");
            (o[0].as_u64().unwrap(), o[1].as_u64().unwrap(), elems * 4)
        })
        .collect();
    spans.sort();
    let mut at = 0;
    for (a, b, size) in spans {
        assert_eq!(a, at, "offsets are contiguous");
        assert_eq!(b - a, size, "byte size matches the shape");
        at = b;
    }
    assert_eq!(
        at as usize,
        bytes.len() - 8 - n,
        "the data section ends where the last tensor does"
    );
    header
}

#[test]
fn model_export_round_trips_into_the_rust_model() {
    let (head, meta) = trained(0);
    let backbone = read(SHIPPED);
    let exported = model_safetensors(&backbone, &head, &meta).unwrap();
    let header = parse(&exported);
    let metadata = header["__metadata__"].as_object().unwrap();
    let labels: Vec<String> = serde_json::from_str(metadata["labels"].as_str().unwrap()).unwrap();
    assert_eq!(labels, meta.labels);
    assert_eq!(metadata["num_classes"], "3");

    // Same predictions: exported model vs shipped backbone + the head applied on the CPU.
    let device = Device::flex();
    let original = load_efficientnet(&backbone, &device).unwrap();
    let reloaded = load_efficientnet(&exported, &device).unwrap();
    assert_eq!(reloaded.num_classes(), 3);
    let input = golden_input(&read(GOLDEN));
    let x = || Tensor::<4>::from_data(TensorData::new(input.clone(), [4, 3, 224, 224]), &device);
    let (emb_a, _) = pollster::block_on(embed_and_classify(&original, x())).unwrap();
    let (emb_b, logits_b) = pollster::block_on(embed_and_classify(&reloaded, x())).unwrap();
    // fp16 → fp32 conversion is exact, so the backbone is the same network.
    assert_eq!(emb_a, emb_b);
    let expected = head.forward(&emb_a, 4);
    let diff = ajuste::floats::max_abs_diff(&expected, &logits_b);
    assert!(diff < 1e-4, "logits differ by {diff}");
    assert_eq!(
        head.predict(&emb_a, 4),
        logits_b.chunks(3).map(ajuste::head::layers::argmax).collect::<Vec<_>>()
    );
}

/// An fp32 backbone, like a user's own export, written by the safetensors crate: the shipped weights widened to
/// f32 with the lowest mantissa bit of every value flipped, so that no value fits in f16 and any rounding on the
/// way through the export would show.
fn fp32_backbone() -> Vec<u8> {
    let shipped = read(SHIPPED);
    let file = TensorFile::parse(&shipped).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = file
        .names()
        .into_iter()
        .map(|name| {
            let (shape, data) = file.f32_any_shape(&name).unwrap();
            let bytes = data.iter().flat_map(|v| f32::from_bits(v.to_bits() ^ 1).to_le_bytes());
            (name, shape, bytes.collect())
        })
        .collect();
    let views = tensors.iter().map(|(name, shape, data)| {
        (
            name,
            TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap(),
        )
    });
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn fp32_backbone_tensors_are_copied_with_names_shapes_and_values() {
    let (head, meta) = trained(0);
    let reference = fp32_backbone();
    let exported = model_safetensors(&reference, &head, &meta).unwrap();
    let a = TensorFile::parse(&reference).unwrap();
    let b = TensorFile::parse(&exported).unwrap();
    assert_eq!(
        a.names(),
        b.names(),
        "same tensor names (the classifier is replaced, not renamed)"
    );
    for name in a.names().iter().filter(|n| !n.starts_with("classifier")) {
        assert_eq!(a.f32_any_shape(name).unwrap(), b.f32_any_shape(name).unwrap(), "{name}");
    }
    assert_eq!(b.shape("classifier.weight").unwrap(), [3, 1280]);
    assert_eq!(b.shape("stem.bn.running_var").unwrap(), [32]);
    assert_eq!(b.shape("blocks.15.project.conv.weight").unwrap(), [320, 1152, 1, 1]);
}

#[test]
fn mlp_head_exports_with_sequential_names_and_loads_back() {
    let (head, meta) = trained(32);
    let exported = model_safetensors(&read(SHIPPED), &head, &meta).unwrap();
    let file = TensorFile::parse(&exported).unwrap();
    assert_eq!(file.shape("classifier.0.weight").unwrap(), [32, 1280]);
    assert_eq!(file.shape("classifier.3.weight").unwrap(), [3, 32]);
    let model = load_efficientnet(&exported, &Device::flex()).unwrap();
    assert_eq!(model.num_classes(), 3);
    assert!(model.classifier.hidden.is_some());
}

#[test]
fn head_only_labels_and_config() {
    let (head, meta) = trained(0);
    let bytes = head_safetensors(&head, &meta).unwrap();
    let header = parse(&bytes);
    assert_eq!(header.len(), 3, "two tensors and the metadata");
    let file = TensorFile::parse(&bytes).unwrap();
    let tensors: Vec<NamedTensor> = file
        .names()
        .into_iter()
        .map(|name| {
            let (shape, data) = file.f32_any_shape(&name).unwrap();
            NamedTensor { name, shape, data }
        })
        .collect();
    assert_eq!(Head::from_tensors(&tensors).unwrap(), head);

    assert_eq!(labels_txt(&meta.labels), "0 cat\n1 dog\n2 bird \"quoted\"\n");
    let config: serde_json::Value = serde_json::from_str(&config_json(&meta)).unwrap();
    assert_eq!(config["id2label"]["2"], "bird \"quoted\"");
    assert_eq!(config["label2id"]["dog"], 1);
    assert_eq!(config["image_size"], 224);
    assert_eq!(config["training_options"]["epochs"], 3);
    assert_eq!(config["metrics"]["epochs_run"], 3);
    assert_eq!(config["metrics"]["per_class_val_accuracy"]["dog"], 0.5);
}

#[test]
fn a_broken_backbone_file_is_an_error_not_a_panic() {
    let (head, meta) = trained(0);
    let shipped = read(SHIPPED);
    let err = model_safetensors(&shipped[..shipped.len() / 2], &head, &meta).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn the_same_model_always_gives_the_same_bytes() {
    // The metadata is a fresh HashMap each time (its order varies): the header is written sorted.
    let (head, meta) = trained(0);
    let first = head_safetensors(&head, &meta).unwrap();
    for _ in 0..8 {
        assert_eq!(head_safetensors(&head, &meta).unwrap(), first);
    }
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "the header stays padded to 8 bytes");
    let parsed = safetensors::SafeTensors::deserialize(&first).unwrap();
    assert_eq!(parsed.names().len(), head.tensors().len());
}
