//! The training worker's helpers on the CPU: more copies of the worker (`src/worker.rs`), each a wasm instance
//! with its own backbone, that compute a share of every batch at the same time as the worker itself: features
//! while embedding, and cut activations, gradients and validation losses in the deeper runs (`Helpers`, see
//! `finetune::shard`). burn's flex backend computes on one thread per wasm instance, so this is how the CPU path
//! uses the other cores, on stable Rust and without cross-origin isolation (no shared memory: each step's
//! values travel as messages, small beside a step's compute). A helper that fails to start or to answer is
//! dropped and its share computed by the worker: the pool can only make training faster, never make it fail.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use crate::finetune::shard::{Helpers, ShardAnswer, ShardRequest};
use crate::floats::from_le_bytes;
use crate::model::EfficientNetLite0;
use crate::model::embed::embed_batch;
use crate::protocol::{FromWorker, ToWorker};
use burn::tensor::Device;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker};

/// The worker's own script, relative to the worker (the page starts it by the same name).
const HELPER_URL: &str = "worker_loader.js";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Starting,
    Ready,
    Gone,
}

struct Helper {
    worker: Worker,
    state: Cell<State>,
    /// Resolves the pending `Embed` request with the helper's message.
    answer: RefCell<Option<js_sys::Function>>,
}

pub struct Pool {
    helpers: Vec<Rc<Helper>>,
}

fn warn(text: &str) {
    web_sys::console::warn_1(&text.into());
}

fn message_json(data: &JsValue) -> Option<FromWorker> {
    let json = data
        .as_string()
        .or_else(|| js_sys::Reflect::get(data, &"json".into()).ok()?.as_string())?;
    serde_json::from_str(&json).ok()
}

fn post(worker: &Worker, message: &ToWorker, bytes: &[u8]) -> Result<(), JsValue> {
    let json = serde_json::to_string(message).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let data = js_sys::Object::new();
    let array = js_sys::Uint8Array::from(bytes);
    js_sys::Reflect::set(&data, &"json".into(), &json.into())?;
    js_sys::Reflect::set(&data, &"bytes".into(), &array)?;
    worker.post_message_with_transfer(&data, &js_sys::Array::of1(&array.buffer()))
}

impl Helper {
    fn gone(&self, why: &str) {
        if self.state.replace(State::Gone) != State::Gone {
            warn(&format!("CPU helper stopped: {why}"));
            self.worker.terminate();
        }
        if let Some(answer) = self.answer.borrow_mut().take() {
            let _ = answer.call1(&JsValue::NULL, &JsValue::NULL);
        }
    }

    fn on_message(&self, data: JsValue, weights: &Rc<Vec<u8>>) {
        match message_json(&data) {
            Some(FromWorker::Ready) => {
                let load = ToWorker::Load {
                    webgpu: false,
                    helpers: 0,
                };
                if let Err(e) = post(&self.worker, &load, weights) {
                    self.gone(&format!("{e:?}"));
                }
            }
            Some(FromWorker::Loaded) => self.state.set(State::Ready),
            Some(FromWorker::LoadFailed(e)) => self.gone(&e),
            Some(FromWorker::Embedded(_) | FromWorker::Shared(_)) => match self.answer.borrow_mut().take() {
                Some(answer) => drop(answer.call1(&JsValue::NULL, &data)),
                None => warn("CPU helper answered nothing asked"),
            },
            _ => warn("CPU helper sent an unexpected message"),
        }
    }

    fn start(weights: Rc<Vec<u8>>) -> Result<Rc<Helper>, JsValue> {
        let helper = Rc::new(Helper {
            worker: Worker::new(HELPER_URL)?,
            state: Cell::new(State::Starting),
            answer: RefCell::new(None),
        });
        // The handlers hold the helper weakly: a dropped pool ends its workers.
        let weak = Rc::downgrade(&helper);
        let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(helper) = weak.upgrade() {
                helper.on_message(event.data(), &weights);
            }
        });
        let weak = Rc::downgrade(&helper);
        let on_error = Closure::<dyn Fn(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
            if let Some(helper) = weak.upgrade() {
                helper.gone(&event.message());
            }
        });
        helper.worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        helper.worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_message.forget();
        on_error.forget();
        Ok(helper)
    }

    /// Sends `message` with `bytes` now; the future resolves with the answer. `Err` leaves the share to the caller.
    fn ask(&self, message: &ToWorker, bytes: &[u8]) -> Result<JsFuture, String> {
        let promise = js_sys::Promise::new(&mut |resolve, _| *self.answer.borrow_mut() = Some(resolve));
        post(&self.worker, message, bytes).map_err(|e| format!("{e:?}"))?;
        Ok(JsFuture::from(promise))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

/// The f32 values beside an answer's JSON (`{json, bytes}`, little-endian bytes).
fn values_of(data: &JsValue) -> Result<Vec<f32>, String> {
    let bytes = js_sys::Reflect::get(data, &"bytes".into())
        .ok()
        .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
        .ok_or("an answer without its values")?
        .to_vec();
    Ok(from_le_bytes(&bytes))
}

/// The rows of an `Embedded` message.
fn rows_of(data: &JsValue) -> Result<Vec<f32>, String> {
    match message_json(data) {
        Some(FromWorker::Embedded(Ok(()))) => values_of(data),
        Some(FromWorker::Embedded(Err(e))) => Err(e),
        _ => Err("no answer".into()),
    }
}

/// A `Shared` message as the trainer takes it.
fn share_of(data: &JsValue) -> Result<ShardAnswer, String> {
    match message_json(data) {
        Some(FromWorker::Shared(Ok(sums))) => Ok(ShardAnswer {
            sums,
            values: values_of(data)?,
        }),
        Some(FromWorker::Shared(Err(e))) => Err(e),
        _ => Err("no answer".into()),
    }
}

impl Pool {
    /// Helpers loaded and not busy.
    fn idle(&self) -> Vec<Rc<Helper>> {
        self.helpers
            .iter()
            .filter(|h| h.state.get() == State::Ready && h.answer.borrow().is_none())
            .cloned()
            .collect()
    }

    /// Starts `helpers` workers, each loading `weights` on the CPU. They join the work once loaded; until then
    /// (about a second) the worker embeds alone.
    pub fn start(weights: Rc<Vec<u8>>, helpers: usize) -> Pool {
        let helpers = (0..helpers)
            .filter_map(|_| match Helper::start(weights.clone()) {
                Ok(helper) => Some(helper),
                Err(e) => {
                    warn(&format!("no embedding helper: {e:?}"));
                    None
                }
            })
            .collect();
        Pool { helpers }
    }

    /// Waits until every helper has loaded or is gone, at most `seconds`: a run that starts right after the pool
    /// (the first one) would otherwise embed its first batches alone.
    pub async fn settled(&self, seconds: f64) {
        let deadline = js_sys::Date::now() + seconds * 1000.0;
        while self.helpers.iter().any(|h| h.state.get() == State::Starting) && js_sys::Date::now() < deadline {
            gloo::timers::future::TimeoutFuture::new(20).await;
        }
    }

    /// Threads embedding once the helpers have loaded: the worker and the helpers not gone.
    pub fn threads(&self) -> usize {
        1 + self.helpers.iter().filter(|h| h.state.get() != State::Gone).count()
    }

    /// Features of `images` (as `embed_batch`), shared out in contiguous parts between the loaded helpers and
    /// this worker, which takes the first part; rows come back in the images' order, with the number of parts.
    pub async fn embed(
        &self,
        model: &EfficientNetLite0,
        images: &[&[u8]],
        device: &Device,
    ) -> Result<(Vec<f32>, usize), String> {
        let ready = self.idle();
        let parts = (ready.len() + 1).min(images.len());
        if parts <= 1 {
            return Ok((embed_batch(model, images, device).await?, 1));
        }
        // Part sizes differ by at most one image.
        let bounds: Vec<usize> = (0..=parts).map(|i| i * images.len() / parts).collect();
        let shares: Vec<&[&[u8]]> = bounds.windows(2).map(|w| &images[w[0]..w[1]]).collect();
        let asked: Vec<Result<JsFuture, String>> = ready
            .iter()
            .zip(&shares[1..])
            .map(|(h, share)| h.ask(&ToWorker::Embed, &share.concat()))
            .collect();
        let mut rows = embed_batch(model, shares[0], device).await?;
        let width = rows.len() / shares[0].len();
        for ((helper, share), asked) in ready.iter().zip(&shares[1..]).zip(asked) {
            let answer = match asked {
                Ok(future) => future
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .and_then(|data| rows_of(&data)),
                Err(e) => Err(e),
            };
            match answer {
                Ok(part) if part.len() == share.len() * width => rows.extend(part),
                other => {
                    let why = other.err().unwrap_or_else(|| "rows of the wrong size".into());
                    helper.gone(&why);
                    rows.extend(embed_batch(model, share, device).await?);
                }
            }
        }
        Ok((rows, parts))
    }
}

impl Helpers for Pool {
    fn available(&self) -> usize {
        self.idle().len()
    }

    fn ask(&self, requests: Vec<ShardRequest>) -> impl Future<Output = Vec<Result<ShardAnswer, String>>> {
        let idle = self.idle();
        let asked: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(i, request)| match idle.get(i) {
                Some(h) => (
                    Some(h.clone()),
                    h.ask(&ToWorker::Share(request.spec.clone()), &request.to_bytes()),
                ),
                None => (None, Err("no idle helper".into())),
            })
            .collect();
        async move {
            let mut answers = Vec::with_capacity(asked.len());
            for (helper, asked) in asked {
                let answer = match asked {
                    Ok(future) => future
                        .await
                        .map_err(|e| format!("{e:?}"))
                        .and_then(|data| share_of(&data)),
                    Err(e) => Err(e),
                };
                if let (Err(why), Some(helper)) = (&answer, helper) {
                    helper.gone(why);
                }
                answers.push(answer);
            }
            answers
        }
    }
}
