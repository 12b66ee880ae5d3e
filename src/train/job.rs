//! One whole training as the page asks for it — embed what is not cached and train the head epoch by epoch,
//! fine-tune deeper one mini-batch at a time (`deep_job.rs`), or both for Auto — reporting [`TrainEvent`]s.
//! Whatever runs it (the training worker, `src/worker.rs`; a native test) supplies a [`Host`]: a clock, a pause
//! that lets its event loop run (so a stop request can arrive), the stop flag and where the events go. A stop
//! takes effect within one step: a batch of images, an epoch of the head, or a mini-batch of a deeper run.

use burn::tensor::Device;

use super::checkpoint::AutoCheckpoint;
use super::deep_job::{finish_deep, run_deep};
pub use super::head_job::continue_job;
use super::head_job::head_run;
use super::mode::{RunHistory, RunMode};
use super::pipeline::{EmbeddingCache, Stage, Timings, TrainEvent, Trained};
use crate::data::Dataset;
use crate::finetune::ActivationCache;
use crate::finetune::shard::{Helpers, NoHelpers};
use crate::model::EfficientNetLite0;
use crate::model::embed::embed_batch;
use crate::options::FinetuneChoice;
use crate::options::FinetuneMode;
use crate::options::TrainOptions;
use crate::train::{AutoChoice, choose};

/// What the environment running a job provides.
pub trait Host {
    /// Seconds from any fixed origin.
    fn now_seconds(&self) -> f64;
    /// Gives the event loop a turn (repaint, messages); natively it can return at once.
    fn pause(&self) -> impl Future<Output = ()>;
    fn stop_requested(&self) -> bool;
    fn emit(&self, event: TrainEvent);
    /// The pixels of images kept out of memory (`Sample::pixels` empty), by pixel key, in the same order.
    /// A host that keeps every image in memory never gets asked.
    fn load_pixels(&self, keys: &[u64]) -> impl Future<Output = Result<Vec<Vec<u8>>, String>> {
        async move {
            Err(format!(
                "{} image(s) are not in memory and cannot be read back here",
                keys.len()
            ))
        }
    }
    /// Features just computed (`keys.len()` rows one after the other), for the host to keep (the worker
    /// stores them, so a reload does not compute them again).
    fn embedded(&self, keys: &[u64], rows: &[f32]) -> impl Future<Output = ()> {
        let _ = (keys, rows);
        async {}
    }
    /// Whether a deeper run (LoRA, last blocks, or Auto's LoRA run) hands its state to [`Host::checkpoint`] after
    /// every epoch but the last, to be resumed by [`resume_job`]. Off by default: a checkpoint costs a read of
    /// the trained tensors and the optimizer's moments.
    fn wants_checkpoints(&self) -> bool {
        false
    }
    /// The bytes to resume from after `epochs_done` epochs of the deeper run: `DeepTrainer::checkpoint`'s, with
    /// Auto's finished head run before them (`AutoCheckpoint`).
    fn checkpoint(&self, _epochs_done: usize, _bytes: Vec<u8>) {}
    /// Features `[n, 1280]` (row-major) of preprocessed images through the job's backbone `model`. By default
    /// computed right here; a host with idle cores may share the batch out (the browser worker's CPU pool).
    fn embed(
        &self,
        model: &EfficientNetLite0,
        images: &[&[u8]],
        device: &Device,
    ) -> impl Future<Output = Result<Vec<f32>, String>> {
        embed_batch(model, images, device)
    }
    /// Threads [`Host::embed`] computes on.
    fn embed_threads(&self) -> usize {
        1
    }
    /// Who computes shares of a deeper run's batches beside this thread (the browser worker's CPU pool): by
    /// default no one.
    fn helpers(&self) -> impl Helpers + '_ {
        NoHelpers
    }
    /// Where a deeper run keeps its activations at the frozen cut of block `cut`: in memory within the options'
    /// `cache_bytes` by default (the page); the command maps a file of gigabytes.
    fn activation_cache(&self, cut: usize, options: &TrainOptions) -> ActivationCache {
        ActivationCache::new(cut, options.deep.cache_bytes)
    }
    /// Parts a deeper run computes each batch in (`DeepTrainer::with_parts`): 1 (whole batches) by default.
    fn parts(&self) -> usize {
        1
    }
}

pub struct Job<'a> {
    pub model: &'a EfficientNetLite0,
    pub device: &'a Device,
    pub dataset: &'a Dataset,
    pub options: TrainOptions,
    /// Images per forward pass while embedding.
    pub batch_size: usize,
}

/// Runs `job` in the mode its options choose, adding new embeddings to `cache`. Ends with exactly one of
/// `Finished`, `Stopped` or `Failed`.
pub async fn run_job(job: Job<'_>, cache: &mut EmbeddingCache, host: &impl Host) {
    let started = host.now_seconds();
    let head = match job.options.finetune {
        FinetuneChoice::Head | FinetuneChoice::Auto => match head_run(&job, cache, host, None).await {
            Some(trained) => Some(trained),
            None => return,
        },
        _ => None,
    };
    let Some(mode) = job.options.deep_mode() else {
        return finished(host, head);
    };
    // A stop during Auto's head run keeps the head: the LoRA run does not start.
    if head.is_some() && host.stop_requested() {
        return finished(host, head);
    }
    let Some(head) = head else {
        return deep_only(&job, mode, None, host).await;
    };
    auto_lora(&job, mode, head, None, host, started).await
}

/// Auto's LoRA run after its head run `head` (from the start, or from a checkpoint's `resume` bytes), then the
/// choice between them. `started`: when the job began (this session's, after a resume).
async fn auto_lora(
    job: &Job<'_>,
    mode: FinetuneMode,
    mut head: Trained,
    resume: Option<&[u8]>,
    host: &impl Host,
    started: f64,
) {
    let mut deep = match run_deep(job, mode, resume, Some(&head), host).await {
        Ok(deep) => deep,
        Err(e) => return host.emit(TrainEvent::Failed(format!("fine-tuning failed: {e}"))),
    };
    let embedding = head.report.timings.clone();
    // Auto: keep the lower best validation loss.
    let lora_history = deep.as_ref().map(|d| d.trainer.history()).unwrap_or_default();
    let report = choose(
        &head.report.history,
        head.report.best.val_loss,
        lora_history,
        deep.as_ref().and_then(|d| d.trainer.best_metrics()),
    );
    let runs = vec![
        head.report.runs[0].clone(),
        deep.as_ref().map_or_else(
            || RunHistory {
                mode: RunMode::Lora,
                history: Vec::new(),
                stop_reason: "stopped by you before its first round".into(),
                deep: None,
            },
            |d| d.history(),
        ),
    ];
    let mut kept = match (report.choice, &mut deep) {
        (AutoChoice::Lora, Some(deep)) => match finish_deep(job, deep, host, embedding.clone(), started).await {
            Ok(trained) => trained,
            Err(e) => return host.emit(TrainEvent::Failed(e)),
        },
        _ => {
            // After a resume `started` is this session's, and the head run's embedding was in the last one.
            head.report.timings.train_seconds = (host.now_seconds() - started - embedding.embed_seconds).max(0.0);
            head
        }
    };
    kept.report.runs = runs;
    kept.report.explanation = Some(report.explanation);
    finished(host, Some(kept))
}

/// Continues a deeper run (LoRA, last blocks, or Auto's LoRA run) from a checkpoint its [`Host::checkpoint`]
/// received: the epochs done are reported again (for the charts; Auto's head run first, which is not run again),
/// then the run goes on as if it had not stopped. Refused, with a `Failed` event, when the images, labels, split
/// or options differ from the checkpoint's.
pub async fn resume_job(job: Job<'_>, checkpoint: &[u8], host: &impl Host) {
    let started = host.now_seconds();
    match job.options.finetune {
        FinetuneChoice::LastBlocks { .. } | FinetuneChoice::Lora { .. } => {
            let mode = job.options.deep_mode().expect("a deep choice");
            deep_only(&job, mode, Some(checkpoint), host).await
        }
        FinetuneChoice::Auto => {
            let (head, deep) = match AutoCheckpoint::decode(checkpoint) {
                Ok(parts) => parts,
                Err(e) => return host.emit(TrainEvent::Failed(format!("cannot resume: {e}"))),
            };
            if head.report.labels != job.dataset.class_names() {
                return host.emit(TrainEvent::Failed(
                    "cannot resume: the classes changed since this training was saved".into(),
                ));
            }
            for metrics in &head.report.history {
                host.emit(TrainEvent::Epoch {
                    run: RunMode::Head,
                    metrics: metrics.clone(),
                });
            }
            let mode = job.options.deep_mode().expect("Auto has a deep run");
            auto_lora(&job, mode, head, Some(&deep), host, started).await
        }
        FinetuneChoice::Head => host.emit(TrainEvent::Failed(
            "only a LoRA, last-blocks or Auto training can be resumed".into(),
        )),
    }
}

/// A single deeper run, new or resumed, to its end and the kept model.
async fn deep_only(job: &Job<'_>, mode: FinetuneMode, resume: Option<&[u8]>, host: &impl Host) {
    let started = host.now_seconds();
    match run_deep(job, mode, resume, None, host).await {
        Ok(None) => host.emit(TrainEvent::Stopped {
            stage: Stage::FineTuning,
            done: 0,
            total: job.options.epochs,
        }),
        Ok(Some(mut deep)) => match finish_deep(job, &mut deep, host, Timings::default(), started).await {
            Ok(trained) => finished(host, Some(trained)),
            Err(e) => host.emit(TrainEvent::Failed(e)),
        },
        Err(e) => host.emit(TrainEvent::Failed(format!("fine-tuning failed: {e}"))),
    }
}

pub(super) fn finished(host: &impl Host, trained: Option<Trained>) {
    if let Some(trained) = trained {
        host.emit(TrainEvent::Finished(Box::new(trained)));
    }
}
