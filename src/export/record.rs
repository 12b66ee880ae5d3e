//! What a deeper fine-tune did, recorded in `config.json` under `"finetune"`.

use serde::{Deserialize, Serialize};

use crate::finetune::{FinetuneMode, FinetuneOptions};
use crate::train::AugmentOptions;

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
