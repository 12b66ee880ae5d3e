//! The head-only run of a job (head only, and Auto's first run): the features the cache lacks computed a batch at
//! a time (images kept out of memory read back through the host while the previous batch computes), then the head
//! trained epoch by epoch; and `continue_job`, the head of an opened model trained further.

use futures_util::future::join;

use super::budget::Budget;
use super::job::{Host, Job, finished};
use super::mode::RunMode;
use super::pipeline::{EmbeddingCache, Progress, Stage, Timings, TrainEvent, Trained, TrainingRun};
use crate::options::FinetuneChoice;

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
pub(super) struct Start<'a> {
    from: &'a Trained,
    /// Whether the features computed go to the host to keep (only the shipped backbone's are kept).
    store_features: bool,
}

/// The head alone: embeds what `cache` lacks, then trains epoch by epoch. `None` when it ended otherwise (the
/// final `Stopped` or `Failed` event is sent).
pub(super) async fn head_run(
    job: &Job<'_>,
    cache: &mut EmbeddingCache,
    host: &impl Host,
    start: Option<Start<'_>>,
) -> Option<Trained> {
    let missing = cache.missing(job.dataset);
    let total = missing.len();
    let started = host.now_seconds();
    // The time left comes from the rate past the first batch (the warm-up), once a few images have been timed.
    let mut clock = Budget::new(started, 0);
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
        let now = host.now_seconds();
        clock.stepped(now, done);
        let mut progress = Progress::new(Stage::Embedding, done, total, now - started);
        progress.seconds_left = clock.seconds_left(now, done, total);
        host.emit(TrainEvent::Progress(progress));
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
    let mut clock = Budget::new(train_started, 0);
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
        let now = host.now_seconds();
        clock.stepped(now, epoch);
        let mut progress = Progress::new(Stage::Training, epoch, epochs, now - train_started);
        progress.seconds_left = clock.seconds_left(now, epoch, epochs);
        host.emit(TrainEvent::Progress(progress));
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
        train_threads: 0,
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
