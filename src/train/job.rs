//! One whole training as the page asks for it — embed what is not cached, then train the head epoch by epoch —
//! reporting [`TrainEvent`]s. Whatever runs it (the training worker, `src/worker.rs`; a native test) supplies
//! a [`Host`]: a clock, a pause that lets its event loop run (so a stop request can arrive), the stop flag and
//! where the events go. A stop takes effect within one step: a batch of images, or an epoch.

use burn::tensor::Device;

use super::options::TrainOptions;
use super::pipeline::{EmbeddingCache, Progress, Stage, Timings, TrainEvent, TrainingRun};
use crate::data::Dataset;
use crate::model::EfficientNetLite0;
use crate::model::embed::embed_batch;

/// What the environment running a job provides.
pub trait Host {
    /// Seconds from any fixed origin.
    fn now_seconds(&self) -> f64;
    /// Gives the event loop a turn (repaint, messages); natively it can return at once.
    fn pause(&self) -> impl Future<Output = ()>;
    fn stop_requested(&self) -> bool;
    fn emit(&self, event: TrainEvent);
}

pub struct Job<'a> {
    pub model: &'a EfficientNetLite0,
    pub device: &'a Device,
    pub dataset: &'a Dataset,
    pub options: TrainOptions,
    /// Images per forward pass while embedding.
    pub batch_size: usize,
}

/// Runs `job`, adding new embeddings to `cache`. Ends with exactly one of `Finished`, `Stopped` or `Failed`.
pub async fn run_job(job: Job<'_>, cache: &mut EmbeddingCache, host: &impl Host) {
    let missing = cache.missing(job.dataset);
    let total = missing.len();
    let started = host.now_seconds();
    host.emit(TrainEvent::Progress(Progress::new(Stage::Embedding, 0, total, 0.0)));
    host.pause().await;
    let mut done = 0;
    for chunk in missing.chunks(job.batch_size.max(1)) {
        if host.stop_requested() {
            // What was embedded stays cached: the next run resumes from there.
            return host.emit(TrainEvent::Stopped {
                stage: Stage::Embedding,
                done,
                total,
            });
        }
        let keys: Vec<u64> = chunk.iter().map(|(k, _)| *k).collect();
        let pixels: Vec<&[u8]> = chunk.iter().map(|(_, p)| *p).collect();
        let rows = match embed_batch(job.model, &pixels, job.device).await {
            Ok(rows) => rows,
            Err(e) => return host.emit(TrainEvent::Failed(format!("embedding failed: {e}"))),
        };
        if let Err(e) = cache.insert(&keys, &rows) {
            return host.emit(TrainEvent::Failed(e));
        }
        done += chunk.len();
        let elapsed = host.now_seconds() - started;
        host.emit(TrainEvent::Progress(Progress::new(
            Stage::Embedding,
            done,
            total,
            elapsed,
        )));
        host.pause().await;
    }
    let embed_seconds = host.now_seconds() - started;
    let mut run = match cache
        .train_data(job.dataset)
        .and_then(|data| TrainingRun::new(data, job.options))
    {
        Ok(run) => run,
        Err(e) => return host.emit(TrainEvent::Failed(e)),
    };
    let epochs = run.epochs();
    let train_started = host.now_seconds();
    host.emit(TrainEvent::Progress(Progress::new(Stage::Training, 0, epochs, 0.0)));
    loop {
        if host.stop_requested() {
            run.stop();
        }
        let Some(metrics) = run.step() else { break };
        let epoch = metrics.epoch + 1;
        host.emit(TrainEvent::Epoch(metrics));
        let elapsed = host.now_seconds() - train_started;
        host.emit(TrainEvent::Progress(Progress::new(
            Stage::Training,
            epoch,
            epochs,
            elapsed,
        )));
        host.pause().await;
    }
    if run.history().is_empty() {
        // Stopped before the first epoch: nothing was trained, the previous model stays.
        return host.emit(TrainEvent::Stopped {
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
        train_seconds: host.now_seconds() - train_started,
    };
    host.emit(TrainEvent::Finished(Box::new(run.finish(timings))));
}
