//! The one interface between the page and training: [`TrainingService::run`] takes a [`Job`] (the dataset as
//! it is when Train is pressed, the options, the engine) and reports [`TrainEvent`]s until the run ends; a
//! [`StopSignal`] ends it within one step (a batch of images, or an epoch).
//!
//! The work runs in a Web Worker (`src/worker.rs`, built by Trunk as `worker_loader.js`), so embedding and
//! training never block the page. The worker keeps its own copy of the backbone (sent once per backend) and
//! the embedding cache; the messages are `ajuste::protocol`. Try it has a service (and so a worker) of
//! its own, [`TrainingService::predict`], so a prediction never waits for a training.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use ajuste::data::{Dataset, snapshot};
use ajuste::options::TrainOptions;
use ajuste::predict::Prediction;
use ajuste::protocol::{FromWorker, ImageInput, ModelId, ToWorker};
use ajuste::train::{Stage, TrainEvent, Trained};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker};

use super::backend::BackendKind;
use super::browser::js_error;
use super::model_flow::Engine;

/// The int8 TFLite export's calibration in the worker (`TrainingService::calibrate`).
mod calibrate;

const WORKER_URL: &str = "worker_loader.js";

#[derive(Clone)]
pub struct Job {
    pub dataset: Arc<Dataset>,
    pub options: TrainOptions,
    pub engine: Engine,
    pub begin: Begin,
}

/// How a run begins.
#[derive(Clone)]
pub enum Begin {
    New,
    /// From a deeper run's checkpoint (the run's options are `options`).
    Resume(Arc<Vec<u8>>),
    /// Training the head of a kept model (one opened from a file) further.
    Continue(Box<Trained>),
}

/// Set once to end the run it was handed to (tells the worker at once).
#[derive(Clone, Default)]
pub struct StopSignal {
    requested: Rc<Cell<bool>>,
    worker: Rc<RefCell<Option<Worker>>>,
}

impl StopSignal {
    pub fn stop(&self) {
        self.requested.set(true);
        if let Some(worker) = self.worker.borrow().as_ref() {
            post(worker, &ToWorker::Stop, None);
        }
    }
}

/// The worker and what came from it, waiting to be read.
struct Link {
    worker: Worker,
    inbox: Rc<RefCell<VecDeque<FromWorker>>>,
    wake: Rc<RefCell<Option<js_sys::Function>>>,
    /// The worker said it is listening.
    ready: bool,
    /// The backend, threads and weights the worker's backbone was built from (the weights live as long as the
    /// page, held by the engine, so their address names them).
    loaded: Option<(BackendKind, usize, *const Vec<u8>)>,
    /// The backend and kept model the worker's predictor was built from (`None`: the ImageNet classifier).
    predictor: Option<(BackendKind, Option<ModelId>)>,
}

#[derive(Clone, Default)]
pub struct TrainingService {
    link: Rc<RefCell<Option<Link>>>,
}

fn post(worker: &Worker, message: &ToWorker, bytes: Option<&[u8]>) {
    post_buffers(worker, message, bytes.map(|b| ("bytes", b)).as_slice());
}

/// `message` as JSON with named byte buffers beside it (handed over, not copied again).
fn post_buffers(worker: &Worker, message: &ToWorker, buffers: &[(&str, &[u8])]) {
    let Ok(json) = serde_json::to_string(message) else {
        return;
    };
    let data = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&data, &"json".into(), &json.into());
    let transfer = js_sys::Array::new();
    for (name, bytes) in buffers {
        let array = js_sys::Uint8Array::from(*bytes);
        let _ = js_sys::Reflect::set(&data, &(*name).into(), &array);
        transfer.push(&array.buffer());
    }
    let _ = worker.post_message_with_transfer(&data, &transfer);
}

/// A worker message: JSON text, or `{json, bytes}` for a checkpoint.
fn parse(data: JsValue) -> Result<FromWorker, String> {
    if let Some(json) = data.as_string() {
        return serde_json::from_str(&json).map_err(|e| e.to_string());
    }
    let json = js_sys::Reflect::get(&data, &"json".into())
        .ok()
        .and_then(|v| v.as_string())
        .ok_or("a message without JSON")?;
    let mut message: FromWorker = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    if let FromWorker::Checkpoint { bytes, .. } = &mut message {
        *bytes = js_sys::Reflect::get(&data, &"bytes".into())
            .ok()
            .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
            .ok_or("a checkpoint without its bytes")?
            .to_vec();
    }
    Ok(message)
}

fn connect() -> Result<Link, String> {
    let worker = Worker::new(WORKER_URL).map_err(js_error)?;
    let inbox: Rc<RefCell<VecDeque<FromWorker>>> = Rc::default();
    let wake: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
    let deliver = {
        let (inbox, wake) = (inbox.clone(), wake.clone());
        move |message: FromWorker| {
            inbox.borrow_mut().push_back(message);
            if let Some(resolve) = wake.borrow_mut().take() {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    };
    let on_message = {
        let deliver = deliver.clone();
        Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            let parsed = parse(event.data());
            deliver(
                parsed
                    .unwrap_or_else(|e| FromWorker::Event(TrainEvent::Failed(format!("the training worker sent {e}")))),
            );
        })
    };
    let on_error = Closure::<dyn Fn(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
        deliver(FromWorker::LoadFailed(format!(
            "the training worker failed: {}",
            event.message()
        )));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The worker lives as long as the page: keep the handlers for good.
    on_message.forget();
    on_error.forget();
    Ok(Link {
        worker,
        inbox,
        wake,
        ready: false,
        loaded: None,
        predictor: None,
    })
}

impl TrainingService {
    /// The next message from the worker, waiting for it if none is there.
    async fn next(&self) -> FromWorker {
        loop {
            let (inbox, wake) = match self.link.borrow().as_ref() {
                Some(link) => (link.inbox.clone(), link.wake.clone()),
                None => return FromWorker::LoadFailed("the training worker is not running".into()),
            };
            if let Some(message) = inbox.borrow_mut().pop_front() {
                return message;
            }
            let promise = js_sys::Promise::new(&mut |resolve, _| *wake.borrow_mut() = Some(resolve));
            let _ = JsFuture::from(promise).await;
        }
    }

    /// The worker, started and listening (until it listens, a message to it would be lost).
    async fn listening(&self) -> Result<Worker, String> {
        let (worker, ready) = {
            let mut link = self.link.borrow_mut();
            if link.is_none() {
                *link = Some(connect()?);
            }
            let link = link.as_ref().expect("connected above");
            (link.worker.clone(), link.ready)
        };
        if !ready {
            loop {
                match self.next().await {
                    FromWorker::Ready => break,
                    FromWorker::LoadFailed(e) => return Err(e),
                    _ => {}
                }
            }
            if let Some(link) = self.link.borrow_mut().as_mut() {
                link.ready = true;
            }
        }
        Ok(worker)
    }

    /// Waits for the end of a `Load` or `LoadPredictor`.
    async fn loaded(&self) -> Result<(), String> {
        loop {
            match self.next().await {
                FromWorker::Loaded => return Ok(()),
                FromWorker::LoadFailed(e) => return Err(e),
                // The end of an earlier run or prediction.
                FromWorker::Ready
                | FromWorker::Event(_)
                | FromWorker::Checkpoint { .. }
                | FromWorker::Predicted(_)
                | FromWorker::Embedded(_)
                | FromWorker::Shared(_)
                | FromWorker::Calibration(_) => {}
            }
        }
    }

    /// Builds the backbone in the worker unless it was built from the same weights on the same backend.
    async fn load(&self, engine: &Engine) -> Result<(), String> {
        let key = (engine.kind, engine.threads, Rc::as_ptr(&engine.weights));
        if self.link.borrow().as_ref().is_some_and(|l| l.loaded == Some(key)) {
            return Ok(());
        }
        let worker = self.listening().await?;
        if let Some(link) = self.link.borrow_mut().as_mut() {
            link.loaded = None;
        }
        let webgpu = engine.kind == BackendKind::WebGpu;
        let helpers = if webgpu { 0 } else { engine.threads - 1 };
        post(&worker, &ToWorker::Load { webgpu, helpers }, Some(&engine.weights));
        self.loaded().await?;
        if let Some(link) = self.link.borrow_mut().as_mut() {
            link.loaded = Some(key);
        }
        Ok(())
    }

    /// Classifies one image (a file, a camera frame, prepared pixels) with the exported model of `trained`,
    /// or without one with the pretrained ImageNet classifier; built in the worker on first use and again when
    /// the model or the backend changes. One call at a time.
    pub async fn predict(
        &self,
        engine: &Engine,
        trained: Option<(ModelId, &Trained)>,
        input: ImageInput,
        bytes: &[u8],
    ) -> Result<Prediction, String> {
        let worker = self.listening().await?;
        let key = (engine.kind, trained.map(|(id, _)| id));
        if self.link.borrow().as_ref().and_then(|l| l.predictor) != Some(key) {
            if let Some(link) = self.link.borrow_mut().as_mut() {
                link.predictor = None;
            }
            let load = ToWorker::LoadPredictor {
                webgpu: engine.kind == BackendKind::WebGpu,
                trained: trained.map(|(_, t)| Box::new(t.clone())),
            };
            post(&worker, &load, Some(&engine.weights));
            self.loaded().await?;
            if let Some(link) = self.link.borrow_mut().as_mut() {
                link.predictor = Some(key);
            }
        }
        post(&worker, &ToWorker::Predict { input }, Some(bytes));
        loop {
            match self.next().await {
                FromWorker::Predicted(result) => return result,
                FromWorker::LoadFailed(e) => return Err(e),
                FromWorker::Ready
                | FromWorker::Loaded
                | FromWorker::Event(_)
                | FromWorker::Checkpoint { .. }
                | FromWorker::Embedded(_)
                | FromWorker::Shared(_)
                | FromWorker::Calibration(_) => {}
            }
        }
    }

    /// Embeds the images not embedded yet, then trains the head epoch by epoch, in the worker (or resumes a
    /// deeper run, or continues a kept model, as `job.begin` says). Ends with exactly one of `Finished`, `Stopped` or `Failed`; a deeper run
    /// on the CPU hands its state after each epoch to `on_checkpoint` (epochs done, bytes).
    pub async fn run(
        &self,
        job: Job,
        stop: StopSignal,
        on_event: impl Fn(TrainEvent),
        on_checkpoint: impl Fn(usize, Vec<u8>),
    ) {
        if let Err(e) = self.load(&job.engine).await {
            return on_event(TrainEvent::Failed(format!("on {}: {e}", job.engine.kind.label())));
        }
        if stop.requested.get() {
            return on_event(TrainEvent::Stopped {
                stage: Stage::Embedding,
                done: 0,
                total: 0,
            });
        }
        let Some(worker) = self.link.borrow().as_ref().map(|l| l.worker.clone()) else {
            return;
        };
        // Images per thread and batch. On the CPU 8 embedded 1.02–1.11× as fast as 4 in the page (fewer per-op
        // costs per image; `bench/app_embed.mjs`, four runs) for about 55 MB more per thread, and a batch still ends
        // within about half a second, so Stop stays prompt.
        let batch_size = if job.engine.kind == BackendKind::WebGpu { 16 } else { 8 };
        let dataset = snapshot::encode(&job.dataset);
        let mut options = job.options;
        if let Some(most) = job.engine.cache_bytes {
            options.deep.cache_bytes = options.deep.cache_bytes.min(most);
        }
        match job.begin {
            Begin::Resume(checkpoint) => {
                let resume = ToWorker::Resume { options, batch_size };
                post_buffers(&worker, &resume, &[("bytes", &dataset), ("checkpoint", &checkpoint)]);
            }
            Begin::New => {
                let start = ToWorker::Start { options, batch_size };
                post(&worker, &start, Some(&dataset));
            }
            Begin::Continue(from) => {
                let start = ToWorker::Continue {
                    options,
                    batch_size,
                    from,
                };
                post(&worker, &start, Some(&dataset));
            }
        }
        *stop.worker.borrow_mut() = Some(worker);
        loop {
            match self.next().await {
                message @ FromWorker::Event(_) => {
                    let last = message.is_final();
                    if let FromWorker::Event(event) = message {
                        on_event(event);
                    }
                    if last {
                        break;
                    }
                }
                FromWorker::LoadFailed(e) => {
                    on_event(TrainEvent::Failed(e));
                    break;
                }
                FromWorker::Checkpoint { epochs_done, bytes } => on_checkpoint(epochs_done, bytes),
                FromWorker::Ready
                | FromWorker::Loaded
                | FromWorker::Predicted(_)
                | FromWorker::Embedded(_)
                | FromWorker::Shared(_)
                | FromWorker::Calibration(_) => {}
            }
        }
        stop.worker.borrow_mut().take();
    }
}
