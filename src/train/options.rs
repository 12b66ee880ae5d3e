//! Training options, with the defaults a user gets.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    /// Share of each class held out for validation (stratified, seeded).
    pub val_fraction: f32,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub weight_decay: f32,
    /// false: Adam with L2 added to the gradient (PyTorch `Adam(weight_decay=…)`, the reference);
    /// true: AdamW's decoupled weight decay.
    pub decoupled_weight_decay: bool,
    pub label_smoothing: f32,
    /// 0: a linear head; otherwise a hidden layer of this width with ReLU and dropout.
    pub hidden_units: usize,
    /// Dropout after the hidden layer (ignored without one).
    pub dropout: f32,
    /// Early stopping: epochs without a lower validation loss before stopping (0: never stop early).
    pub patience: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            val_fraction: 0.2,
            epochs: 50,
            batch_size: 32,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            decoupled_weight_decay: false,
            label_smoothing: 0.0,
            hidden_units: 0,
            dropout: 0.2,
            patience: 10,
            seed: 0,
        }
    }
}

impl TrainOptions {
    /// The epochs a user may ask for (the form's help and the error both say this range).
    pub const EPOCHS: std::ops::RangeInclusive<usize> = 1..=10_000;

    /// Every out-of-range option, as messages a user can act on.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(0.0..=0.9).contains(&self.val_fraction) {
            problems.push(format!(
                "validation fraction must be between 0 and 0.9 (got {})",
                self.val_fraction
            ));
        }
        if !Self::EPOCHS.contains(&self.epochs) {
            problems.push(format!(
                "epochs must be between {} and {} (got {})",
                Self::EPOCHS.start(),
                Self::EPOCHS.end(),
                self.epochs
            ));
        }
        if !(1..=65_536).contains(&self.batch_size) {
            problems.push(format!(
                "batch size must be between 1 and 65536 (got {})",
                self.batch_size
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            problems.push(format!(
                "learning rate must be above 0 and at most 10 (got {})",
                self.learning_rate
            ));
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            problems.push(format!(
                "weight decay must be between 0 and 1 (got {})",
                self.weight_decay
            ));
        }
        if !(0.0..=0.5).contains(&self.label_smoothing) {
            problems.push(format!(
                "label smoothing must be between 0 and 0.5 (got {})",
                self.label_smoothing
            ));
        }
        if self.hidden_units > 4096 {
            problems.push(format!("hidden units must be at most 4096 (got {})", self.hidden_units));
        }
        if !(0.0..0.95).contains(&self.dropout) {
            problems.push(format!(
                "dropout must be at least 0 and below 0.95 (got {})",
                self.dropout
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
