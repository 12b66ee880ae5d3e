//! What both trainers (the head on features, the deeper modes with autodiff) keep across epochs: the
//! history, the best epoch (lowest validation loss) with a snapshot of what was trained then, and why the run
//! ended: all epochs done, early stopping, or the user's stop.

use super::metrics::EpochMetrics;

/// How much lower a validation loss (mean cross-entropy) must be to reset early stopping's patience. Without it
/// a loss near zero keeps falling by tiny amounts and the run never stops early: LoRA on the bundled sample ran
/// all its epochs. The kept epoch is still the lowest loss, however small the gain.
pub const MIN_DELTA: f32 = 1e-3;

pub struct EpochLog<T> {
    epochs: usize,
    /// Epochs without a validation loss [`MIN_DELTA`] below the previous such epoch before stopping (0: never
    /// stop early).
    patience: usize,
    history: Vec<EpochMetrics>,
    best: Option<(T, EpochMetrics)>,
    stop_reason: Option<String>,
    /// What one entry of the history is called in the stop reasons: "epoch", or "round" where a deeper run on
    /// a large set validates several times a pass.
    unit: &'static str,
    /// Why the run ends at `epochs` when they were cut short (`limit`): the time budget.
    limit_reason: Option<String>,
}

impl<T> EpochLog<T> {
    pub fn new(epochs: usize, patience: usize) -> Self {
        Self {
            epochs,
            patience,
            history: Vec::new(),
            best: None,
            stop_reason: None,
            unit: "epoch",
            limit_reason: None,
        }
    }

    /// Calls the history's entries `unit`s in the stop reasons.
    pub fn counting(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    /// Ends the run after `epochs` in all (fewer than planned), saying `reason` then.
    pub fn limit(&mut self, epochs: usize, reason: String) {
        if epochs < self.epochs {
            self.epochs = epochs.max(self.history.len() + 1);
            self.limit_reason = Some(reason);
        }
    }

    /// The most epochs the run goes to.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// Ends the run now for `reason` (the time budget); the best epoch so far is kept.
    pub fn stop_with(&mut self, reason: String) {
        if self.stop_reason.is_none() {
            self.stop_reason = Some(reason);
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
            unit: "epoch",
            limit_reason: None,
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
            self.stop_reason = Some(format!("stopped by you after {} {}s", self.history.len(), self.unit));
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
        let unit = self.unit;
        if epoch + 1 >= self.epochs {
            self.stop_reason = Some(
                self.limit_reason
                    .clone()
                    .unwrap_or_else(|| format!("completed {} {unit}s", self.epochs)),
            );
        } else if self.patience > 0 && epoch - self.last_improvement() >= self.patience {
            self.stop_reason = Some(format!(
                "stopped early after {} {unit}s: validation loss not {MIN_DELTA} lower for {} {unit}s",
                epoch + 1,
                self.patience
            ));
        }
    }

    /// The last epoch whose validation loss was at least [`MIN_DELTA`] below that of the epoch counted before it
    /// (the first epoch counts). Derived from the history, so a restored log continues the same count.
    fn last_improvement(&self) -> usize {
        let mut counted: Option<&EpochMetrics> = None;
        for m in &self.history {
            if counted.is_none_or(|c| m.val_loss < c.val_loss - MIN_DELTA) {
                counted = Some(m);
            }
        }
        counted.map_or(0, |m| m.epoch)
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
            "stopped early after 4 epochs: validation loss not 0.001 lower for 2 epochs"
        );
    }

    /// Gains under `MIN_DELTA` do not reset the patience, but the lowest loss is still the epoch kept.
    #[test]
    fn tiny_gains_do_not_hold_off_early_stopping() {
        let losses = [0.1, 0.0996, 0.0993, 0.0992, 0.0991];
        let mut log = EpochLog::new(10, 3);
        for (i, loss) in losses.into_iter().enumerate() {
            log.record(epoch(i, loss), || i);
            assert_eq!(log.is_done(), i == 3, "epoch {i}");
            if log.is_done() {
                break;
            }
        }
        assert_eq!(log.best().map(|(snap, _)| *snap), Some(3));
        // A gain of more than MIN_DELTA counts, and is counted from the epoch that last counted.
        let mut log = EpochLog::new(10, 2);
        for (i, loss) in [0.1, 0.0995, 0.0985, 0.0984].into_iter().enumerate() {
            log.record(epoch(i, loss), || i);
        }
        assert!(!log.is_done(), "0.0985 is 0.0015 below epoch 0, so epoch 2 counts");
        log.record(epoch(4, 0.098), || 4);
        assert!(log.is_done());
        assert_eq!(log.best().map(|(snap, _)| *snap), Some(4));
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
