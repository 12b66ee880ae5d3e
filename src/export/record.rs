//! What a deeper fine-tune did, recorded in `config.json` under `"finetune"`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::head::EpochMetrics;
use crate::options::{AugmentOptions, FinetuneMode, TrainOptions};
use crate::train::{RunMode, TrainingReport};

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
    /// AdamW's decoupled weight decay of the deep run (`None` for head only: the head's is in `options`).
    #[serde(default)]
    pub weight_decay: Option<f32>,
    /// Share of the steps warming the learning rate up before its cosine decay (`None` for head only).
    #[serde(default)]
    pub warmup_fraction: Option<f32>,
    /// `None` when training ran without augmentation.
    pub augmentation: Option<AugmentOptions>,
    /// Every run tried (Auto tries head only, then LoRA), as the trainer reports it: free-form so runs can
    /// carry their own metrics and histories.
    pub runs: Vec<serde_json::Value>,
    /// Why the exported model was chosen (Auto), in words.
    pub reason: Option<String>,
}

impl FinetuneRecord {
    /// The record of a deep run in `mode` with `options` (blocks, rank, α, learning rates, weight decay and
    /// warm-up taken from them).
    pub fn from_options(
        options: &TrainOptions,
        mode: FinetuneMode,
        requested: &str,
        augmentation: Option<AugmentOptions>,
        runs: Vec<serde_json::Value>,
        reason: Option<String>,
    ) -> Self {
        let (rank, alpha) = match mode {
            FinetuneMode::Lora { rank, alpha, .. } => (Some(rank), Some(alpha)),
            FinetuneMode::LastBlocks { .. } => (None, None),
        };
        Self {
            mode: mode.name().into(),
            requested: requested.into(),
            blocks: mode.blocks(),
            lora_rank: rank,
            lora_alpha: alpha,
            head_lr: options.learning_rate,
            backbone_lr: Some(options.backbone_lr(mode)),
            weight_decay: Some(options.deep.weight_decay),
            warmup_fraction: Some(options.deep.warmup_fraction),
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
        let augment = &report.options.deep.augment;
        let augmentation = augment.enabled.then(|| augment.clone());
        let runs = report
            .runs
            .iter()
            .map(|run| {
                let best = run.best();
                // Counted from 1, as `best_epoch` beside it, `metrics.best_epoch` and the page's charts count.
                let history: Vec<EpochMetrics> = run
                    .history
                    .iter()
                    .map(|m| EpochMetrics {
                        epoch: m.epoch + 1,
                        ..m.clone()
                    })
                    .collect();
                json!({
                    "mode": run.mode.name(),
                    "epochs_run": run.history.len(),
                    "best_epoch": best.map(|b| b.epoch + 1),
                    "best_val_loss": best.map(|b| b.val_loss),
                    "best_val_accuracy": best.map(|b| b.val_accuracy),
                    "stop_reason": run.stop_reason,
                    "history": history,
                })
            })
            .collect();
        let requested = report.options.finetune.name();
        let mut record = Self::from_options(
            &report.options,
            deep,
            requested,
            augmentation,
            runs,
            report.explanation.clone(),
        );
        if report.mode == RunMode::Head {
            record.mode = RunMode::Head.name().into();
            record.blocks = 0;
            record.lora_rank = None;
            record.lora_alpha = None;
            record.backbone_lr = None;
            record.weight_decay = None;
            record.warmup_fraction = None;
        }
        Some(record)
    }
}
