//! The one interface between the page and training: [`TrainingService::run`] takes a [`Job`] (the dataset as
//! it is when Train is pressed, the options, the engine) and reports [`TrainEvent`]s until the run ends; a
//! [`StopSignal`] ends it within one step (a batch of images, or an epoch).
//!
//! The work itself is the library's `train::job::run_job`; this implementation hosts it on the page's thread
//! and yields between steps. A Web Worker implementation keeps the same signature: `run` posts the job as a
//! message and forwards the worker's `TrainEvent` messages to `on_event` until a final one; `stop` posts a
//! stop message; the worker hosts `run_job` and keeps the embedding cache.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use ajuste::data::Dataset;
use ajuste::train::job::{Host, run_job};
use ajuste::train::{EmbeddingCache, TrainEvent, TrainOptions};

use super::backend::BackendKind;
use super::browser::{now_ms, yield_to_browser};
use super::model_flow::Engine;

#[derive(Clone)]
pub struct Job {
    pub dataset: Arc<Dataset>,
    pub options: TrainOptions,
    pub engine: Engine,
}

/// Set once to end the run it was handed to.
#[derive(Clone, Default)]
pub struct StopSignal(Rc<Cell<bool>>);

impl StopSignal {
    pub fn stop(&self) {
        self.0.set(true);
    }

    fn is_set(&self) -> bool {
        self.0.get()
    }
}

/// Runs trainings; keeps the embeddings between them (by pixel key).
#[derive(Clone, Default)]
pub struct TrainingService {
    cache: Rc<RefCell<EmbeddingCache>>,
}

/// The page's thread as the job's host: the performance clock, a yield to the browser between steps.
struct PageHost<F: Fn(TrainEvent)> {
    stop: StopSignal,
    on_event: F,
}

impl<F: Fn(TrainEvent)> Host for PageHost<F> {
    fn now_seconds(&self) -> f64 {
        now_ms() / 1000.0
    }

    fn pause(&self) -> impl Future<Output = ()> {
        yield_to_browser()
    }

    fn stop_requested(&self) -> bool {
        self.stop.is_set()
    }

    fn emit(&self, event: TrainEvent) {
        (self.on_event)(event)
    }
}

impl TrainingService {
    /// Embeds the images not embedded yet, then trains the head epoch by epoch. Ends with exactly one of
    /// `Finished`, `Stopped` or `Failed`.
    pub async fn run(&self, job: Job, stop: StopSignal, on_event: impl Fn(TrainEvent)) {
        let Job {
            dataset,
            options,
            engine,
        } = job;
        // Taken out for the run (one at a time) and put back with the new embeddings.
        let mut cache = self.cache.take();
        let job = ajuste::train::job::Job {
            model: &engine.model,
            device: &engine.device,
            dataset: &dataset,
            options,
            batch_size: if engine.kind == BackendKind::WebGpu { 16 } else { 4 },
        };
        run_job(job, &mut cache, &PageHost { stop, on_event }).await;
        self.cache.replace(cache);
    }
}
