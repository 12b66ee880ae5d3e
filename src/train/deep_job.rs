//! The deeper part of a job: a [`DeepTrainer`] stepped one mini-batch at a time with events between steps, and
//! the kept epoch's network evaluated on the validation images for the report.

use super::checkpoint::AutoCheckpoint;
use super::job::{Host, Job};
use super::mode::{RunHistory, RunMode};
use super::pipeline::{Progress, Stage, Timings, TrainEvent, Trained, TrainingReport};
use crate::data::split::stratified_split;
use crate::finetune::{DeepTrainer, Phase, TrainData};
use crate::head::metrics::{evaluate, image_predictions};
use crate::model::embed::embed_batch;
use crate::options::FinetuneMode;

/// Runs `mode` to its end (all epochs, early stop, or a stop request), from the checkpoint `resume` when given.
/// `auto_head`: Auto's finished head run, saved with each checkpoint so that a resume need not run it again.
/// `Ok(None)` when it ended before its first epoch (nothing trained).
pub(crate) async fn run_deep(
    job: &Job<'_>,
    mode: FinetuneMode,
    resume: Option<&[u8]>,
    auto_head: Option<&Trained>,
    host: &impl Host,
) -> Result<Option<DeepTrainer>, String> {
    let run = RunMode::of(mode);
    let labels = job.dataset.labels();
    let split = stratified_split(&labels, job.options.val_fraction, job.options.seed);
    let data = TrainData {
        images: job
            .dataset
            .classes
            .iter()
            .flat_map(|c| c.samples.iter().map(|s| s.pixels.clone()))
            .collect(),
        labels,
        num_classes: job.dataset.classes.len(),
        train: split.train,
        val: split.val,
    };
    let options = job.options.clone().with_mode(mode);
    let epochs = options.epochs;
    let transform = options.deep.augment.transform();
    let mut trainer = DeepTrainer::new(job.model, data, options, transform)?.with_parts(host.parts());
    if let Some(bytes) = resume {
        trainer = trainer.resume(bytes).map_err(|e| format!("cannot resume: {e}"))?;
        for metrics in trainer.history() {
            host.emit(TrainEvent::Epoch {
                run,
                metrics: metrics.clone(),
            });
        }
    }
    let checkpoints = host.wants_checkpoints();
    let total = trainer.total_steps();
    let started = host.now_seconds();
    // Steps of the epochs done before a resume: the speed and time left count only this session's.
    let resumed = trainer.history().len() * trainer.steps_per_epoch();
    let (mut steps, mut images) = (resumed, 0);
    host.emit(TrainEvent::Progress(
        Progress::new(Stage::FineTuning, resumed, total, 0.0).deep(run, trainer.history().len() + 1, epochs, 0, 0.0),
    ));
    host.pause().await;
    let helpers = host.helpers();
    loop {
        if host.stop_requested() {
            trainer.request_stop();
        }
        if trainer.is_done() {
            break;
        }
        let report = trainer.step_with(&helpers).await?;
        if report.phase == Phase::Done {
            break;
        }
        images += report.images;
        let stage = if report.phase == Phase::Caching {
            Stage::Caching
        } else {
            Stage::FineTuning
        };
        if report.phase == Phase::Training {
            steps += 1;
        }
        if let Some(metrics) = report.epoch_metrics {
            host.emit(TrainEvent::Epoch { run, metrics });
            // A failed checkpoint only costs the chance to resume; the run goes on.
            if checkpoints
                && !trainer.is_done()
                && let Ok(bytes) = trainer.checkpoint().await
                && let Ok(bytes) = AutoCheckpoint::wrap(auto_head, bytes)
            {
                host.checkpoint(trainer.history().len(), bytes);
            }
        }
        let elapsed = host.now_seconds() - started;
        let progress = if stage == Stage::Caching {
            Progress::new(stage, report.step, report.steps, elapsed)
        } else {
            let mut p = Progress::new(stage, steps - resumed, total - resumed, elapsed);
            (p.done, p.total) = (steps, total);
            p
        };
        host.emit(TrainEvent::Progress(progress.deep(
            run,
            report.epoch + 1,
            epochs,
            images,
            elapsed,
        )));
        host.pause().await;
    }
    Ok((!trainer.history().is_empty()).then_some(trainer))
}

/// The kept epoch's head and backbone changes, and its report: the network is evaluated on the validation
/// images (the training images without a validation split) a batch at a time. `embedding`: the time Auto's
/// head run spent embedding (default otherwise); the rest since `started` is training.
pub(crate) async fn finish_deep(
    job: &Job<'_>,
    trainer: &DeepTrainer,
    host: &impl Host,
    embedding: Timings,
    started: f64,
) -> Result<Trained, String> {
    let run = RunMode::of(trainer.mode());
    let labels = job.dataset.labels();
    let split = stratified_split(&labels, job.options.val_fraction, job.options.seed);
    let ids = if split.val.is_empty() { &split.train } else { &split.val };
    let pixels: Vec<&[u8]> = job
        .dataset
        .classes
        .iter()
        .flat_map(|c| c.samples.iter().map(|s| s.pixels.as_slice()))
        .collect();
    let model = trainer.best_model();
    let head = trainer.best_head().await?;
    let mut features = Vec::new();
    let eval_started = host.now_seconds();
    for (n, chunk) in ids.chunks(job.batch_size.max(1)).enumerate() {
        let batch: Vec<&[u8]> = chunk.iter().map(|&i| pixels[i]).collect();
        features.extend(embed_batch(&model, &batch, job.device).await?);
        let done = (n * job.batch_size.max(1) + chunk.len()).min(ids.len());
        let elapsed = host.now_seconds() - eval_started;
        host.emit(TrainEvent::Progress(
            Progress::new(Stage::Evaluating, done, ids.len(), elapsed).deep(
                run,
                trainer.history().len(),
                trainer.options().epochs,
                done,
                elapsed,
            ),
        ));
        host.pause().await;
    }
    let eval_labels: Vec<usize> = ids.iter().map(|&i| labels[i]).collect();
    let idx: Vec<usize> = (0..ids.len()).collect();
    let (val_loss, val_accuracy, confusion) = evaluate(&head, &features, &eval_labels, &idx);
    let all_keys = job.dataset.keys();
    let keys: Vec<u64> = ids.iter().map(|&i| all_keys[i]).collect();
    let predictions = image_predictions(
        &head.forward(&features, ids.len()),
        head.num_classes(),
        &eval_labels,
        &keys,
    );
    let best = trainer
        .best_metrics()
        .cloned()
        .ok_or("the fine-tuned run has no epoch to keep")?;
    let history = trainer.history().to_vec();
    let seconds = host.now_seconds() - started;
    Ok(Trained {
        head,
        delta: trainer.best_delta().await?,
        report: TrainingReport {
            labels: job.dataset.class_names(),
            options: job.options.clone(),
            runs: vec![RunHistory {
                mode: run,
                history: history.clone(),
                stop_reason: trainer.stop_reason().to_string(),
            }],
            history,
            best,
            val_loss,
            val_accuracy,
            per_class_accuracy: confusion.per_class_accuracy(),
            confusion,
            stop_reason: trainer.stop_reason().to_string(),
            num_train: split.train.len(),
            num_val: split.val.len(),
            timings: Timings {
                train_seconds: seconds - embedding.embed_seconds,
                train_threads: trainer.threads(),
                ..embedding
            },
            mode: run,
            explanation: None,
            predictions,
        },
    })
}
