//! The training job's host in a terminal: a progress bar per stage, a line per epoch, and the run's outcome.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use ajuste::train::job::Host;
use ajuste::train::{Stage, TrainEvent, Trained};
use indicatif::{ProgressBar, ProgressStyle};

pub struct CliHost {
    start: Instant,
    bar: ProgressBar,
    stage: Cell<Option<Stage>>,
    outcome: RefCell<Option<Result<Trained, String>>>,
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
            outcome: RefCell::new(None),
        }
    }

    /// The trained model, or why there is none.
    pub fn finished(self) -> Result<Trained, String> {
        self.outcome
            .into_inner()
            .unwrap_or_else(|| Err("the training ended without a result".into()))
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

    fn stop_requested(&self) -> bool {
        false
    }

    fn emit(&self, event: TrainEvent) {
        match event {
            TrainEvent::Progress(p) => {
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
                    "{} epoch {}: training loss {:.4}, validation loss {:.4}, validation accuracy {:.1} %",
                    run.label(),
                    metrics.epoch + 1,
                    metrics.train_loss,
                    metrics.val_loss,
                    metrics.val_accuracy * 100.0
                );
                // Without a terminal (a log, CI) the bar is hidden and prints nothing: the line goes to stderr.
                if self.bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    self.bar.println(line);
                }
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
