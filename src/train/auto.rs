//! Auto mode's choice: the head alone on embeddings runs first (seconds), then LoRA r16 on the last 8 blocks and
//! the head conv (`job.rs` runs both); the run with the lower best validation loss is kept, and the report says
//! why.

use serde::{Deserialize, Serialize};

use crate::head::EpochMetrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoChoice {
    HeadOnly,
    Lora,
}

/// Both runs' histories and the choice, for the charts and `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoReport {
    pub head_history: Vec<EpochMetrics>,
    pub lora_history: Vec<EpochMetrics>,
    pub choice: AutoChoice,
    pub explanation: String,
}

/// Keeps the run with the lower best validation loss (the head on a tie, or when LoRA ran no epoch), and says
/// why in words.
pub fn choose(
    head_history: &[EpochMetrics],
    head_loss: f32,
    lora_history: &[EpochMetrics],
    lora_best: Option<&EpochMetrics>,
) -> AutoReport {
    let lora_loss = lora_best.map_or(f32::INFINITY, |m| m.val_loss);
    let choice = if lora_loss < head_loss {
        AutoChoice::Lora
    } else {
        AutoChoice::HeadOnly
    };
    let explanation = match choice {
        _ if lora_best.is_none() => format!(
            "The head alone was kept (best validation loss {head_loss:.3}): LoRA on the last 8 blocks ended \
             before its first epoch, so there was nothing to compare."
        ),
        AutoChoice::Lora => format!(
            "LoRA on the last 8 blocks was kept: its best validation loss ({lora_loss:.3}) is lower than the \
             head alone's ({head_loss:.3}), so adapting the backbone helps on these images."
        ),
        AutoChoice::HeadOnly => format!(
            "The head alone was kept: its best validation loss ({head_loss:.3}) is no higher than LoRA on the \
             last 8 blocks ({lora_loss:.3}), so the pretrained features already suit these images."
        ),
    };
    AutoReport {
        head_history: head_history.to_vec(),
        lora_history: lora_history.to_vec(),
        choice,
        explanation,
    }
}
