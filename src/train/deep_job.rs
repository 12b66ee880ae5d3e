//! The deeper part of a job: a [`DeepTrainer`] stepped one mini-batch at a time with events between steps, and
//! the kept epoch's network evaluated on the validation images for the report.

use super::budget::{Budget, duration};
use super::checkpoint::AutoCheckpoint;
use super::job::{Host, Job};
use super::mode::thousands;
use super::mode::{DeepSummary, RunHistory, RunMode};
use super::pipeline::{Progress, Stage, Timings, TrainEvent, Trained, TrainingReport};
use crate::data::split::stratified_split;
use crate::data::{Sample, pixel_key};
use crate::finetune::{DeepTrainer, Phase, TrainData};
use crate::head::metrics::{evaluate, image_predictions};
use crate::options::FinetuneMode;
use futures_util::future::join;

/// A finished deeper run: the trainer with its kept round, and the run's wall-clock seconds.
pub(crate) struct DeepRun {
    pub trainer: DeepTrainer,
    pub seconds: f64,
    /// Whether the time budget ended the run or cut its rounds.
    pub budget_reached: bool,
}

impl DeepRun {
    /// The run's history with its steps, time and budget, as the report and charts show it.
    pub fn history(&self) -> RunHistory {
        let t = &self.trainer;
        let budget_seconds = t.options().deep.budget_seconds;
        let stop_reason = t.stop_reason().to_string();
        let (validated, validation_images) = t.validation_images();
        RunHistory {
            mode: RunMode::of(t.mode()),
            history: t.history().to_vec(),
            deep: Some(DeepSummary {
                steps: t.steps_done(),
                best_step: t.best_metrics().map_or(0, |b| t.steps_at_round(b.epoch)),
                seconds: self.seconds,
                budget_seconds,
                budget_reached: self.budget_reached,
                round_images: if t.rounds_per_pass() > 1 { t.round_images() } else { 0 },
                validated,
                validation_images,
            }),
            stop_reason,
        }
    }
}

/// Runs `mode` to its end (all rounds, early stop, the time budget, or a stop request), from the checkpoint
/// `resume` when given. `auto_head`: Auto's finished head run, saved with each checkpoint so that a resume need
/// not run it again. `Ok(None)` when it ended before its first round (nothing trained).
pub(crate) async fn run_deep(
    job: &Job<'_>,
    mode: FinetuneMode,
    resume: Option<&[u8]>,
    auto_head: Option<&Trained>,
    host: &impl Host,
) -> Result<Option<DeepRun>, String> {
    let run = RunMode::of(mode);
    let labels = job.dataset.labels();
    let split = stratified_split(&labels, job.options.val_fraction, job.options.seed);
    // Images kept out of memory stay there: the loop below reads each step's in (`DeepTrainer::wanted`).
    let data = TrainData {
        images: job
            .dataset
            .classes
            .iter()
            .flat_map(|c| c.samples.iter().map(|s| s.pixels.clone()))
            .collect(),
        keys: job.dataset.keys(),
        labels,
        num_classes: job.dataset.classes.len(),
        train: split.train,
        val: split.val,
    };
    let samples: Vec<&Sample> = job.dataset.classes.iter().flat_map(|c| &c.samples).collect();
    let options = job.options.clone().with_mode(mode);
    let transform = options.deep.augment.transform();
    let cache = host.activation_cache(mode.cut(), &options);
    let mut trainer = DeepTrainer::with_cache(job.model, data, options, transform, cache)?.with_parts(host.parts());
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
    let mut budget = Budget::new(host.now_seconds(), trainer.options().deep.budget_seconds);
    // Steps of the rounds done before a resume: the speed and time left count only this session's.
    let resumed = trainer.steps_through(trainer.history().len());
    let (mut steps, mut images) = (resumed, 0);
    let started = host.now_seconds();
    host.emit(TrainEvent::Progress(tagged(
        Progress::new(Stage::FineTuning, resumed, trainer.total_steps(), 0.0),
        &trainer,
        trainer.history().len() + 1,
        0,
        0.0,
    )));
    host.pause().await;
    let helpers = host.helpers();
    // When this round's validation began; the caching's seconds and images (the frozen prefix's pace).
    let (mut validating_since, mut caching) = (None, (0.0, 0));
    let mut budget_reached = false;
    loop {
        if host.stop_requested() {
            trainer.request_stop();
        }
        budget_reached |= keep_within(&mut trainer, &budget, host.now_seconds());
        if trainer.is_done() {
            break;
        }
        let now = trainer.wanted(0);
        let pixels = read_in(host, &samples, &now).await?;
        trainer.supply(&now, pixels)?;
        if trainer.is_training() {
            budget.training(host.now_seconds(), trainer.history().len());
        }
        if trainer.is_validating() {
            validating_since.get_or_insert(host.now_seconds());
        }
        // The step after this one reads its images in while this one computes.
        let soon = trainer.wanted(1);
        let step_started = host.now_seconds();
        let (report, pixels) = join(trainer.step_with(&helpers), read_in(host, &samples, &soon)).await;
        let report = report?;
        if report.phase == Phase::Caching {
            caching.0 += host.now_seconds() - step_started;
            caching.1 += report.images;
        }
        trainer.supply(&soon, pixels?)?;
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
            budget.stepped(host.now_seconds(), steps);
        }
        if let Some(metrics) = report.epoch_metrics {
            host.emit(TrainEvent::Epoch { run, metrics });
            if let Some(since) = validating_since.take() {
                budget.reserve(final_evaluation(&trainer, host.now_seconds() - since, caching));
            }
            budget_reached |= plan(&mut trainer, &budget, host.now_seconds());
            // A failed checkpoint only costs the chance to resume; the run goes on.
            if checkpoints
                && !trainer.is_done()
                && let Ok(bytes) = trainer.checkpoint().await
                && let Ok(bytes) = AutoCheckpoint::wrap(auto_head, bytes)
            {
                host.checkpoint(trainer.history().len(), bytes);
            }
        }
        let now = host.now_seconds();
        let elapsed = now - started;
        let total = trainer.total_steps();
        let progress = if stage == Stage::Caching {
            Progress::new(stage, report.step, report.steps, elapsed)
        } else {
            let mut p = Progress::new(stage, steps - resumed, total.saturating_sub(resumed), elapsed);
            (p.done, p.total) = (steps, total);
            p.seconds_left = budget.seconds_left(now, steps, total);
            p
        };
        host.emit(TrainEvent::Progress(tagged(
            progress,
            &trainer,
            report.epoch + 1,
            images,
            elapsed,
        )));
        host.pause().await;
    }
    let seconds = host.now_seconds() - started;
    Ok((!trainer.history().is_empty()).then_some(DeepRun {
        trainer,
        seconds,
        budget_reached,
    }))
}

/// The kept epoch's head and backbone changes, and its report: the network is evaluated on the validation
/// images (the training images without a validation split) a batch at a time. `embedding`: the time Auto's
/// head run spent embedding (default otherwise); the rest since `started` is training.
pub(crate) async fn finish_deep(
    job: &Job<'_>,
    deep: &mut DeepRun,
    host: &impl Host,
    embedding: Timings,
    started: f64,
) -> Result<Trained, String> {
    let run = RunMode::of(deep.trainer.mode());
    let labels = job.dataset.labels();
    let split = stratified_split(&labels, job.options.val_fraction, job.options.seed);
    let ids = if split.val.is_empty() { &split.train } else { &split.val };
    let samples: Vec<&Sample> = job.dataset.classes.iter().flat_map(|c| &c.samples).collect();
    let head = deep.trainer.best_head().await?;
    let mut features = Vec::new();
    let eval_started = host.now_seconds();
    let trainer = &mut deep.trainer;
    for (n, chunk) in ids.chunks(job.batch_size.max(1)).enumerate() {
        let wants = trainer.kept_wants(chunk);
        let pixels = read_in(host, &samples, &wants).await?;
        trainer.supply(&wants, pixels)?;
        features.extend(trainer.kept_features(chunk).await?);
        trainer.forget_read_in();
        let done = (n * job.batch_size.max(1) + chunk.len()).min(ids.len());
        let elapsed = host.now_seconds() - eval_started;
        host.emit(TrainEvent::Progress(tagged(
            Progress::new(Stage::Evaluating, done, ids.len(), elapsed),
            trainer,
            trainer.history().len(),
            done,
            elapsed,
        )));
        host.pause().await;
    }
    let trainer = &deep.trainer;
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
            runs: vec![deep.history()],
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
            none_threshold: None,
        },
    })
}

/// `progress` tagged with the deeper run: its round and rounds, image rate, and budget.
fn tagged(progress: Progress, trainer: &DeepTrainer, round: usize, images: usize, elapsed: f64) -> Progress {
    let run = RunMode::of(trainer.mode());
    let mut p = progress.deep(run, round, trainer.planned_rounds(), images, elapsed);
    p.rounds = trainer.rounds_per_pass() > 1;
    p.budget_seconds = trainer.options().deep.budget_seconds;
    p
}

/// Before a step: past the budget, the run stops with its best round; before its first round ends, that round
/// ends after its next step so that there is one to keep. Caching takes at most a third of the budget. Returns
/// whether the budget ended the run.
fn keep_within(trainer: &mut DeepTrainer, budget: &Budget, now: f64) -> bool {
    if trainer.is_done() {
        return false;
    }
    if trainer.is_caching() && budget.spent_share(now, CACHING_SHARE) {
        trainer.end_caching();
    }
    if !budget.spent(now) {
        return false;
    }
    if trainer.history().is_empty() {
        trainer.end_round();
        false
    } else {
        stop_at_budget(trainer, budget);
        true
    }
}

/// Ends the run at the time budget, its best round kept, saying so.
fn stop_at_budget(trainer: &mut DeepTrainer, budget: &Budget) {
    trainer.stop_for(format!(
        "stopped at the {} time budget after {} steps",
        duration(budget.limit().unwrap_or(0.0)),
        thousands(trainer.steps_done())
    ));
}

/// Seconds the final evaluation of the kept model will take: the validation images checked each round at the
/// pace of the last validation (`seconds`), the others also through the frozen prefix at the caching's pace.
fn final_evaluation(trainer: &DeepTrainer, seconds: f64, (cache_seconds, cached): (f64, usize)) -> f64 {
    let (checked, all) = trainer.validation_images();
    let per_image = seconds / checked.max(1) as f64;
    let prefix = if cached > 0 { cache_seconds / cached as f64 } else { 0.0 };
    per_image * all as f64 + prefix * all.saturating_sub(checked) as f64
}

/// Share of the time budget the activation cache may take to fill.
const CACHING_SHARE: f64 = 1.0 / 3.0;

/// After a round: stops the run when the time budget holds no other round at the measured pace. On a large set
/// (several rounds a pass) it also cuts the run, and its schedule, to the rounds the budget holds, so that the
/// learning rate decays within it; a small set keeps its schedule, so that a run ending within the budget trains
/// the same model as without one. Returns whether the budget ended or cut the run.
fn plan(trainer: &mut DeepTrainer, budget: &Budget, now: f64) -> bool {
    let done = trainer.history().len();
    let Some(fit) = budget.rounds_that_fit(now, done) else {
        return false;
    };
    if fit <= done && !trainer.is_done() {
        stop_at_budget(trainer, budget);
        true
    } else if fit < trainer.planned_rounds() && trainer.rounds_per_pass() > 1 {
        let limit = duration(budget.limit().unwrap_or(0.0));
        trainer.plan_rounds(fit, format!("completed the {fit} rounds the {limit} time budget holds"));
        true
    } else {
        false
    }
}

/// The pixels of images `ids` kept out of memory, read back through the host, each checked against its key.
async fn read_in(host: &impl Host, samples: &[&Sample], ids: &[usize]) -> Result<Vec<Vec<u8>>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<u64> = ids.iter().map(|&i| samples[i].key()).collect();
    let pixels = host
        .load_pixels(&keys)
        .await
        .map_err(|e| format!("could not read the images back: {e}"))?;
    if pixels.len() != ids.len() {
        return Err(format!("{} images read back, not {}", pixels.len(), ids.len()));
    }
    if let Some((&i, _)) = ids
        .iter()
        .zip(&pixels)
        .find(|(i, p)| pixel_key(p) != samples[**i].key())
    {
        return Err(format!(
            "the image read back for “{}” is not the one stored",
            samples[i].name
        ));
    }
    Ok(pixels)
}
