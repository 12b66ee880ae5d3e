//! The backbone on the browser's WebGPU adapter at the batches a real GPU wants, timed as ONNX Runtime Web's page
//! times itself (bench/peers/ort.html): host data in, embeddings back on the host. Two inputs: the app's (u8 pixels
//! uploaded, normalised on the GPU) and one uploaded once and reused (the network alone); and ten batches queued
//! with one read-back at the end (the GPU's throughput, without a read-back's latency per batch); then issue 8's
//! fine-tuning step (`?steps=` timed steps per recipe). Shared by
//! tests/bench_webgpu.rs (the page's main thread) and tests/bench_webgpu_worker.rs (a dedicated worker, where the
//! app computes). Meant for a hardware adapter (bench/device/browser_gpu.sh); on SwiftShader keep the batches
//! small: `?batches=1,2&iters=2&steps=0` on the page's address picks them (main thread only: a worker's
//! `location` is its script's, so the worker variant runs the defaults).

use ajuste::finetune::{DeepTrainer, Phase, TrainData};
use ajuste::model::embed::input_tensor;
use ajuste::model::{EfficientNetLite0, load_efficientnet};
use ajuste::options::FinetuneMode;
use ajuste::options::{DeepOptions, TrainOptions};
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{Device, Tensor};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[path = "webgpu_ops.rs"]
mod ops;

static WEIGHTS: &[u8] = include_bytes!("../../public/models/efficientnet_lite0.safetensors");

fn global(key: &str) -> JsValue {
    get(&js_sys::global(), key)
}

/// `performance.now()` on the page or in a worker.
fn now() -> f64 {
    let performance = global("performance");
    let f = get(&performance, "now").dyn_into::<js_sys::Function>().unwrap();
    f.call0(&performance).unwrap().as_f64().unwrap()
}

fn print(line: String) {
    web_sys::console::log_1(&format!("BENCH {line}").into());
}

/// `name=1,2,3` from the page's query string, or `default`.
fn query_list(name: &str, default: &[usize]) -> Vec<usize> {
    let search = get(&global("location"), "search").as_string().unwrap_or_default();
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// What the browser says its default adapter is (vendor, architecture, whether it is a software fallback).
async fn adapter_info() -> String {
    let gpu = get(&global("navigator"), "gpu");
    let request = get(&gpu, "requestAdapter").dyn_into::<js_sys::Function>().unwrap();
    let adapter = JsFuture::from(js_sys::Promise::from(request.call0(&gpu).unwrap()))
        .await
        .unwrap();
    let info = get(&adapter, "info");
    let text = |k: &str| get(&info, k).as_string().unwrap_or_default();
    format!(
        "vendor \"{}\", architecture \"{}\", fallback {}",
        text("vendor"),
        text("architecture"),
        get(&info, "isFallbackAdapter").as_bool().unwrap_or(false)
    )
}

/// Median and first (cold) time of `iters` + 1 runs of `run`, in ms.
async fn time<F: std::future::Future<Output = ()>>(iters: usize, mut run: impl FnMut() -> F) -> (f64, f64) {
    let t0 = now();
    run().await;
    let cold = now() - t0;
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..iters {
        let t0 = now();
        run().await;
        times.push(now() - t0);
    }
    times.sort_by(f64::total_cmp);
    (times.get(times.len() / 2).copied().unwrap_or(cold), cold)
}

async fn embed(model: &EfficientNetLite0, input: Tensor<4>) {
    model.embed(input).into_data_async().await.expect("read back");
}

/// `place`: where it runs, for the table.
pub async fn run(place: &str) {
    ajuste::wasm_init::init_once();
    let device = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .expect("WebGPU adapter");
    print(format!("{place}; adapter: {}", adapter_info().await));
    let model = load_efficientnet(WEIGHTS, &device).expect("weights");
    let iters = query_list("iters", &[20])[0];
    print("| input | batch | median ms/batch | images/s | first (cold) ms | timed runs |".into());
    print("|---|---:|---:|---:|---:|---:|".into());
    for batch in query_list("batches", &[1, 16, 64, 128]) {
        // Distinct images, so nothing can be shared between them.
        let pixels: Vec<Vec<u8>> = (0..batch)
            .map(|b| (0..224 * 224 * 3).map(|i| ((i * 7 + b * 13) % 251) as u8).collect())
            .collect();
        let images: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
        let (host, host_cold) = time(iters, || embed(&model, input_tensor(&images, &device))).await;
        let resident = input_tensor(&images, &device);
        let (dev, dev_cold) = time(iters, || embed(&model, resident.clone())).await;
        // Ten batches queued before one read-back.
        let (m, r) = (&model, &resident);
        let (queued, queued_cold) = time(iters.div_ceil(10), || async move {
            let outs: Vec<_> = (0..10).map(|_| m.embed(r.clone())).collect();
            for out in outs {
                out.into_data_async().await.expect("read back");
            }
        })
        .await;
        let rows = [
            ("u8 pixels from the host", host, host_cold),
            ("input already on the GPU", dev, dev_cold),
            (
                "on the GPU, 10 batches queued (ms per batch)",
                queued / 10.0,
                queued_cold / 10.0,
            ),
        ];
        for (name, ms, cold) in rows {
            print(format!(
                "| {name} | {batch} | {ms:.1} | {:.0} | {cold:.0} | {iters} |",
                batch as f64 * 1000.0 / ms
            ));
        }
    }
    print(String::new());
    print("| batch | ms per stage, each read back before the next |".into());
    print("|---:|---|".into());
    bench_stages(&model, &device, query_list("profile", &[1, 16])).await;
    ops::bench_ops(
        &model,
        &device,
        &query_list("ops", &[]),
        &query_list("opbatch", &[1, 16]),
    )
    .await;
    bench_training(&model, query_list("steps", &[20])[0]).await;
}

/// Images/s of the trainer's steps (forward + backward + AdamW, batch 32) on 96 distinct images, after the steps
/// that fill its caches: the frozen prefix run every step (`cached` false, the app with augmentation on a large
/// set) or the activations at the cut cached. As `bench_finetune`'s throughput natively.
async fn train_rate(model: &EfficientNetLite0, mode: FinetuneMode, cached: bool, steps: usize) -> f64 {
    let images: Vec<Vec<u8>> = (0..96)
        .map(|b| (0..224 * 224 * 3).map(|i| ((i * 7 + b * 13) % 251) as u8).collect())
        .collect();
    let data = TrainData {
        labels: (0..96).map(|i| i % 4).collect(),
        images,
        keys: Vec::new(),
        num_classes: 4,
        train: (0..96).collect(),
        val: Vec::new(),
    };
    let defaults = TrainOptions::default();
    let options = TrainOptions {
        epochs: 1000,
        patience: 0,
        deep: DeepOptions {
            cache_bytes: if cached { defaults.deep.cache_bytes } else { 0 },
            ..defaults.deep
        },
        ..defaults
    }
    .with_mode(mode);
    let mut trainer = DeepTrainer::new(model, data, options, None).expect("trainer");
    while trainer.step().await.expect("step").phase != Phase::Training {}
    let t0 = now();
    let mut images = 0;
    for _ in 0..steps {
        images += trainer.step().await.expect("step").images;
    }
    images as f64 * 1000.0 / (now() - t0)
}

/// The fine-tuning step of issue 8's two GPU recipes, images/s.
async fn bench_training(model: &EfficientNetLite0, steps: usize) {
    if steps == 0 {
        return;
    }
    print(String::new());
    print("| fine-tuning (batch 32) | images/s, prefix every step | images/s, cached cut |".into());
    print("|---|---:|---:|".into());
    let lora = FinetuneMode::Lora {
        blocks: 8,
        rank: 16,
        alpha: 16.0,
    };
    let recipes = [
        ("LoRA r16, last 8 blocks + head conv", lora),
        (
            "last 4 blocks + head conv unfrozen",
            FinetuneMode::LastBlocks { blocks: 4 },
        ),
    ];
    for (name, mode) in recipes {
        let every = train_rate(model, mode, false, steps).await;
        let cached = train_rate(model, mode, true, steps).await;
        print(format!("| {name} | {every:.0} | {cached:.0} |"));
    }
}

/// Waits for `x` by reading one of its values back.
async fn sync(x: &Tensor<4>) {
    x.clone()
        .slice([0..1, 0..1, 0..1, 0..1])
        .into_data_async()
        .await
        .expect("read back");
}

/// Where a forward's time goes: the stem, each block and the head, each read back before the next starts
/// (`?profile=` batches), and a one-number round trip (an add on one value, read back): the floor under each row.
async fn bench_stages(model: &EfficientNetLite0, device: &Device, batches: Vec<usize>) {
    for batch in batches {
        let pixels = vec![100u8; 224 * 224 * 3];
        let images: Vec<&[u8]> = (0..batch).map(|_| pixels.as_slice()).collect();
        let mut rows: Vec<(String, f64)> = Vec::new();
        // Three runs, the last one kept: the first compile the kernels.
        for _ in 0..3 {
            rows.clear();
            let one = Tensor::<1>::ones([1], device);
            let t0 = now();
            (one + 1.0).into_data_async().await.expect("read back");
            rows.push(("round trip".into(), now() - t0));
            let input = input_tensor(&images, device);
            sync(&input).await;
            let t0 = now();
            let mut x = model.stem(input);
            sync(&x).await;
            rows.push(("stem".into(), now() - t0));
            for b in 0..model.blocks.len() {
                let t0 = now();
                x = model.blocks(x, b, b + 1);
                sync(&x).await;
                rows.push((format!("block {b}"), now() - t0));
            }
            let t0 = now();
            model.pool(x).into_data_async().await.expect("read back");
            rows.push(("head + pool".into(), now() - t0));
        }
        let cells: Vec<String> = rows.iter().map(|(s, ms)| format!("{s} {ms:.1}")).collect();
        print(format!("| {batch} | {} |", cells.join(", ")));
    }
}
