//! What both trainers (the head on features, the deeper modes with autodiff) keep across epochs: the
//! history, the best epoch (lowest validation loss) with a snapshot of what was trained then, and why the run
//! ended: all epochs done, early stopping, or the user's stop.

use super::metrics::EpochMetrics;

pub struct EpochLog<T> {
    epochs: usize,
    /// Epochs without a lower validation loss before stopping (0: never stop early).
    patience: usize,
    history: Vec<EpochMetrics>,
    best: Option<(T, EpochMetrics)>,
    stop_reason: Option<String>,
}

impl<T> EpochLog<T> {
    pub fn new(epochs: usize, patience: usize) -> Self {
        Self {
            epochs,
            patience,
            history: Vec::new(),
            best: None,
            stop_reason: None,
        }
    }

    /// A log that continues from `history`, `best` and a stop reason saved earlier (a checkpoint).
    pub fn restored(
        epochs: usize,
        patience: usize,
        history: Vec<EpochMetrics>,
        best: Option<(T, EpochMetrics)>,
        stop_reason: Option<String>,
    ) -> Self {
        Self {
            epochs,
            patience,
            history,
            best,
            stop_reason,
        }
    }

    /// Why the run ended, `None` while it runs.
    pub fn stop_reason_if_done(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Index of the next epoch to record.
    pub fn next_epoch(&self) -> usize {
        self.history.len()
    }

    pub fn best(&self) -> Option<&(T, EpochMetrics)> {
        self.best.as_ref()
    }

    pub fn is_done(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// Why training ended ("" while it runs).
    pub fn stop_reason(&self) -> &str {
        self.stop_reason.as_deref().unwrap_or("")
    }

    /// The user pressed Stop: the best epoch so far is kept.
    pub fn request_stop(&mut self) {
        if self.stop_reason.is_none() {
            self.stop_reason = Some(format!("stopped by you after {} epochs", self.history.len()));
        }
    }

    /// Records an epoch; `snapshot` runs only when its validation loss is the lowest so far. Then decides
    /// whether the run is over.
    pub fn record(&mut self, metrics: EpochMetrics, snapshot: impl FnOnce() -> T) {
        let epoch = metrics.epoch;
        if self.best.as_ref().is_none_or(|(_, b)| metrics.val_loss < b.val_loss) {
            self.best = Some((snapshot(), metrics.clone()));
        }
        self.history.push(metrics);
        let best_epoch = self.best.as_ref().map_or(0, |(_, b)| b.epoch);
        if epoch + 1 >= self.epochs {
            self.stop_reason = Some(format!("completed {} epochs", self.epochs));
        } else if self.patience > 0 && epoch - best_epoch >= self.patience {
            self.stop_reason = Some(format!(
                "stopped early after {} epochs: no lower validation loss for {} epochs",
                epoch + 1,
                self.patience
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, val_loss: f32) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            val_loss,
            val_accuracy: 0.0,
        }
    }

    #[test]
    fn keeps_the_lowest_validation_loss_and_stops_early() {
        let mut log = EpochLog::new(10, 2);
        for (i, loss) in [1.0, 0.5, 0.7, 0.6].into_iter().enumerate() {
            log.record(epoch(i, loss), || i);
        }
        assert_eq!(log.best().map(|(snap, m)| (*snap, m.epoch)), Some((1, 1)));
        assert!(log.is_done());
        assert_eq!(
            log.stop_reason(),
            "stopped early after 4 epochs: no lower validation loss for 2 epochs"
        );
    }

    #[test]
    fn completes_its_epochs_or_stops_when_asked() {
        let mut log = EpochLog::new(2, 0);
        log.record(epoch(0, 1.0), || ());
        assert!(!log.is_done());
        log.request_stop();
        assert_eq!(log.stop_reason(), "stopped by you after 1 epochs");
        let mut log = EpochLog::new(2, 0);
        log.record(epoch(0, 1.0), || ());
        log.record(epoch(1, 2.0), || ());
        assert_eq!(log.stop_reason(), "completed 2 epochs");
    }
}
