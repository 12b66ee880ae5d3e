//! What a deeper fine-tune did, recorded in `config.json` under `"finetune"`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::finetune::{FinetuneMode, FinetuneOptions};
use crate::train::{AugmentOptions, RunMode, TrainingReport};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneRecord {
    /// Mode of the exported model: `head`, `last-blocks` or `lora`.
    pub mode: String,
    /// What the user asked for: the same, or `auto`.
    pub requested: String,
    /// Trainable blocks at the end of the backbone (0 for head only); the head conv trains with them.
    pub blocks: usize,
    pub lora_rank: Option<usize>,
    pub lora_alpha: Option<f32>,
    pub head_lr: f32,
    /// Learning rate of the backbone weights or adapters (`None` for head only).
    pub backbone_lr: Option<f32>,
    /// `None` when training ran without augmentation.
    pub augmentation: Option<AugmentOptions>,
    /// Every run tried (Auto tries head only, then LoRA), as the trainer reports it: free-form so runs can
    /// carry their own metrics and histories.
    pub runs: Vec<serde_json::Value>,
    /// Why the exported model was chosen (Auto), in words.
    pub reason: Option<String>,
}

impl FinetuneRecord {
    /// The record of a deep run with `options` (mode, blocks, rank, α and learning rates taken from them).
    pub fn from_options(
        options: &FinetuneOptions,
        requested: &str,
        augmentation: Option<AugmentOptions>,
        runs: Vec<serde_json::Value>,
        reason: Option<String>,
    ) -> Self {
        let (rank, alpha) = match options.mode {
            FinetuneMode::Lora { rank, alpha, .. } => (Some(rank), Some(alpha)),
            FinetuneMode::LastBlocks { .. } => (None, None),
        };
        Self {
            mode: options.mode.name().into(),
            requested: requested.into(),
            blocks: options.mode.blocks(),
            lora_rank: rank,
            lora_alpha: alpha,
            head_lr: options.head_lr,
            backbone_lr: Some(options.backbone_lr()),
            augmentation,
            runs,
            reason,
        }
    }
}

impl FinetuneRecord {
    /// What a job's report says about fine-tuning: `None` when the head alone was asked for (it exports as
    /// before); otherwise the kept model's mode, its settings, and every run tried with its epochs.
    pub fn from_report(report: &TrainingReport) -> Option<Self> {
        let deep = report.options.deep_mode()?;
        let options = report.options.finetune_options(deep);
        let augmentation = report.options.augment.enabled.then(|| report.options.augment.clone());
        let runs = report
            .runs
            .iter()
            .map(|run| {
                let best = run.best();
                json!({
                    "mode": run.mode.name(),
                    "epochs_run": run.history.len(),
                    "best_epoch": best.map(|b| b.epoch + 1),
                    "best_val_loss": best.map(|b| b.val_loss),
                    "best_val_accuracy": best.map(|b| b.val_accuracy),
                    "stop_reason": run.stop_reason,
                    "history": run.history,
                })
            })
            .collect();
        let requested = report.options.finetune.name();
        let mut record = Self::from_options(&options, requested, augmentation, runs, report.explanation.clone());
        if report.mode == RunMode::Head {
            record.mode = RunMode::Head.name().into();
            record.blocks = 0;
            record.lora_rank = None;
            record.lora_alpha = None;
            record.backbone_lr = None;
        }
        Some(record)
    }
}
