//! The one interface between the page and training: [`TrainingService::run`] takes a [`Job`] (the dataset as
//! it is when Train is pressed, the options, the engine) and reports [`TrainEvent`]s until the run ends; a
//! [`StopSignal`] ends it within one step (a batch of images, or an epoch).
//!
//! This implementation runs on the page's thread and yields between steps. A Web Worker implementation
//! keeps the same signature: `run` posts the job as a message and forwards the worker's `TrainEvent`
//! messages to `on_event` until a final one; `stop` posts a stop message. The embedding cache then lives in
//! the worker.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use ajuste::data::Dataset;
use ajuste::model::embed::embed_batch;
use ajuste::train::pipeline::Timings;
use ajuste::train::{EmbeddingCache, Progress, Stage, TrainEvent, TrainOptions, TrainingRun};

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

impl TrainingService {
    /// Embeds the images not embedded yet, then trains the head epoch by epoch. Ends with exactly one of
    /// `Finished`, `Stopped` or `Failed`.
    pub async fn run(&self, job: Job, stop: StopSignal, on_event: impl Fn(TrainEvent)) {
        let Job {
            dataset,
            options,
            engine,
        } = job;
        let missing = self.cache.borrow().missing(&dataset);
        let total = missing.len();
        let batch_size = if engine.kind == BackendKind::WebGpu { 16 } else { 4 };
        let started = now_ms();
        let seconds = |since: f64| (now_ms() - since) / 1000.0;
        on_event(TrainEvent::Progress(Progress::new(Stage::Embedding, 0, total, 0.0)));
        yield_to_browser().await;
        let mut done = 0;
        for chunk in missing.chunks(batch_size) {
            if stop.is_set() {
                // What was embedded stays cached: the next Train resumes from there.
                return on_event(TrainEvent::Stopped {
                    stage: Stage::Embedding,
                    done,
                    total,
                });
            }
            let keys: Vec<u64> = chunk.iter().map(|(k, _)| *k).collect();
            let pixels: Vec<&[u8]> = chunk.iter().map(|(_, p)| *p).collect();
            let rows = match embed_batch(&engine.model, &pixels, &engine.device).await {
                Ok(rows) => rows,
                Err(e) => {
                    return on_event(TrainEvent::Failed(format!(
                        "embedding failed on {}: {e}",
                        engine.kind.label()
                    )));
                }
            };
            if let Err(e) = self.cache.borrow_mut().insert(&keys, &rows) {
                return on_event(TrainEvent::Failed(e));
            }
            done += chunk.len();
            on_event(TrainEvent::Progress(Progress::new(
                Stage::Embedding,
                done,
                total,
                seconds(started),
            )));
            yield_to_browser().await;
        }
        let embed_seconds = seconds(started);
        let data = match self.cache.borrow().train_data(&dataset) {
            Ok(data) => data,
            Err(e) => return on_event(TrainEvent::Failed(e)),
        };
        let mut run = match TrainingRun::new(data, options) {
            Ok(run) => run,
            Err(e) => return on_event(TrainEvent::Failed(e)),
        };
        let epochs = run.epochs();
        let train_started = now_ms();
        on_event(TrainEvent::Progress(Progress::new(Stage::Training, 0, epochs, 0.0)));
        loop {
            if stop.is_set() {
                run.stop();
            }
            let Some(metrics) = run.step() else { break };
            let epoch = metrics.epoch + 1;
            on_event(TrainEvent::Epoch(metrics));
            on_event(TrainEvent::Progress(Progress::new(
                Stage::Training,
                epoch,
                epochs,
                seconds(train_started),
            )));
            yield_to_browser().await;
        }
        if run.history().is_empty() {
            // Stopped before the first epoch: nothing was trained, the previous model stays.
            return on_event(TrainEvent::Stopped {
                stage: Stage::Training,
                done: 0,
                total: epochs,
            });
        }
        let timings = Timings {
            embed_seconds,
            images_per_second: if total == 0 {
                0.0
            } else {
                total as f64 / embed_seconds.max(1e-9)
            },
            train_seconds: seconds(train_started),
        };
        on_event(TrainEvent::Finished(Box::new(run.finish(timings))));
    }
}
