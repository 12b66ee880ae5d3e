//! What to fine-tune and how, with the defaults of issue 8's reference recipes.

use serde::{Deserialize, Serialize};

use crate::model::BLOCKS;
use crate::rng::Rng;

/// Auto's second run: LoRA r16 (α 16) on the last 8 blocks and the head conv.
pub const AUTO_LORA: FinetuneMode = FinetuneMode::Lora {
    blocks: 8,
    rank: 16,
    alpha: 16.0,
};

/// A per-image transform of prepared 224×224×3 HWC u8 pixels (augmentation), drawing from the trainer's rng.
pub type Augment = Box<dyn Fn(&[u8], &mut Rng) -> Vec<u8>>;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FinetuneMode {
    /// The last `blocks` MBConv blocks and the head conv train (folded weights and biases).
    LastBlocks { blocks: usize },
    /// LoRA adapters on the 1×1 convs (expand, project) of the last `blocks` blocks and on the head conv.
    Lora { blocks: usize, rank: usize, alpha: f32 },
}

impl FinetuneMode {
    /// Number of trainable blocks at the end of the backbone.
    pub fn blocks(&self) -> usize {
        match *self {
            Self::LastBlocks { blocks } | Self::Lora { blocks, .. } => blocks,
        }
    }

    /// Index of the first trainable block: everything before it is the frozen prefix.
    pub fn cut(&self) -> usize {
        BLOCKS.len() - self.blocks()
    }

    /// The name the UI and export use (`last-blocks`, `lora`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::LastBlocks { .. } => "last-blocks",
            Self::Lora { .. } => "lora",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinetuneOptions {
    pub mode: FinetuneMode,
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the classifier.
    pub head_lr: f32,
    /// Learning rate of the backbone weights or adapters (`None`: 1e-4 for last blocks, 1e-3 for LoRA).
    pub backbone_lr: Option<f32>,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Share of all steps spent warming the learning rate up linearly, before the cosine decay.
    pub warmup_fraction: f32,
    pub label_smoothing: f32,
    /// Epochs without a lower validation loss before stopping (0: never stop early).
    pub patience: usize,
    pub seed: u64,
    /// Most bytes of cut activations kept in memory; views beyond it run the frozen prefix every time.
    pub cache_bytes: usize,
    /// With augmentation: fixed augmented views per training image (the bank), each run through the frozen
    /// prefix once and cycled across epochs; 0 draws a new view every epoch (the prefix runs every step).
    /// Fewer views than the budget holds for every training image: the bank shrinks to what fits.
    pub augment_views: usize,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        Self {
            mode: FinetuneMode::Lora {
                blocks: 8,
                rank: 16,
                alpha: 16.0,
            },
            epochs: 30,
            batch_size: 32,
            head_lr: 1e-3,
            backbone_lr: None,
            weight_decay: 1e-2,
            warmup_fraction: 0.05,
            label_smoothing: 0.0,
            patience: 8,
            seed: 0,
            cache_bytes: 256 << 20,
            augment_views: 8,
        }
    }
}

impl FinetuneOptions {
    pub fn backbone_lr(&self) -> f32 {
        self.backbone_lr.unwrap_or(match self.mode {
            FinetuneMode::LastBlocks { .. } => 1e-4,
            FinetuneMode::Lora { .. } => 1e-3,
        })
    }

    /// Every out-of-range option, as messages a user can act on.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let blocks = self.mode.blocks();
        if !(1..=BLOCKS.len()).contains(&blocks) {
            problems.push(format!("trainable blocks must be between 1 and 16 (got {blocks})"));
        }
        if let FinetuneMode::Lora { rank, alpha, .. } = self.mode {
            if !(1..=256).contains(&rank) {
                problems.push(format!("LoRA rank must be between 1 and 256 (got {rank})"));
            }
            if !(alpha.is_finite() && alpha > 0.0) {
                problems.push(format!("LoRA alpha must be above 0 (got {alpha})"));
            }
        }
        if !(1..=10_000).contains(&self.epochs) {
            problems.push(format!("epochs must be between 1 and 10000 (got {})", self.epochs));
        }
        if !(1..=4096).contains(&self.batch_size) {
            problems.push(format!(
                "batch size must be between 1 and 4096 (got {})",
                self.batch_size
            ));
        }
        for (what, lr) in [("head", self.head_lr), ("backbone", self.backbone_lr())] {
            if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
                problems.push(format!("{what} learning rate must be above 0 and at most 1 (got {lr})"));
            }
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            problems.push(format!(
                "weight decay must be between 0 and 1 (got {})",
                self.weight_decay
            ));
        }
        if !(0.0..=0.5).contains(&self.warmup_fraction) {
            problems.push(format!(
                "warm-up fraction must be between 0 and 0.5 (got {})",
                self.warmup_fraction
            ));
        }
        if !(0.0..=0.5).contains(&self.label_smoothing) {
            problems.push(format!(
                "label smoothing must be between 0 and 0.5 (got {})",
                self.label_smoothing
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Learning-rate factor at `step` of `total`: linear warm-up, then cosine decay to 0.
    pub fn lr_factor(&self, step: usize, total: usize) -> f32 {
        let warmup = ((total as f32 * self.warmup_fraction).round() as usize).max(1);
        if step < warmup {
            return (step + 1) as f32 / warmup as f32;
        }
        let span = total.saturating_sub(warmup).max(1) as f32;
        let t = ((step - warmup) as f32 / span).min(1.0);
        0.5 * (1.0 + (std::f32::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_cosine_to_zero() {
        let o = FinetuneOptions {
            warmup_fraction: 0.1,
            ..Default::default()
        };
        let f: Vec<f32> = (0..100).map(|s| o.lr_factor(s, 100)).collect();
        assert!(
            (f[0] - 0.1).abs() < 1e-6 && (f[9] - 1.0).abs() < 1e-6,
            "linear warm-up over 10 steps"
        );
        assert!((f[10] - 1.0).abs() < 1e-6);
        assert!(f[10..].windows(2).all(|w| w[1] <= w[0]), "decays monotonically");
        assert!(f[99] < 0.01);
        assert!((o.lr_factor(55, 100) - 0.5).abs() < 1e-6, "half-way through the decay");
    }

    #[test]
    fn defaults_follow_the_reference_and_bad_options_are_named() {
        let lora = FinetuneOptions::default();
        assert_eq!((lora.mode.cut(), lora.backbone_lr(), lora.head_lr), (8, 1e-3, 1e-3));
        let last = FinetuneOptions {
            mode: FinetuneMode::LastBlocks { blocks: 4 },
            ..lora.clone()
        };
        assert_eq!((last.mode.cut(), last.backbone_lr()), (12, 1e-4));
        assert!(lora.validate().is_ok());
        let bad = FinetuneOptions {
            mode: FinetuneMode::Lora {
                blocks: 17,
                rank: 0,
                alpha: 1.0,
            },
            ..lora
        };
        let message = bad.validate().unwrap_err();
        assert!(message.contains("blocks") && message.contains("rank"), "{message}");
    }
}
