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
}

impl RunHistory {
    /// The epoch with the lowest validation loss.
    pub fn best(&self) -> Option<&EpochMetrics> {
        self.history.iter().min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
    }
}
