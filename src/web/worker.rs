//! The training worker (a Web Worker the page starts, `src/worker.rs` its thin binary): holds its own copy of the
//! backbone and the embedding cache, and runs `train::job::run_job` for the page, so embedding and training never
//! block the page. The page starts a second one for Try it: it builds the exported model (`predict`) and
//! classifies one image at a time. Messages: `protocol` (JSON, plus byte buffers for weights, the dataset, a
//! checkpoint or an image). On the CPU it starts helpers, copies of itself (`pool.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::data::snapshot;
use crate::finetune::shard::{self, Helpers, ShardRequest, ShardSpec, ShardWorker};
use crate::floats::to_le_bytes;
use crate::model::{EfficientNetLite0, load_efficientnet};
use crate::predict::{Predictor, exported_model, prepare_frame};
use crate::preprocess::prepare_rgb;
use crate::protocol::{FromWorker, ImageInput, ToWorker};
use crate::train::job::{Host, Job, continue_job, resume_job, run_job};
use crate::train::{EmbeddingCache, TrainEvent, Trained};
use burn::tensor::Device;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use burn::tensor::wgpu::WgpuBackend;

use super::device::BackendKind;
use super::pool::Pool;
use super::store;

#[derive(Default)]
struct State {
    /// The device, the backbone, and whether the device is WebGPU.
    engine: Option<(Device, Rc<EfficientNetLite0>)>,
    /// The weights file the backbone was built from (a model continued on its own backbone is built from it).
    weights: Rc<Vec<u8>>,
    cache: EmbeddingCache,
    /// The features kept in storage were read into `cache` (once per worker).
    restored: bool,
    predictor: Option<(Device, Rc<Predictor>)>,
    /// CPU helpers that share the embedding (none on WebGPU, and none in a helper).
    pool: Option<Rc<Pool>>,
    /// The engine's device is WebGPU.
    webgpu: bool,
}

/// Creates the burn device. WebGPU must be initialised asynchronously in a browser.
async fn init_device(kind: BackendKind) -> Result<Device, String> {
    match kind {
        BackendKind::Cpu => Ok(Device::flex()),
        BackendKind::WebGpu => Device::wgpu_options()
            .graphics_api(WgpuBackend::WebGpu)
            .init_async()
            .await
            .map_err(|e| format!("WebGPU could not start: {e}")),
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
    /// A helper's trainable copy for the deeper runs' shares (`finetune::shard`), kept between requests.
    static SHARE: RefCell<Option<ShardWorker>> = const { RefCell::new(None) };
    static STOP: Rc<Cell<bool>> = Rc::new(Cell::new(false));
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(message: &FromWorker) {
    match serde_json::to_string(message) {
        Ok(json) => {
            let _ = scope().post_message(&JsValue::from_str(&json));
        }
        Err(e) => web_sys::console::error_1(&format!("worker: {e}").into()),
    }
}

/// A message with bytes beside its JSON (`{json, bytes}`), the buffer handed over, not copied.
fn post_with_bytes(message: &FromWorker, bytes: &[u8]) {
    let Ok(json) = serde_json::to_string(message) else {
        return;
    };
    let data = js_sys::Object::new();
    let array = js_sys::Uint8Array::from(bytes);
    let _ = js_sys::Reflect::set(&data, &"json".into(), &json.into());
    let _ = js_sys::Reflect::set(&data, &"bytes".into(), &array);
    let _ = scope().post_message_with_transfer(&data, &js_sys::Array::of1(&array.buffer()));
}

struct WorkerHost {
    stop: Rc<Cell<bool>>,
    /// The CPU pool, when the job's backbone is the one its helpers loaded.
    pool: Option<Rc<Pool>>,
    /// The most threads one batch was embedded on in this job.
    threads: Cell<usize>,
    /// Parts of a deeper run's batch: on the CPU a fixed number, so that any number of threads trains the same
    /// model; on WebGPU whole batches.
    parts: usize,
}

impl Host for WorkerHost {
    fn now_seconds(&self) -> f64 {
        js_sys::Date::now() / 1000.0
    }
    async fn pause(&self) {
        // A macrotask turn: a Stop message waiting in the queue is handled before the next step.
        gloo::timers::future::TimeoutFuture::new(0).await;
    }
    fn stop_requested(&self) -> bool {
        self.stop.get()
    }
    fn emit(&self, event: TrainEvent) {
        post(&FromWorker::Event(event));
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint(&self, epochs_done: usize, bytes: Vec<u8>) {
        let message = FromWorker::Checkpoint {
            epochs_done,
            bytes: Vec::new(),
        };
        post_with_bytes(&message, &bytes);
    }
    async fn embed(&self, model: &EfficientNetLite0, images: &[&[u8]], device: &Device) -> Result<Vec<f32>, String> {
        let (rows, threads) = match &self.pool {
            Some(pool) => pool.embed(model, images, device).await?,
            None => (crate::model::embed::embed_batch(model, images, device).await?, 1),
        };
        self.threads.set(self.threads.get().max(threads));
        Ok(rows)
    }
    fn embed_threads(&self) -> usize {
        self.threads.get().max(1)
    }
    fn helpers(&self) -> impl Helpers + '_ {
        self.pool.as_deref()
    }
    fn parts(&self) -> usize {
        self.parts
    }
    async fn load_pixels(&self, keys: &[u64]) -> Result<Vec<Vec<u8>>, String> {
        store::read_images(&store::open().await?, keys).await
    }
    async fn embedded(&self, keys: &[u64], rows: &[f32]) {
        // Kept as they come, so a reload does not compute them again. Awaited, so a batch shows as done only
        // once its features are stored: a reload then keeps everything the page counted (writing in the
        // background while the next batch computed gained nothing measurable and broke that). A failure
        // only costs the recomputation.
        let stored = match store::open().await {
            Ok(cache) => store::put_features(&cache, keys, rows).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            web_sys::console::warn_1(&format!("features not kept: {e}").into());
        }
    }
}

/// Reads the features kept by earlier visits into `cache`.
async fn restore_features(cache: &mut EmbeddingCache) {
    let read = match store::open().await {
        Ok(storage) => store::read_features(&storage).await,
        Err(e) => Err(e),
    };
    match read {
        Ok((batches, damaged)) => {
            for (keys, rows) in batches {
                let _ = cache.insert(&keys, &rows);
            }
            if damaged > 0 {
                web_sys::console::warn_1(&format!("{damaged} damaged features entries dropped").into());
            }
        }
        Err(e) => web_sys::console::warn_1(&format!("no features restored: {e}").into()),
    }
}

async fn load(webgpu: bool, helpers: usize, weights: Vec<u8>) {
    let kind = if webgpu { BackendKind::WebGpu } else { BackendKind::Cpu };
    let built = match init_device(kind).await {
        Ok(device) => load_efficientnet(&weights, &device)
            .map(|model| (device, Rc::new(model)))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match built {
        Ok(engine) => {
            let weights = Rc::new(weights);
            // The helpers load while the page goes on; batches use them once they are ready.
            let pool = (helpers > 0 && !webgpu).then(|| Rc::new(Pool::start(weights.clone(), helpers)));
            STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.engine = Some(engine);
                s.weights = weights;
                s.pool = pool;
                s.webgpu = webgpu;
            });
            post(&FromWorker::Loaded);
        }
        Err(e) => post(&FromWorker::LoadFailed(e)),
    }
}

/// The exported model of `trained`, or without one the pretrained ImageNet classifier.
async fn load_predictor(webgpu: bool, trained: Option<Trained>, weights: Vec<u8>) {
    let kind = if webgpu { BackendKind::WebGpu } else { BackendKind::Cpu };
    let built = match init_device(kind).await {
        Ok(device) => match trained {
            Some(trained) => exported_model(&weights, &trained)
                .map_err(|e| e.to_string())
                .and_then(|bytes| Predictor::load(&bytes, &device)),
            None => Predictor::imagenet(&weights, &device),
        }
        .map(|predictor| (device, Rc::new(predictor))),
        Err(e) => Err(e),
    };
    match built {
        Ok(predictor) => {
            STATE.with(|s| s.borrow_mut().predictor = Some(predictor));
            post(&FromWorker::Loaded);
        }
        Err(e) => post(&FromWorker::LoadFailed(e)),
    }
}

async fn classify(input: ImageInput, bytes: Vec<u8>) -> Result<crate::predict::Prediction, String> {
    let (device, predictor) = STATE
        .with(|s| s.borrow().predictor.clone())
        .ok_or("the trained model is not loaded")?;
    let pixels = match input {
        ImageInput::File => prepare_rgb(&bytes).map_err(|e| e.to_string())?,
        ImageInput::Frame { width, height } => prepare_frame(width, height, bytes)?,
        ImageInput::Pixels => bytes,
    };
    predictor.predict(&pixels, &device).await
}

/// A pool helper's work: the features of the images in `pixels`, posted back as f32 bytes.
async fn embed_for_pool(pixels: Vec<u8>) {
    let size = crate::preprocess::IMAGE_SIZE * crate::preprocess::IMAGE_SIZE * 3;
    let engine = STATE.with(|s| s.borrow().engine.clone());
    let rows = match engine {
        Some((device, model)) if !pixels.is_empty() && pixels.len().is_multiple_of(size) => {
            let images: Vec<&[u8]> = pixels.chunks_exact(size).collect();
            crate::model::embed::embed_batch(&model, &images, &device).await
        }
        Some(_) => Err(format!("{} bytes are not whole 224×224 RGB images", pixels.len())),
        None => Err("the model is not loaded".into()),
    };
    match rows {
        Ok(rows) => {
            let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
            post_with_bytes(&FromWorker::Embedded(Ok(())), &bytes);
        }
        Err(e) => post(&FromWorker::Embedded(Err(e))),
    }
}

/// A pool helper's work in a deeper run: a share of a batch (`finetune::shard`), answered as `Shared`.
async fn share_for_pool(spec: ShardSpec, bytes: Vec<u8>) {
    let engine = STATE.with(|s| s.borrow().engine.clone());
    let answer = match (engine, ShardRequest::from_bytes(spec, &bytes)) {
        (Some((_, model)), Ok(request)) => {
            let mut slot = SHARE.with(|s| s.borrow_mut().take());
            let answer = shard::answer(&model, &mut slot, request).await;
            SHARE.with(|s| *s.borrow_mut() = slot);
            answer
        }
        (None, _) => Err("the model is not loaded".into()),
        (_, Err(e)) => Err(e),
    };
    match answer {
        Ok(answer) => post_with_bytes(&FromWorker::Shared(Ok(answer.sums)), &to_le_bytes(&answer.values)),
        Err(e) => post(&FromWorker::Shared(Err(e))),
    }
}

/// How a run begins.
enum Begin {
    New,
    /// From a deeper run's checkpoint.
    Resume(Vec<u8>),
    /// From a kept model's head (and its backbone).
    Continue(Box<Trained>),
}

async fn start(options: crate::options::TrainOptions, batch_size: usize, dataset: Vec<u8>, begin: Begin) {
    let dataset = match snapshot::decode(&dataset) {
        Ok(d) => d,
        Err(e) => return post(&FromWorker::Event(TrainEvent::Failed(e))),
    };
    let Some((device, mut model)) = STATE.with(|s| s.borrow().engine.clone()) else {
        return post(&FromWorker::Event(TrainEvent::Failed("the model is not loaded".into())));
    };
    // A model with a fine-tuned backbone continues on that backbone.
    if let Begin::Continue(from) = &begin
        && !from.delta.convs.is_empty()
    {
        let weights = STATE.with(|s| s.borrow().weights.clone());
        match exported_model(&weights, from)
            .map_err(|e| e.to_string())
            .and_then(|bytes| load_efficientnet(&bytes, &device).map_err(|e| e.to_string()))
        {
            Ok(own) => model = Rc::new(own),
            Err(e) => return post(&FromWorker::Event(TrainEvent::Failed(e))),
        }
    }
    let stop = STOP.with(|s| {
        s.set(false);
        s.clone()
    });
    // Taken out for the run (the page runs one at a time) and put back with the new embeddings.
    let mut cache = STATE.with(|s| std::mem::take(&mut s.borrow_mut().cache));
    if !STATE.with(|s| std::mem::replace(&mut s.borrow_mut().restored, true)) {
        restore_features(&mut cache).await;
    }
    // The helpers hold the shipped backbone only.
    let pool = match &begin {
        Begin::Continue(from) if !from.delta.convs.is_empty() => None,
        _ => STATE.with(|s| s.borrow().pool.clone()),
    };
    if let Some(pool) = &pool {
        pool.settled(10.0).await;
    }
    // Each thread embeds a batch of the page's size at once.
    let batch_size = batch_size * pool.as_ref().map_or(1, |p| p.threads());
    let job = Job {
        model: &model,
        device: &device,
        dataset: &dataset,
        options,
        batch_size,
    };
    let cpu = STATE.with(|s| !s.borrow().webgpu);
    let host = WorkerHost {
        stop,
        pool,
        threads: Cell::new(0),
        parts: if cpu { crate::finetune::shard::CPU_PARTS } else { 1 },
    };
    match begin {
        Begin::New => run_job(job, &mut cache, &host).await,
        Begin::Resume(bytes) => resume_job(job, &bytes, &host).await,
        Begin::Continue(from) => continue_job(job, &from, &mut cache, &host).await,
    }
    STATE.with(|s| s.borrow_mut().cache = cache);
}

fn on_message(event: MessageEvent) {
    let data = event.data();
    let json = js_sys::Reflect::get(&data, &"json".into())
        .ok()
        .and_then(|v| v.as_string());
    let buffer = |name: &str| {
        js_sys::Reflect::get(&data, &name.into())
            .ok()
            .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
            .map(|b| b.to_vec())
    };
    let bytes = buffer("bytes").unwrap_or_default();
    let message = json.as_deref().map(serde_json::from_str::<ToWorker>);
    match message {
        Some(Ok(ToWorker::Load { webgpu, helpers })) => wasm_bindgen_futures::spawn_local(load(webgpu, helpers, bytes)),
        Some(Ok(ToWorker::Embed)) => wasm_bindgen_futures::spawn_local(embed_for_pool(bytes)),
        Some(Ok(ToWorker::Share(spec))) => wasm_bindgen_futures::spawn_local(share_for_pool(spec, bytes)),
        Some(Ok(ToWorker::Start { options, batch_size })) => {
            wasm_bindgen_futures::spawn_local(start(options, batch_size, bytes, Begin::New))
        }
        Some(Ok(ToWorker::Resume { options, batch_size })) => wasm_bindgen_futures::spawn_local(start(
            options,
            batch_size,
            bytes,
            Begin::Resume(buffer("checkpoint").unwrap_or_default()),
        )),
        Some(Ok(ToWorker::Continue {
            options,
            batch_size,
            from,
        })) => wasm_bindgen_futures::spawn_local(start(options, batch_size, bytes, Begin::Continue(from))),
        Some(Ok(ToWorker::Stop)) => STOP.with(|s| s.set(true)),
        Some(Ok(ToWorker::LoadPredictor { webgpu, trained })) => {
            wasm_bindgen_futures::spawn_local(load_predictor(webgpu, trained.map(|t| *t), bytes))
        }
        Some(Ok(ToWorker::Predict { input })) => {
            wasm_bindgen_futures::spawn_local(async move { post(&FromWorker::Predicted(classify(input, bytes).await)) })
        }
        other => super::calibrate::on_message(other, bytes, STATE.with(|s| s.borrow().predictor.clone()), post),
    }
}

pub fn run() {
    crate::wasm_init::init_once();
    let handler = Closure::<dyn Fn(MessageEvent)>::new(on_message);
    scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
    // The worker lives as long as the page: keep the handler for good.
    handler.forget();
    post(&FromWorker::Ready);
}
