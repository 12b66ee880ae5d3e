//! What a run reports while it goes ([`TrainEvent`]): serde values, so the same events cross from the Web Worker
//! to the page as messages.

use serde::{Deserialize, Serialize};

use super::mode::RunMode;
use super::pipeline::Trained;
use crate::head::metrics::EpochMetrics;

/// Which part of a run is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Images through the frozen backbone (steps: images).
    Embedding,
    /// The head (steps: epochs).
    Training,
    /// Deeper modes: the frozen part of the backbone once per image, kept for the epochs (steps: batches).
    Caching,
    /// Deeper modes: mini-batches through the trainable part, then validation (steps: training batches).
    FineTuning,
    /// Deeper modes: the kept model on the validation images, for the per-class results (steps: images).
    Evaluating,
}

/// How far a stage got, with its speed and the time left at that speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
    /// Steps per second so far (images while embedding, epochs while training).
    pub per_second: f64,
    pub seconds_left: Option<f64>,
    /// The run this progress belongs to.
    #[serde(default)]
    pub run: RunMode,
    /// Deeper modes: the epoch under way (1-based) and the most epochs (0 otherwise).
    #[serde(default)]
    pub epoch: usize,
    #[serde(default)]
    pub epochs: usize,
    /// Deeper modes: images through the network per second (0 otherwise).
    #[serde(default)]
    pub images_per_second: f64,
    /// Deeper modes: whether `epoch` counts rounds (a large set validates several times a pass).
    #[serde(default)]
    pub rounds: bool,
    /// Deeper modes: the run's time budget in seconds (0: none); `seconds_left` never goes past it.
    #[serde(default)]
    pub budget_seconds: u32,
}

impl Progress {
    pub fn new(stage: Stage, done: usize, total: usize, elapsed_seconds: f64) -> Self {
        let per_second = if done == 0 || elapsed_seconds <= 0.0 {
            0.0
        } else {
            done as f64 / elapsed_seconds
        };
        Self {
            stage,
            done,
            total,
            per_second,
            // Set from a rate measured past the first step (`budget::Budget::seconds_left`): the first carries
            // the warm-up, and a rate counting it overstated the time left several times over.
            seconds_left: None,
            run: RunMode::Head,
            epoch: 0,
            epochs: 0,
            images_per_second: 0.0,
            rounds: false,
            budget_seconds: 0,
        }
    }

    /// Tags the progress with a deep run, its epoch and its image rate.
    pub fn deep(mut self, run: RunMode, epoch: usize, epochs: usize, images: usize, elapsed_seconds: f64) -> Self {
        self.run = run;
        self.epoch = epoch;
        self.epochs = epochs;
        if elapsed_seconds > 0.0 {
            self.images_per_second = images as f64 / elapsed_seconds;
        }
        self
    }
}

/// What a run reports, in order: progress and epoch metrics (tagged with their run: Auto makes two) while it
/// goes, then exactly one of `Finished`, `Stopped` (stopped before any epoch: nothing trained) or `Failed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TrainEvent {
    Progress(Progress),
    Epoch { run: RunMode, metrics: EpochMetrics },
    Finished(Box<Trained>),
    Stopped { stage: Stage, done: usize, total: usize },
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rate() {
        let p = Progress::new(Stage::Embedding, 10, 40, 5.0);
        assert_eq!(p.per_second, 2.0);
        assert_eq!(Progress::new(Stage::Training, 0, 5, 1.0).per_second, 0.0);
    }
}
