//! Benchmark (not a test: it asserts nothing about speed). In headless Chromium, prints images/second of the
//! backbone at batch 1 and 16 on WebGPU and on the CPU (flex) backend, and the 50-epoch head training time on
//! the reference gcompris5 embeddings. Run by `bench/run.sh`, which puts these next to the peers.
#![cfg(target_arch = "wasm32")]
// The CPU-candidates build runs only its own bench: the rest is unused there.
#![cfg_attr(feature = "bench-cpu-candidates", allow(dead_code, unused_imports))]

use ajuste::head::Trainer;
use ajuste::model::depthwise::depthwise_relu6;
use ajuste::model::embed::input_tensor;
use ajuste::model::pointwise::conv1x1;
use ajuste::model::{EfficientNetLite0, TensorFile, load_efficientnet};
use ajuste::options::TrainOptions;
use burn::tensor::activation::relu6;
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{Device, Tensor};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[cfg(feature = "bench-burn-head")]
#[path = "common/burn_head.rs"]
mod burn_head;

static WEIGHTS: &[u8] = include_bytes!("../public/models/efficientnet_lite0.safetensors");
static EMBEDDINGS: &[u8] = include_bytes!("fixtures/reference_embeddings.safetensors");

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

/// The benchmark tables' header rows: images/s per backend and batch, and the per-layer profile.
const EMBED_HEADER: [&str; 2] = [
    "| backend | batch | median ms/batch | images/s | first (cold) ms | timed runs |",
    "|---|---:|---:|---:|---:|---:|",
];
const PROFILE_HEADER: [&str; 2] = [
    "| backend | time per layer kind, batch 4, synchronised after every layer |",
    "|---|---|",
];

fn print_header(rows: [&str; 2]) {
    rows.into_iter().for_each(|row| print(row.into()));
}

fn print(line: String) {
    web_sys::console::log_1(&format!("BENCH {line}").into());
}

async fn run_batch(model: &EfficientNetLite0, device: &Device, batch: usize) -> f64 {
    let pixels: Vec<u8> = (0..224 * 224 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let images: Vec<&[u8]> = (0..batch).map(|_| pixels.as_slice()).collect();
    let t0 = now();
    let out = model.embed(input_tensor(&images, device));
    out.into_data_async().await.expect("read back");
    now() - t0
}

/// `runs`: (batch, timed runs) pairs.
async fn bench_backend(name: &str, device: Device, runs: &[(usize, usize)]) {
    let model = load_efficientnet(WEIGHTS, &device).expect("weights");
    for &(batch, iters) in runs {
        let cold = run_batch(&model, &device, batch).await;
        let mut times = Vec::new();
        for _ in 0..iters {
            times.push(run_batch(&model, &device, batch).await);
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(cold);
        print(format!(
            "| {name} | {batch} | {:.0} | {:.2} | {:.0} | {} |",
            median,
            batch as f64 * 1000.0 / median,
            cold,
            times.len()
        ));
    }
}

/// Runs `layer`, waits for the device with a one-element async read, and adds the time to `stage`. The clock
/// starts before the layer runs: flex computes eagerly inside it, WebGPU queues the work and the read waits.
async fn timed(
    totals: &mut Vec<(&'static str, f64)>,
    stage: &'static str,
    layer: impl FnOnce() -> Tensor<4>,
) -> Tensor<4> {
    let t0 = now();
    let out = layer();
    out.clone()
        .slice([0..1, 0..1, 0..1, 0..1])
        .into_data_async()
        .await
        .expect("read back");
    let ms = now() - t0;
    match totals.iter_mut().find(|(s, _)| *s == stage) {
        Some((_, total)) => *total += ms,
        None => totals.push((stage, ms)),
    }
    out
}

/// Where the time goes: each kind of layer over all blocks, batch 4, synchronised after each layer. The
/// stage is read before the next one starts, so its time holds its own kernels only.
async fn profile_stages(name: &str, device: &Device) {
    let model = load_efficientnet(WEIGHTS, device).expect("weights");
    let pixels = vec![100u8; 224 * 224 * 3];
    let images: Vec<&[u8]> = (0..4).map(|_| pixels.as_slice()).collect();
    let mut t = Vec::new();
    for run in 0..2 {
        if run == 1 {
            t.clear(); // the first run compiles kernels
        }
        let input = input_tensor(&images, device);
        input.clone().into_data_async().await.expect("read back");
        let mut x = timed(&mut t, "stem conv 3x3", || model.stem(input)).await;
        for block in &model.blocks {
            let skip = x.clone();
            let mut h = x;
            if let Some(expand) = &block.expand {
                h = timed(&mut t, "expand conv 1x1", || conv1x1(expand, h, true)).await;
            }
            h = timed(&mut t, "depthwise conv kxk", || depthwise_relu6(&block.dw, h)).await;
            h = timed(&mut t, "project conv 1x1", || conv1x1(&block.project, h, false)).await;
            x = if block.residual {
                timed(&mut t, "residual add", || skip + h).await
            } else {
                h
            };
        }
        timed(&mut t, "head conv 1x1 + pool", || model.pool(x).unsqueeze_dims(&[2, 3])).await;
    }
    let all: f64 = t.iter().map(|(_, ms)| ms).sum();
    print(format!(
        "| {name} | {} |",
        t.iter()
            .map(|(s, ms)| format!("{s} {ms:.0} ms ({:.0}%)", ms / all * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

/// Median of 5 timings of each of `flex` and `ours`, taken in turn, in milliseconds (both read back).
async fn race(flex: impl Fn() -> Tensor<4>, ours: impl Fn() -> Tensor<4>) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t0 = now();
        let _ = flex().into_data_async().await;
        a.push(now() - t0);
        let t0 = now();
        let _ = ours().into_data_async().await;
        b.push(now() - t0);
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    (median(a), median(b))
}

/// Prints one comparison row per layer and the total: `rows` are (the row's leading cells, flex ms, ours ms).
fn print_race(header: &str, rows: Vec<(String, f64, f64)>) {
    print(format!("{header} flex ms | ours ms | × |"));
    print(format!(
        "|{}---:|---:|---:|",
        "---|".repeat(header.matches('|').count() - 1)
    ));
    let (mut flex_total, mut ours_total) = (0.0, 0.0);
    for (cells, f, o) in rows {
        flex_total += f;
        ours_total += o;
        print(format!("{cells} {f:.1} | {o:.1} | {:.2} |", f / o));
    }
    let blanks = " |".repeat(header.matches('|').count() - 2);
    print(format!(
        "| all |{blanks} {flex_total:.1} | {ours_total:.1} | {:.2} |",
        flex_total / ours_total
    ));
}

/// A batch-4 input of random values for a layer of `channels` on a `size`² plane.
fn layer_input(channels: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::<4>::random(
        [4, channels, size, size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    )
}

/// Our depthwise convs + ReLU6 and the stem conv + ReLU6 (`model::depthwise`) against flex's conv + ReLU6 on the
/// same inputs, in the same run: each layer at batch 4.
async fn compare_depthwise(device: &Device) {
    let model = load_efficientnet(WEIGHTS, device).expect("weights");
    let x = layer_input(3, 224, device);
    let (f, o) = race(|| relu6(model.stem.forward(x.clone())), || model.stem(x.clone())).await;
    let mut rows = vec![("| stem | 3→32 ch, 224² | 3×3, 2 |".to_string(), f, o)];
    for (i, (block, spec)) in model.blocks.iter().zip(ajuste::model::BLOCKS).enumerate() {
        let x = layer_input(spec.hidden(), spec.size_in, device);
        let (f, o) = race(
            || relu6(block.dw.forward(x.clone())),
            || depthwise_relu6(&block.dw, x.clone()),
        )
        .await;
        let (k, s) = (spec.kernel, spec.stride);
        rows.push((
            format!("| {i} | {}×{}² | {k}×{k}, {s} |", spec.hidden(), spec.size_in),
            f,
            o,
        ));
    }
    print_race("| block | input | kernel, stride | conv + ReLU6:", rows);
}

/// Our 1×1 convs (`model::pointwise`, ReLU6 in the same pass) against flex's conv (+ ReLU6) on the same inputs,
/// in the same run: each block's expand and project conv and the head conv at batch 4.
async fn compare_pointwise(device: &Device) {
    let model = load_efficientnet(WEIGHTS, device).expect("weights");
    let mut rows = Vec::new();
    let mut layers: Vec<(String, &burn::nn::conv::Conv2d, bool, usize)> = Vec::new();
    for (i, (block, spec)) in model.blocks.iter().zip(ajuste::model::BLOCKS).enumerate() {
        if let Some(expand) = &block.expand {
            layers.push((format!("{i} expand + ReLU6"), expand, true, spec.size_in));
        }
        let size_out = spec.size_in / spec.stride;
        layers.push((format!("{i} project"), &block.project, false, size_out));
    }
    layers.push(("head + ReLU6".into(), &model.head, true, 7));
    for (name, conv, clamp, size) in layers {
        let [c_out, c_in, _, _] = conv.weight.dims();
        let x = layer_input(c_in, size, device);
        let flex = || match clamp {
            true => relu6(conv.forward(x.clone())),
            false => conv.forward(x.clone()),
        };
        let (f, o) = race(flex, || conv1x1(conv, x.clone(), clamp)).await;
        rows.push((format!("| {name} | {c_in}→{c_out}, {size}² |"), f, o));
    }
    print_race("| layer | 1×1 conv, plane |", rows);
}

/// The CPU backends burn 0.22 can run in the browser, built with or without wasm SIMD
/// (`bench/cpu_candidates.sh` builds this with `--features bench-cpu-candidates`, both ways).
#[cfg(feature = "bench-cpu-candidates")]
#[wasm_bindgen_test]
async fn bench_cpu_candidates() {
    ajuste::wasm_init::init_once();
    let simd = if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "no SIMD"
    };
    print(format!(
        "| backend ({simd}) | batch | median ms/batch | images/s | first (cold) ms | timed runs |"
    ));
    print("|---|---:|---:|---:|---:|---:|".into());
    bench_backend(&format!("burn flex ({simd})"), Device::flex(), &[(1, 3), (16, 1)]).await;
    #[allow(deprecated)]
    bench_backend(
        &format!("burn ndarray, deprecated ({simd})"),
        Device::ndarray(),
        &[(1, 3), (16, 1)],
    )
    .await;
}

/// The CPU path alone, with where its time goes (`bench/cpu.sh`, beside ONNX Runtime Web's wasm backend).
#[cfg(not(feature = "bench-cpu-candidates"))]
#[wasm_bindgen_test]
async fn bench_cpu() {
    ajuste::wasm_init::init_once();
    print_header(EMBED_HEADER);
    // The app embeds 8 images per thread at once: the bare figure at 8 is the yardstick for its flow.
    bench_backend(
        "burn flex (CPU, wasm simd128, 1 thread)",
        Device::flex(),
        &[(1, 5), (8, 3), (16, 2)],
    )
    .await;
    print(String::new());
    print_header(PROFILE_HEADER);
    profile_stages("burn flex (CPU)", &Device::flex()).await;
    print(String::new());
    compare_layers().await;
}

/// Our CPU kernels against flex's, layer by layer.
async fn compare_layers() {
    compare_depthwise(&Device::flex()).await;
    print(String::new());
    compare_pointwise(&Device::flex()).await;
}

/// The per-layer comparisons alone (`-- bench_layers`), for working on the CPU kernels.
#[cfg(not(feature = "bench-cpu-candidates"))]
#[wasm_bindgen_test]
async fn bench_layers() {
    ajuste::wasm_init::init_once();
    compare_layers().await;
}

#[cfg(not(feature = "bench-cpu-candidates"))]
#[wasm_bindgen_test]
async fn bench_embedding_and_head() {
    ajuste::wasm_init::init_once();
    print_header(EMBED_HEADER);
    bench_backend("burn flex (CPU, wasm simd128)", Device::flex(), &[(1, 5), (16, 2)]).await;
    let webgpu = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .expect("WebGPU adapter");
    bench_backend("burn wgpu (WebGPU)", webgpu.clone(), &[(1, 2), (16, 1)]).await;

    print(String::new());
    print_header(PROFILE_HEADER);
    profile_stages("burn flex (CPU)", &Device::flex()).await;
    profile_stages("burn wgpu (WebGPU)", &webgpu).await;
    print(String::new());

    let file = TensorFile::parse(EMBEDDINGS).expect("embeddings");
    let st = safetensors::SafeTensors::deserialize(EMBEDDINGS).unwrap();
    let ints = |name: &str| -> Vec<usize> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect()
    };
    let (shape, features) = file.f32_any_shape("gcompris5.embeddings").unwrap();
    let labels = ints("gcompris5.labels");
    for run in 0..3 {
        let t0 = now();
        let options = TrainOptions {
            patience: 0,
            ..TrainOptions::default()
        };
        let mut trainer = Trainer::new(
            features.clone(),
            shape[1],
            labels.clone(),
            ints("gcompris5.train_idx"),
            ints("gcompris5.val_idx"),
            5,
            options,
        )
        .unwrap();
        while !trainer.is_done() {
            trainer.step_epoch();
        }
        let ms = now() - t0;
        let last = trainer.history().last().unwrap();
        print(format!(
            "HEAD run {run}: 50 epochs gcompris5 {ms:.1} ms, val accuracy {:.3}, val loss {:.3}",
            last.val_accuracy, last.val_loss
        ));
    }
    // The same head through burn's autodiff and Adam, on each device: where does it train fastest?
    #[cfg(feature = "bench-burn-head")]
    burn_heads(
        burn_head::HeadData {
            features: &features,
            dim: shape[1],
            labels: &labels,
            train: &ints("gcompris5.train_idx"),
            val: &ints("gcompris5.val_idx"),
            classes: 5,
        },
        webgpu,
    )
    .await;
}

/// The same head through burn's autodiff and Adam, on the CPU and on WebGPU (`--features bench-burn-head`).
#[cfg(feature = "bench-burn-head")]
async fn burn_heads(data: burn_head::HeadData<'_>, webgpu: Device) {
    for (name, device) in [("burn flex (CPU)", Device::flex()), ("burn wgpu (WebGPU)", webgpu)] {
        for run in 0..2 {
            let t0 = now();
            let accuracy = burn_head::train_linear_head(&data, &device, 50).await;
            print(format!(
                "HEAD {name} autodiff + Adam run {run}: 50 epochs gcompris5 {:.1} ms, val accuracy {accuracy:.3}",
                now() - t0
            ));
        }
    }
}
