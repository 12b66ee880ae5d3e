//! Benchmark (not a test: it asserts nothing about speed). Where a LoRA training step's time goes on the CPU in
//! the browser: the tail of the last 8 blocks + head conv at batch 32 on cut activations, forward alone and
//! forward + backward, with and without the adapters; then each frozen layer of that tail as our autodiff node
//! (`model::frozen`) against burn's conv under autodiff, forward + backward. Run by `bench/cpu.sh`, or alone:
//!     cargo test --release --target wasm32-unknown-unknown --test bench_train -- --nocapture
#![cfg(target_arch = "wasm32")]

use ajuste::finetune::Tail;
use ajuste::model::depthwise::depthwise_relu6;
use ajuste::model::embed::input_tensor;
use ajuste::model::pointwise::conv1x1;
use ajuste::model::{BLOCKS, load_efficientnet};
use ajuste::options::FinetuneMode;
use ajuste::rng::Rng;
use burn::module::Module;
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Distribution, Tensor};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

static WEIGHTS: &[u8] = include_bytes!("../public/models/efficientnet_lite0.safetensors");
const BATCH: usize = 32;
const CUT: usize = 8;

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

fn print(line: String) {
    web_sys::console::log_1(&format!("BENCH {line}").into());
}

/// Lets the page's event loop run: the test runner gives up on a page that stays busy for 30 s.
async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback(&resolve).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

/// Median of `runs` timings of `f` in ms, after one warm-up run, the event loop let run between runs.
async fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        yield_now().await;
        let t0 = now();
        f();
        times.push(now() - t0);
    }
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Forward alone (the sum read back) and forward + backward of `f` on `x`, in ms.
async fn step_ms(x: &Tensor<4>, f: impl Fn(Tensor<4>) -> Tensor<2>) -> (f64, f64) {
    let forward = median_ms(3, || {
        let _: f32 = f(x.clone()).sum().into_scalar();
    })
    .await;
    let both = median_ms(3, || {
        let grads = f(x.clone()).sum().backward();
        std::hint::black_box(grads);
    })
    .await;
    (forward, both)
}

/// The layer as our node and as burn's conv under autodiff: forward + backward on input that needs a gradient.
async fn race(
    x: &Tensor<4>,
    ours: impl Fn(Tensor<4>) -> Tensor<4>,
    burns: impl Fn(Tensor<4>) -> Tensor<4>,
) -> (f64, f64) {
    let run = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
        let x = x.clone().require_grad();
        let grads = f(x.clone()).sum().backward();
        std::hint::black_box(x.grad(&grads));
    };
    (median_ms(3, || run(&burns)).await, median_ms(3, || run(&ours)).await)
}

#[wasm_bindgen_test]
async fn bench_lora_step() {
    ajuste::wasm_init::init_once();
    let device = Device::flex();
    let model = load_efficientnet(WEIGHTS, &device).expect("weights");
    let pixels: Vec<u8> = (0..224 * 224 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let images: Vec<&[u8]> = (0..BATCH).map(|_| pixels.as_slice()).collect();
    let cut = model
        .blocks(model.stem(input_tensor(&images, &device)), 0, CUT)
        .autodiff();

    print(format!(
        "| LoRA r16 tail (blocks {CUT}–15 + head conv), batch {BATCH}, flex CPU, 1 thread | forward ms | forward + backward ms |"
    ));
    print("|---|---:|---:|".into());
    let mode = FinetuneMode::Lora {
        blocks: BLOCKS.len() - CUT,
        rank: 16,
        alpha: 16.0,
    };
    let mut tail = Tail::new(&model, mode, &mut Rng::new(0)).train();
    // B ≠ 0, as after the first step: the adapters' branch is live.
    for block in &mut tail.blocks {
        if let Some(lora) = &mut block.project_lora {
            lora.b = lora
                .b
                .clone()
                .map(|b| Tensor::random(b.dims(), Distribution::Normal(0.0, 0.01), &b.device()).require_grad());
        }
    }
    let (f, b) = step_ms(&cut, |x| tail.forward(x)).await;
    print(format!("| with adapters (a training step's tail) | {f:.0} | {b:.0} |"));
    let frozen = Tail::new(&model, mode, &mut Rng::new(0)).train();
    let frozen = Tail {
        blocks: frozen
            .blocks
            .into_iter()
            .map(|b| ajuste::model::MbConv {
                expand_lora: None,
                project_lora: None,
                ..b
            })
            .collect(),
        head_lora: None,
        ..frozen
    };
    let (f, b) = step_ms(&cut.clone().require_grad(), |x| frozen.forward(x)).await;
    print(format!(
        "| frozen layers alone (input gradient only) | {f:.0} | {b:.0} |"
    ));

    print(String::new());
    print("| frozen layer of the tail, forward + backward, batch 32 | burn's conv under autodiff ms | our node ms | ratio |".into());
    print("|---|---:|---:|---:|".into());
    let mut x = model
        .blocks(model.stem(input_tensor(&images, &device)), 0, CUT)
        .autodiff();
    let mut totals = (0.0, 0.0);
    for (i, block) in frozen.blocks.iter().enumerate() {
        let spec = BLOCKS[CUT + i];
        let mut rows = Vec::new();
        let mut h = x.clone();
        if let Some(expand) = &block.expand {
            rows.push((
                format!(
                    "block {} expand 1×1 {}→{}, {}²",
                    CUT + i,
                    spec.cin,
                    spec.hidden(),
                    spec.size_in
                ),
                race(&h, |x| conv1x1(expand, x, true), |x| relu6(expand.forward(x))).await,
            ));
            h = conv1x1(expand, h, true);
        }
        rows.push((
            format!(
                "block {} depthwise {}×{}/{}, {} ch, {}²",
                CUT + i,
                spec.kernel,
                spec.kernel,
                spec.stride,
                spec.hidden(),
                spec.size_in
            ),
            race(&h, |x| depthwise_relu6(&block.dw, x), |x| relu6(block.dw.forward(x))).await,
        ));
        h = depthwise_relu6(&block.dw, h);
        rows.push((
            format!("block {} project 1×1 {}→{}", CUT + i, spec.hidden(), spec.cout),
            race(&h, |x| conv1x1(&block.project, x, false), |x| block.project.forward(x)).await,
        ));
        for (name, (burns, ours)) in rows {
            totals = (totals.0 + burns, totals.1 + ours);
            print(format!("| {name} | {burns:.1} | {ours:.1} | {:.2}× |", burns / ours));
        }
        x = block.forward(x);
    }
    print(format!(
        "| all of them | {:.0} | {:.0} | {:.2}× |",
        totals.0,
        totals.1,
        totals.0 / totals.1
    ));
}
