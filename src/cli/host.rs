//! The training job's host in a terminal: a progress bar per stage, a line per epoch, the run's outcome, Ctrl-C as
//! the page's Stop, and the deeper runs' checkpoints written after every epoch for `--resume`.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ajuste::finetune::ActivationCache;
use ajuste::finetune::shard::{DeviceHelpers, Helpers};
use ajuste::model::EfficientNetLite0;
use ajuste::options::TrainOptions;
use ajuste::train::job::Host;
use ajuste::train::{Stage, TrainEvent, Trained};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};

use super::disk::DiskImages;

pub struct CliHost {
    start: Instant,
    bar: ProgressBar,
    stage: Cell<Option<Stage>>,
    /// Whether the run under way counts rounds, not epochs (a deeper run on a large set).
    rounds: Cell<bool>,
    outcome: RefCell<Option<Result<Trained, String>>>,
    stop: Arc<AtomicBool>,
    /// Where a deeper run's checkpoint goes after each epoch (none: not written).
    checkpoint: Option<PathBuf>,
    /// Where the images kept out of memory are read from (`Host::load_pixels`).
    images: DiskImages,
    /// The other devices' threads (`--devices`), sharing every batch.
    helpers: Option<DeviceHelpers>,
    /// Parts every deeper batch is computed in (`DeepTrainer::with_parts`).
    parts: usize,
    /// The file a deeper run maps its cut activations into, and its most bytes (none: in memory).
    activations: Option<(PathBuf, usize)>,
    /// Each stage as it ran: when it began and ended (seconds), and how much it did.
    timings: RefCell<Vec<Timing>>,
}

struct Timing {
    stage: Stage,
    began: f64,
    ended: f64,
    done: usize,
}

impl CliHost {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} ({eta} left)")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self {
            start: Instant::now(),
            bar,
            stage: Cell::new(None),
            rounds: Cell::new(false),
            outcome: RefCell::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            checkpoint: None,
            images: DiskImages::default(),
            helpers: None,
            parts: 1,
            timings: RefCell::new(Vec::new()),
            activations: None,
        }
    }

    /// Ctrl-C asks the job to stop after its current step (the best epoch so far is kept, as the page's Stop
    /// does); a second Ctrl-C quits at once.
    pub fn stop_on_ctrl_c(self) -> Result<Self, String> {
        let stop = self.stop.clone();
        let bar = self.bar.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                bar.abandon();
                std::process::exit(130);
            }
            say(
                &bar,
                "Stopping after this step and keeping the best epoch so far (Ctrl-C again quits at once)…",
            );
        })
        .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
        Ok(self)
    }

    /// Writes a deeper run's checkpoint to `path` after every epoch but the last.
    pub fn checkpoints_to(mut self, path: &Path) -> Self {
        self.checkpoint = Some(path.to_path_buf());
        self
    }

    /// Keeps a deeper run's cut activations in a file mapped at `path`, up to `bytes` (0: in memory, within the
    /// options' `cache_bytes`, as the page does).
    pub fn activations_in(mut self, path: &Path, bytes: usize) -> Self {
        self.activations = (bytes > 0).then(|| (path.to_path_buf(), bytes));
        self
    }

    /// Reads the dataset's images kept on disk from `images`.
    pub fn with_images(mut self, images: DiskImages) -> Self {
        self.images = images;
        self
    }

    /// Shares every batch with `helpers` (the devices after the first), each deeper batch computed in `parts`.
    pub fn with_helpers(mut self, helpers: DeviceHelpers, parts: usize) -> Self {
        self.helpers = (!helpers.is_empty()).then_some(helpers);
        self.parts = parts.max(1);
        self
    }

    /// How long each stage took and how fast it went, a line each (the figures the benchmarks quote).
    pub fn timings(&self) -> Vec<String> {
        self.timings
            .borrow()
            .iter()
            .filter(|t| t.done > 0)
            .map(|t| {
                let seconds = t.ended - t.began;
                let rate = if seconds > 0.0 { t.done as f64 / seconds } else { 0.0 };
                let unit = unit(t.stage);
                format!(
                    "{}: {} {unit} in {seconds:.1} s ({rate:.1} {unit}/s)",
                    stage_name(t.stage),
                    t.done
                )
            })
            .collect()
    }

    /// Whether Ctrl-C stopped the job.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The trained model, or why there is none.
    pub fn finished(self) -> Result<Trained, String> {
        self.outcome
            .into_inner()
            .unwrap_or_else(|| Err("the training ended without a result".into()))
    }
}

/// A line above the bar. Without a terminal (a log, CI) the bar is hidden and prints nothing: the line goes to
/// stderr.
fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// What a stage's progress counts.
fn unit(stage: Stage) -> &'static str {
    match stage {
        Stage::Training => "epochs",
        Stage::FineTuning => "steps",
        Stage::Caching => "batches",
        Stage::Embedding | Stage::Evaluating => "images",
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Embedding => "Features (frozen backbone)",
        Stage::Training => "Training the head (epochs)",
        Stage::Caching => "Preparing the deeper run",
        Stage::FineTuning => "Fine-tuning (steps)",
        Stage::Evaluating => "Evaluating the kept model",
    }
}

impl Host for CliHost {
    fn now_seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    async fn pause(&self) {}

    async fn load_pixels(&self, keys: &[u64]) -> Result<Vec<Vec<u8>>, String> {
        self.images.read(keys).await
    }

    fn stop_requested(&self) -> bool {
        self.stopped()
    }

    async fn embed(&self, model: &EfficientNetLite0, images: &[&[u8]], device: &Device) -> Result<Vec<f32>, String> {
        match &self.helpers {
            Some(helpers) => helpers.embed(model, images, device).await,
            None => ajuste::model::embed::embed_batch(model, images, device).await,
        }
    }

    fn embed_threads(&self) -> usize {
        1 + self.helpers.as_ref().map_or(0, DeviceHelpers::len)
    }

    fn helpers(&self) -> impl Helpers + '_ {
        self.helpers.as_ref()
    }

    fn parts(&self) -> usize {
        self.parts
    }

    fn activation_cache(&self, cut: usize, options: &TrainOptions) -> ActivationCache {
        let (cache, place) = match &self.activations {
            Some((path, bytes)) => (
                ActivationCache::in_file(cut, *bytes, path),
                format!(
                    "memory-mapped in {}, up to {:.1} GB",
                    path.display(),
                    *bytes as f64 / 1e9
                ),
            ),
            None => (
                ActivationCache::new(cut, options.deep.cache_bytes),
                format!("kept in memory, up to {} MB", options.deep.cache_bytes >> 20),
            ),
        };
        say(&self.bar, &format!("Activations of the frozen layers: {place}"));
        cache
    }

    fn wants_checkpoints(&self) -> bool {
        self.checkpoint.is_some()
    }

    fn checkpoint(&self, epochs_done: usize, bytes: Vec<u8>) {
        let Some(path) = &self.checkpoint else { return };
        // Written beside and renamed, so a kill mid-write leaves the previous checkpoint whole.
        let partial = path.with_extension("partial");
        let written = std::fs::write(&partial, &bytes).and_then(|()| std::fs::rename(&partial, path));
        if let Err(e) = written {
            let path = path.display();
            say(
                &self.bar,
                &format!("warning: the checkpoint after epoch {epochs_done} cannot be written to {path}: {e}"),
            );
        }
    }

    fn emit(&self, event: TrainEvent) {
        match event {
            TrainEvent::Progress(p) => {
                self.rounds.set(p.rounds);
                let now = self.now_seconds();
                let mut timings = self.timings.borrow_mut();
                match timings.last_mut() {
                    Some(t) if t.stage == p.stage => (t.ended, t.done) = (now, p.done),
                    _ => timings.push(Timing {
                        stage: p.stage,
                        began: now,
                        ended: now,
                        done: 0,
                    }),
                }
                drop(timings);
                if self.stage.get() != Some(p.stage) {
                    self.stage.set(Some(p.stage));
                    self.bar.reset();
                    self.bar.set_message(stage_name(p.stage));
                }
                self.bar.set_length(p.total as u64);
                self.bar.set_position(p.done as u64);
            }
            TrainEvent::Epoch { run, metrics } => {
                let line = format!(
                    "{} {} {}: training loss {:.4}, validation loss {:.4}, validation accuracy {:.1} %",
                    run.label(),
                    if self.rounds.get() { "round" } else { "epoch" },
                    metrics.epoch + 1,
                    metrics.train_loss,
                    metrics.val_loss,
                    metrics.val_accuracy * 100.0
                );
                say(&self.bar, &line);
            }
            TrainEvent::Finished(trained) => {
                self.bar.finish_and_clear();
                *self.outcome.borrow_mut() = Some(Ok(*trained));
            }
            TrainEvent::Stopped { .. } => {
                self.bar.finish_and_clear();
                *self.outcome.borrow_mut() = Some(Err("stopped before anything was trained".into()));
            }
            TrainEvent::Failed(why) => {
                self.bar.finish_and_clear();
                *self.outcome.borrow_mut() = Some(Err(why));
            }
        }
    }
}
