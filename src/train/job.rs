//! One whole training as the page asks for it — embed what is not cached and train the head epoch by epoch,
//! fine-tune deeper one mini-batch at a time (`deep_job.rs`), or both for Auto — reporting [`TrainEvent`]s.
//! Whatever runs it (the training worker, `src/worker.rs`; a native test) supplies a [`Host`]: a clock, a pause
//! that lets its event loop run (so a stop request can arrive), the stop flag and where the events go. A stop
//! takes effect within one step: a batch of images, an epoch of the head, or a mini-batch of a deeper run.

use burn::tensor::Device;

use super::checkpoint::AutoCheckpoint;
use super::deep_job::{finish_deep, run_deep};
use super::mode::{RunHistory, RunMode};
use super::pipeline::{EmbeddingCache, Progress, Stage, Timings, TrainEvent, Trained, TrainingRun};
use crate::data::Dataset;
use crate::model::EfficientNetLite0;
use crate::model::embed::embed_batch;
use crate::options::FinetuneChoice;
use crate::options::FinetuneMode;
use crate::options::TrainOptions;
use crate::train::{AutoChoice, choose};
use futures_util::future::join;

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
}

/// Images read back per `Host::load_pixels` call when a deeper run needs them all.
const FILL_BATCH: usize = 16;

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
    // The deeper runs need every image's pixels at each epoch: those kept out of memory are read back once.
    let filled = match filled_dataset(&job, host).await {
        Ok(filled) => filled,
        Err(e) => return host.emit(TrainEvent::Failed(e)),
    };
    let job = match &filled {
        Some(dataset) => Job { dataset, ..job },
        None => job,
    };
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
    let deep = match run_deep(job, mode, resume, Some(&head), host).await {
        Ok(deep) => deep,
        Err(e) => return host.emit(TrainEvent::Failed(format!("fine-tuning failed: {e}"))),
    };
    let embedding = head.report.timings.clone();
    // Auto: keep the lower best validation loss.
    let lora_history = deep.as_ref().map(|d| d.history()).unwrap_or_default();
    let report = choose(
        &head.report.history,
        head.report.best.val_loss,
        lora_history,
        deep.as_ref().and_then(|d| d.best_metrics()),
    );
    let runs = vec![
        head.report.runs[0].clone(),
        RunHistory {
            mode: RunMode::Lora,
            history: lora_history.to_vec(),
            stop_reason: deep
                .as_ref()
                .map_or("stopped by you before its first epoch", |d| d.stop_reason())
                .into(),
        },
    ];
    let mut kept = match (report.choice, &deep) {
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
    let filled = match filled_dataset(&job, host).await {
        Ok(filled) => filled,
        Err(e) => return host.emit(TrainEvent::Failed(e)),
    };
    let job = match &filled {
        Some(dataset) => Job { dataset, ..job },
        None => job,
    };
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

/// The job's dataset with every image's pixels in memory, read back through the host; `None` when they all are.
async fn filled_dataset(job: &Job<'_>, host: &impl Host) -> Result<Option<Dataset>, String> {
    let all_in_memory = job
        .dataset
        .classes
        .iter()
        .flat_map(|c| &c.samples)
        .all(|s| s.in_memory());
    if all_in_memory {
        return Ok(None);
    }
    let mut dataset = job.dataset.clone();
    dataset
        .fill_pixels(FILL_BATCH, |keys| async move { host.load_pixels(&keys).await })
        .await
        .map_err(|e| format!("could not read the images back: {e}"))?;
    Ok(Some(dataset))
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
        Ok(Some(deep)) => match finish_deep(job, &deep, host, Timings::default(), started).await {
            Ok(trained) => finished(host, Some(trained)),
            Err(e) => host.emit(TrainEvent::Failed(e)),
        },
        Err(e) => host.emit(TrainEvent::Failed(format!("fine-tuning failed: {e}"))),
    }
}

fn finished(host: &impl Host, trained: Option<Trained>) {
    if let Some(trained) = trained {
        host.emit(TrainEvent::Finished(Box::new(trained)));
    }
}

/// The head alone: embeds what `cache` lacks, then trains epoch by epoch. `None` when it ended otherwise (the
/// final `Stopped` or `Failed` event is sent).
/// Trains the head further from an earlier model `from` (one opened from a file): its head is the start, its
/// backbone stays as it is. `job.model` must be that backbone (the shipped one with `from.delta` merged); when
/// it differs from the shipped one, its features are computed here and kept only for this run (`cache` holds
/// the shipped backbone's). The dataset must have the model's classes, in any order. Head only: a deeper mode
/// is refused.
pub async fn continue_job(job: Job<'_>, from: &Trained, cache: &mut EmbeddingCache, host: &impl Host) {
    if job.options.finetune != FinetuneChoice::Head {
        return host.emit(TrainEvent::Failed(
            "continuing a model trains its head: choose “Head only” as the fine-tuning mode".into(),
        ));
    }
    let own_backbone = !from.delta.convs.is_empty();
    let mut own_cache = EmbeddingCache::default();
    let cache = if own_backbone { &mut own_cache } else { cache };
    let start = Start {
        from,
        store_features: !own_backbone,
    };
    let Some(mut trained) = head_run(&job, cache, host, Some(start)).await else {
        return;
    };
    trained.delta = from.delta.clone();
    if own_backbone {
        trained.report.mode = from.report.mode;
    }
    trained.report.explanation = Some(format!(
        "Continued from the opened model: its head trained {} more epoch(s) on these images{}.",
        trained.report.history.len(),
        if own_backbone {
            ", on its own fine-tuned backbone"
        } else {
            ""
        }
    ));
    finished(host, Some(trained))
}

/// Where a head run starts when it continues an earlier model.
#[derive(Clone, Copy)]
struct Start<'a> {
    from: &'a Trained,
    /// Whether the features computed go to the host to keep (only the shipped backbone's are kept).
    store_features: bool,
}

async fn head_run(
    job: &Job<'_>,
    cache: &mut EmbeddingCache,
    host: &impl Host,
    start: Option<Start<'_>>,
) -> Option<Trained> {
    let missing = cache.missing(job.dataset);
    let total = missing.len();
    let started = host.now_seconds();
    host.emit(TrainEvent::Progress(Progress::new(Stage::Embedding, 0, total, 0.0)));
    host.pause().await;
    let (mut done, mut backbone_seconds) = (0, 0.0);
    let chunks: Vec<_> = missing.chunks(job.batch_size.max(1)).collect();
    let mut loaded = read_back(host, chunks.first().copied().unwrap_or_default()).await;
    for (i, chunk) in chunks.iter().enumerate() {
        if host.stop_requested() {
            // What was embedded stays cached: the next run resumes from there.
            host.emit(TrainEvent::Stopped {
                stage: Stage::Embedding,
                done,
                total,
            });
            return None;
        }
        let keys: Vec<u64> = chunk.iter().map(|(k, _)| *k).collect();
        let this = match std::mem::replace(&mut loaded, Ok(Vec::new())) {
            Ok(this) => this,
            Err(e) => return fail(host, e),
        };
        let mut loaded_iter = this.iter();
        let pixels: Vec<&[u8]> = chunk
            .iter()
            .map(|(_, p)| match p.is_empty() {
                true => loaded_iter.next().map_or(&[][..], Vec::as_slice),
                false => *p,
            })
            .collect();
        // The next batch is read back while this one computes: `join` polls the read first, so its requests
        // are out before the (synchronous, on the CPU) forward pass starts.
        let next = chunks.get(i + 1).copied().unwrap_or_default();
        let embed = async {
            let start = host.now_seconds();
            let rows = host.embed(job.model, &pixels, job.device).await;
            (rows, host.now_seconds() - start)
        };
        let (next_loaded, (rows, seconds)) = join(read_back(host, next), embed).await;
        loaded = next_loaded;
        backbone_seconds += seconds;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return fail(host, format!("embedding failed: {e}")),
        };
        if let Err(e) = cache.insert(&keys, &rows) {
            return fail(host, e);
        }
        if start.is_none_or(|s| s.store_features) {
            host.embedded(&keys, &rows).await;
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
        .and_then(|data| TrainingRun::new(data, job.options.clone()))
    {
        Ok(run) => run,
        Err(e) => return fail(host, e),
    };
    if let Some(start) = start
        && let Err(e) = run.start_from(&start.from.head, &start.from.report.labels)
    {
        return fail(host, format!("cannot continue this model: {e}"));
    }
    let epochs = run.epochs();
    let train_started = host.now_seconds();
    host.emit(TrainEvent::Progress(Progress::new(Stage::Training, 0, epochs, 0.0)));
    loop {
        if host.stop_requested() {
            run.stop();
        }
        let Some(metrics) = run.step() else { break };
        let epoch = metrics.epoch + 1;
        host.emit(TrainEvent::Epoch {
            run: RunMode::Head,
            metrics,
        });
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
        host.emit(TrainEvent::Stopped {
            stage: Stage::Training,
            done: 0,
            total: epochs,
        });
        return None;
    }
    let timings = Timings {
        embed_seconds,
        images_per_second: if total == 0 {
            0.0
        } else {
            total as f64 / embed_seconds.max(1e-9)
        },
        embed_threads: host.embed_threads(),
        backbone_seconds,
        train_seconds: host.now_seconds() - train_started,
    };
    Some(run.finish(timings))
}

/// The pixels of the images of `chunk` kept out of memory (`Host::load_pixels`), in order.
async fn read_back(host: &impl Host, chunk: &[(u64, &[u8])]) -> Result<Vec<Vec<u8>>, String> {
    let elsewhere: Vec<u64> = chunk.iter().filter(|(_, p)| p.is_empty()).map(|(k, _)| *k).collect();
    if elsewhere.is_empty() {
        return Ok(Vec::new());
    }
    match host.load_pixels(&elsewhere).await {
        Ok(loaded) if loaded.len() == elsewhere.len() => Ok(loaded),
        Ok(loaded) => Err(format!("{} images read back, not {}", loaded.len(), elsewhere.len())),
        Err(e) => Err(format!("could not read the images back: {e}")),
    }
}

fn fail<T>(host: &impl Host, message: String) -> Option<T> {
    host.emit(TrainEvent::Failed(message));
    None
}
