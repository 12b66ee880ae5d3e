//! The mode and history of each run a job makes (the mode a user picks is `crate::options::FinetuneChoice`).

use serde::{Deserialize, Serialize};

use crate::head::EpochMetrics;
use crate::options::FinetuneMode;

/// The mode of one run, and of the model a job keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunMode {
    #[default]
    Head,
    LastBlocks,
    Lora,
}

impl RunMode {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::LastBlocks => "last-blocks",
            Self::Lora => "lora",
        }
    }

    /// How the charts and the report name the run.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Head => "Head only",
            Self::LastBlocks => "Last blocks",
            Self::Lora => "LoRA",
        }
    }

    pub fn of(mode: FinetuneMode) -> Self {
        match mode {
            FinetuneMode::LastBlocks { .. } => Self::LastBlocks,
            FinetuneMode::Lora { .. } => Self::Lora,
        }
    }
}

/// One run of a job: its mode, every epoch, and why it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHistory {
    pub mode: RunMode,
    pub history: Vec<EpochMetrics>,
    pub stop_reason: String,
    /// A deeper run's steps, time and budget (none for the head, and in reports saved before them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep: Option<DeepSummary>,
}

/// What a deeper run did, in optimiser steps and wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepSummary {
    pub steps: usize,
    /// Steps done when the kept round ended.
    pub best_step: usize,
    pub seconds: f64,
    /// The time budget (0: none) and whether it ended the run (or cut its schedule).
    pub budget_seconds: u32,
    pub budget_reached: bool,
    /// Training images between validations (0: once an epoch).
    pub round_images: usize,
    /// Validation images checked after each round, of all.
    pub validated: usize,
    pub validation_images: usize,
}

impl DeepSummary {
    /// "1,200 steps in 9 min 40 s, best at step 900, stopped at the 10 min time budget; validated every 3,200
    /// images on 1,000 of 2,000 validation images".
    pub fn sentence(&self) -> String {
        let mut s = format!(
            "{} steps in {}, best at step {}",
            thousands(self.steps),
            super::budget::duration(self.seconds),
            thousands(self.best_step)
        );
        if self.budget_reached {
            s += &format!(
                ", cut to the {} time budget",
                super::budget::duration(self.budget_seconds as f64)
            );
        }
        if self.round_images > 0 {
            s += &format!("; validated every {} training images", thousands(self.round_images));
        }
        if self.validated < self.validation_images {
            s += &format!(
                "{} on a fixed {} of the {} validation images",
                if self.round_images > 0 { "" } else { "; validated" },
                thousands(self.validated),
                thousands(self.validation_images)
            );
        }
        s
    }
}

/// 1200 → "1,200".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl RunHistory {
    /// The epoch with the lowest validation loss.
    pub fn best(&self) -> Option<&EpochMetrics> {
        self.history.iter().min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
    }
}
