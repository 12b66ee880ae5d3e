//! The Rust EfficientNet-Lite0 on the CPU (flex) backend reproduces the PyTorch reference.

mod common;

use ajuste::model::{EMBEDDING_DIM, load_efficientnet};
use burn::tensor::Device;
use common::{EXPECTED_TOP1, run_goldens};

const SHARED_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/model");
const SHIPPED_WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn fp32_weights_match_the_reference_within_1e4() {
    let device = Device::flex();
    let model = load_efficientnet(
        &read(&format!("{SHARED_MODEL}/efficientnet_lite0_fp32.safetensors")),
        &device,
    )
    .expect("reference weights load");
    let golden = read(&format!("{SHARED_MODEL}/golden_fp32.safetensors"));
    let report = pollster::block_on(run_goldens(&model, &golden, &device));
    println!("{report:#?}");
    report.assert_within(1e-4);
    assert_eq!(model.num_classes(), 1000);
    let _ = EMBEDDING_DIM;
}

/// The shipped file stores conv weights in fp16 (BN in fp32) to halve the download; this is the error it costs
/// (measured: see public/models/README.md), asserted with the margins chosen there.
#[test]
fn shipped_fp16_weights_stay_within_the_chosen_tolerance() {
    let device = Device::flex();
    let model = load_efficientnet(&read(SHIPPED_WEIGHTS), &device).expect("shipped weights load");
    let golden = read(&format!("{SHARED_MODEL}/golden_fp32.safetensors"));
    let report = pollster::block_on(run_goldens(&model, &golden, &device));
    println!("{report:#?}");
    assert!(
        report.embedding_max_diff < 0.04,
        "embedding differs by {}",
        report.embedding_max_diff
    );
    assert!(
        report.logits_max_diff < 0.05,
        "logits differ by {}",
        report.logits_max_diff
    );
    assert_eq!(report.top1, EXPECTED_TOP1, "top-1 must not change with fp16 storage");
}
