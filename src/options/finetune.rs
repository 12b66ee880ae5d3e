//! What trains: the mode a user picks ([`FinetuneChoice`]) and the deep mode a single run trains
//! ([`FinetuneMode`]).

use serde::{Deserialize, Serialize};

use crate::model::BLOCKS;

/// Auto's second run: LoRA r16 (α 16) on the last 8 blocks and the head conv.
pub const AUTO_LORA: FinetuneMode = FinetuneMode::Lora {
    blocks: 8,
    rank: 16,
    alpha: 16.0,
};

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
    /// Blocks a deeper mode trains when first picked (the reference recipes').
    pub const BLOCKS: usize = 8;
    /// LoRA's rank when first picked (α = rank).
    pub const RANK: usize = 16;

    /// The choice a name picks (`head`, `last-blocks`, `lora`, `auto`), with `blocks` and `rank` for the deeper
    /// modes: the page's mode menu and the command's `--mode`. α = rank, the reference recipe's; a rank of 0
    /// keeps α at 1, so the problem reads as the rank's. `None` for an unknown name.
    pub fn named(name: &str, blocks: usize, rank: usize) -> Option<Self> {
        Some(match name {
            "head" => Self::Head,
            "last-blocks" => Self::LastBlocks { blocks },
            "lora" => Self::Lora {
                blocks,
                rank,
                alpha: rank.max(1) as f32,
            },
            "auto" => Self::Auto,
            _ => return None,
        })
    }

    /// The name the form, the export and the page's `data-mode` use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::LastBlocks { .. } => "last-blocks",
            Self::Lora { .. } => "lora",
            Self::Auto => "auto",
        }
    }

    /// The deep mode this choice trains: its own, Auto's LoRA, or none for head only.
    pub fn deep_mode(&self) -> Option<FinetuneMode> {
        match *self {
            Self::LastBlocks { blocks } => Some(FinetuneMode::LastBlocks { blocks }),
            Self::Lora { blocks, rank, alpha } => Some(FinetuneMode::Lora { blocks, rank, alpha }),
            Self::Auto => Some(AUTO_LORA),
            Self::Head => None,
        }
    }

    /// Whether a head-only run on the features trains (head only, and Auto's first run).
    pub fn trains_head_alone(&self) -> bool {
        matches!(self, Self::Head | Self::Auto)
    }
}

/// A deeper run: what of the backbone trains beside the head.
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
