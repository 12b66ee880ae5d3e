//! The Rust EfficientNet-Lite0 on the CPU (flex) backend reproduces the PyTorch reference run on the same
//! shipped weights (tests/fixtures/golden_shipped.safetensors, made by scripts/make_goldens.py).

mod common;

use ajuste::model::load_efficientnet;
use burn::tensor::Device;
use common::run_goldens;

const SHIPPED_WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/golden_shipped.safetensors");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Same weights on both sides (fp16 widens to fp32 exactly), so only the arithmetic differs: per-block channel
/// means, embeddings and logits within 1e-4, and the expected top-1.
#[test]
fn shipped_weights_match_the_pytorch_reference_within_1e4() {
    let device = Device::flex();
    let model = load_efficientnet(&read(SHIPPED_WEIGHTS), &device).expect("shipped weights load");
    assert_eq!(model.num_classes(), 1000);
    let report = pollster::block_on(run_goldens(&model, &read(GOLDEN), &device));
    println!("{report:#?}");
    report.assert_within(1e-4);
}
