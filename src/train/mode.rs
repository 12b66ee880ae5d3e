//! The fine-tuning mode a user picks, the mode and history of each run a job makes, and the deep trainer's
//! options derived from the job's [`TrainOptions`].

use serde::{Deserialize, Serialize};

use super::metrics::EpochMetrics;
use super::options::TrainOptions;
use crate::finetune::AUTO_LORA;
use crate::finetune::{FinetuneMode, FinetuneOptions};

/// What the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FinetuneChoice {
    /// The new head alone, on cached embeddings (seconds).
    Head,
    /// The last `blocks` MBConv blocks and the head conv train, with the head.
    LastBlocks { blocks: usize },
    /// LoRA adapters of `rank` on the last `blocks` blocks and the head conv, with the head.
    Lora { blocks: usize, rank: usize, alpha: f32 },
    /// The head first, then LoRA r16 on the last 8 blocks; the lower validation loss is kept.
    #[default]
    Auto,
}

impl FinetuneChoice {
    /// The name the form, the export and the page's `data-mode` use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::LastBlocks { .. } => "last-blocks",
            Self::Lora { .. } => "lora",
            Self::Auto => "auto",
        }
    }

    /// The deep mode a single run trains (`None` for head only and Auto).
    pub fn deep_mode(&self) -> Option<FinetuneMode> {
        match *self {
            Self::LastBlocks { blocks } => Some(FinetuneMode::LastBlocks { blocks }),
            Self::Lora { blocks, rank, alpha } => Some(FinetuneMode::Lora { blocks, rank, alpha }),
            Self::Head | Self::Auto => None,
        }
    }
}

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

impl TrainOptions {
    /// The deep mode this job trains: the chosen one, Auto's LoRA, or none for head only.
    pub fn deep_mode(&self) -> Option<FinetuneMode> {
        match self.finetune {
            FinetuneChoice::Auto => Some(AUTO_LORA),
            choice => choice.deep_mode(),
        }
    }

    /// The deep trainer's options for `mode`: epochs, batch size, head learning rate, label smoothing,
    /// patience, seed and the augmentation bank's views are the job's; weight decay and warm-up keep the deep
    /// recipe's defaults.
    pub fn finetune_options(&self, mode: FinetuneMode) -> FinetuneOptions {
        FinetuneOptions {
            mode,
            epochs: self.epochs,
            batch_size: self.batch_size,
            head_lr: self.learning_rate,
            backbone_lr: self.backbone_learning_rate,
            label_smoothing: self.label_smoothing,
            patience: self.patience,
            seed: self.seed,
            augment_views: self.augment.views,
            ..FinetuneOptions::default()
        }
    }

    /// Problems with the fine-tuning part of the options (none for head only).
    pub(crate) fn validate_finetune(&self) -> Vec<String> {
        let Some(mode) = self.deep_mode() else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if let Err(e) = self.finetune_options(mode).validate() {
            problems.push(e);
        }
        if let Err(e) = self.augment.validate() {
            problems.push(e);
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_the_default_and_maps_to_lora_on_the_last_blocks() {
        let o = TrainOptions::default();
        assert_eq!(o.finetune, FinetuneChoice::Auto);
        assert_eq!(o.deep_mode(), Some(AUTO_LORA));
        let head = TrainOptions {
            finetune: FinetuneChoice::Head,
            ..o.clone()
        };
        assert_eq!(head.deep_mode(), None);
        let bad = TrainOptions {
            finetune: FinetuneChoice::Lora {
                blocks: 20,
                rank: 0,
                alpha: 1.0,
            },
            ..o
        };
        let message = bad.validate().unwrap_err();
        assert!(message.contains("blocks") && message.contains("rank"), "{message}");
        let json = serde_json::to_string(&FinetuneChoice::LastBlocks { blocks: 3 }).unwrap();
        assert_eq!(json, r#"{"kind":"last-blocks","blocks":3}"#);
    }
}
