//! In headless Chromium (wasm-bindgen-test): the golden check on WebGPU and on the CPU fallback, with
//! async-only read-back (a synchronous read panics in a browser, so passing here proves there is none).
//! Run by `scripts/test.sh`; needs Chromium started with --enable-unsafe-webgpu (webdriver.json).
#![cfg(target_arch = "wasm32")]

mod common;

use ajuste::model::load_efficientnet;
use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use common::lora_steps::{lora_history, max_diff};
use common::run_goldens;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The weights the app ships, and the PyTorch reference's outputs for them (scripts/make_goldens.py).
static SHIPPED_WEIGHTS: &[u8] = include_bytes!("../public/models/efficientnet_lite0.safetensors");
static GOLDEN: &[u8] = include_bytes!("fixtures/golden_shipped.safetensors");
/// The native run's losses for `common::lora_steps` (pinned by tests/finetune.rs).
static LORA_STEPS: &str = include_str!("fixtures/lora_steps.json");

thread_local! {
    /// One WebGPU device for the whole page: burn refuses to initialise the same device twice.
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

async fn webgpu() -> Device {
    if let Some(device) = WEBGPU.with_borrow(Clone::clone) {
        return device;
    }
    // No skip: a browser without a WebGPU adapter fails here, loudly.
    let device = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .expect("a WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    WEBGPU.set(Some(device.clone()));
    device
}

/// A few LoRA steps (burn autodiff on `device`) give the native losses within 1e-3.
async fn check_lora_steps(device: Device, name: &str) {
    let model = load_efficientnet(SHIPPED_WEIGHTS, &device).expect("weights load");
    let history = lora_history(&model).await;
    let pinned: serde_json::Value = serde_json::from_str(LORA_STEPS).unwrap();
    let pinned: Vec<[f32; 2]> = serde_json::from_value(pinned["history"].clone()).unwrap();
    let diff = max_diff(&history, &pinned);
    log(&format!("{name} LoRA steps: {history:?}, max |diff| to native {diff}"));
    assert!(diff < 1e-3, "{name}: LoRA losses differ from native by {diff}");
}

fn log(message: &str) {
    web_sys::console::log_1(&message.into());
}

#[wasm_bindgen_test]
async fn webgpu_backbone_matches_the_reference() {
    ajuste::wasm_init::init_once();
    let device = webgpu().await;
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

#[wasm_bindgen_test]
async fn cpu_lora_steps_match_native() {
    ajuste::wasm_init::init_once();
    check_lora_steps(Device::flex(), "cpu").await;
}

#[wasm_bindgen_test]
async fn webgpu_lora_steps_match_native() {
    ajuste::wasm_init::init_once();
    check_lora_steps(webgpu().await, "webgpu").await;
}

/// Our tiled 1×1 kernel (`tiled_1x1`, the 1×1 convs of inference on WebGPU) against burn's conv on shapes that
/// fill no tile exactly (rows, input and output channels not multiples of 64 or 16), with and without ReLU6.
#[wasm_bindgen_test]
async fn webgpu_tiled_1x1_matches_burn() {
    use ajuste::model::tiled_1x1::conv1x1;
    use burn::tensor::activation::relu6;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Distribution, Tensor};
    ajuste::wasm_init::init_once();
    let device = webgpu().await;
    let (n, h, w, c_in, c_out) = (2, 9, 7, 40, 72);
    let x = Tensor::<4>::random([n, h, w, c_in], Distribution::Normal(0.0, 2.0), &device);
    let weight = Tensor::<2>::random([c_out, c_in], Distribution::Normal(0.0, 0.5), &device);
    let bias = Tensor::<1>::random([c_out], Distribution::Normal(0.0, 1.0), &device);
    let reference = conv2d(
        x.clone().permute([0, 3, 1, 2]),
        weight.clone().reshape([c_out, c_in, 1, 1]),
        Some(bias.clone()),
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    )
    .permute([0, 2, 3, 1]);
    for clamp in [false, true] {
        let ours = conv1x1(&x, &weight, &bias, clamp).expect("f32 operands on WebGPU");
        let expected = if clamp {
            relu6(reference.clone())
        } else {
            reference.clone()
        };
        let gap = (ours - expected).abs().max().into_data_async().await.unwrap();
        let gap: f32 = gap.try_to_vec::<f32>().unwrap()[0];
        assert!(
            gap < 1e-4,
            "tiled 1×1 (ReLU6 {clamp}) differs from burn's conv by {gap}"
        );
    }
}

/// Our CPU kernels with their wasm SIMD bodies (natively only the scalar fallback runs): the depthwise conv +
/// ReLU6, row by row (large planes) and channels-last (7×7 and smaller), equals flex's conv + ReLU6 bit for bit, as
/// the README says; the 1×1 conv kernel equals a plain scalar sum in the same order to rounding.
#[wasm_bindgen_test]
fn simd_kernels_match_their_references() {
    use ajuste::model::depthwise::depthwise_relu6;
    use ajuste::model::efficientnet::tf_same_padding;
    use ajuste::model::pointwise;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tensor};

    // Built without wasm SIMD, the test would check the fallback.
    const { assert!(cfg!(target_feature = "simd128")) };
    let device = Device::flex();
    let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    // Planes from 7² (channels-last) to 40² (row by row); channel counts with remainders after the blocks.
    for (channels, size, kernel, stride) in [
        (19, 7, 3, 1),
        (35, 7, 5, 1),
        (24, 14, 5, 2),
        (16, 28, 3, 1),
        (3, 40, 3, 2),
    ] {
        let conv = Conv2dConfig::new([channels, channels], [kernel, kernel])
            .with_stride([stride, stride])
            .with_groups(channels)
            .with_padding(tf_same_padding(size, kernel, stride))
            .init(&device);
        let x = Tensor::<4>::random([2, channels, size, size], Distribution::Normal(0.0, 20.0), &device);
        let ours = values(depthwise_relu6(&conv, x.clone()));
        let flex = values(conv.forward(x).clamp(0.0, 6.0));
        let case = format!("depthwise {channels} ch, {size}², k{kernel} s{stride}");
        assert_eq!(ours.len(), flex.len(), "{case}");
        let differ = ours
            .iter()
            .zip(&flex)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{case}: {differ} of {} values differ from flex", ours.len());
        assert!(
            ours.contains(&0.0) && ours.contains(&6.0),
            "{case}: the clamp is exercised"
        );
    }
    let mut rng = ajuste::rng::Rng::new(3);
    let mut random = |n: usize| (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect::<Vec<f32>>();
    // Input channels past one pass of 256 and past the packing threshold; pixels leaving partial strips.
    for (c_in, c_out, pixels) in [(16, 24, 49), (96, 13, 196), (300, 9, 70)] {
        let (x, w, bias) = (random(c_in * pixels), random(c_out * c_in), random(c_out));
        for clamp in [false, true] {
            let mut ours = vec![0f32; c_out * pixels];
            pointwise::image(&x, &w, &bias, [c_in, pixels], clamp, &mut ours);
            for (co, row) in ours.chunks(pixels).enumerate() {
                for (p, &got) in row.iter().enumerate() {
                    let sum: f32 = (0..c_in).map(|ci| w[co * c_in + ci] * x[ci * pixels + p]).sum();
                    let want = if clamp {
                        (sum + bias[co]).clamp(0.0, 6.0)
                    } else {
                        sum + bias[co]
                    };
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "1×1 {c_in}→{c_out} at pixel {p}, channel {co}, clamp {clamp}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
