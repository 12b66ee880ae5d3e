//! In headless Chromium (wasm-bindgen-test): the golden check on WebGPU and on the CPU fallback, with
//! async-only read-back (a synchronous read panics in a browser, so passing here proves there is none).
//! Run by `scripts/test.sh`; needs Chromium started with --enable-unsafe-webgpu (webdriver.json).
#![cfg(target_arch = "wasm32")]

mod common;

use ajuste::model::load_efficientnet;
use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use common::run_goldens;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The weights the app ships, and the PyTorch reference's outputs for them (scripts/make_goldens.py).
static SHIPPED_WEIGHTS: &[u8] = include_bytes!("../public/models/efficientnet_lite0.safetensors");
static GOLDEN: &[u8] = include_bytes!("fixtures/golden_shipped.safetensors");

fn log(message: &str) {
    web_sys::console::log_1(&message.into());
}

#[wasm_bindgen_test]
async fn webgpu_backbone_matches_the_reference() {
    ajuste::wasm_init::init_once();
    // No skip: a browser without a WebGPU adapter fails here, loudly.
    let device = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .expect("a WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    let model = load_efficientnet(SHIPPED_WEIGHTS, &device).expect("weights load");
    let report = run_goldens(&model, GOLDEN, &device).await;
    log(&format!("webgpu golden: {report:?}"));
    report.assert_within(1e-3);
}

#[wasm_bindgen_test]
async fn cpu_fallback_backbone_matches_the_reference() {
    ajuste::wasm_init::init_once();
    let device = Device::flex();
    let model = load_efficientnet(SHIPPED_WEIGHTS, &device).expect("weights load");
    let report = run_goldens(&model, GOLDEN, &device).await;
    log(&format!("cpu golden: {report:?}"));
    report.assert_within(1e-4);
}
