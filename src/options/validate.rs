//! The options' bounds, checked once for every layer. Each problem is typed by the field it concerns, so the page
//! shows it next to that field, in the field's own words, while the job and the worker read the same problems
//! joined as one message.

use std::fmt;

use super::{DeepOptions, FinetuneMode, TrainOptions};
use crate::model::BLOCKS;

/// An option a user sets, as the page's form names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OptionField {
    ValFraction,
    Epochs,
    BatchSize,
    LearningRate,
    LabelSmoothing,
    HeadWeightDecay,
    HiddenUnits,
    Dropout,
    BackboneLr,
    DeepWeightDecay,
    Warmup,
    Budget,
    Blocks,
    LoraRank,
    LoraAlpha,
    Augmentation,
}

impl OptionField {
    /// The field's name in a message that stands alone (the two weight decays told apart).
    pub fn name(self) -> &'static str {
        match self {
            Self::ValFraction => "validation fraction",
            Self::Epochs => "epochs",
            Self::BatchSize => "batch size",
            Self::LearningRate => "learning rate",
            Self::LabelSmoothing => "label smoothing",
            Self::HeadWeightDecay => "weight decay",
            Self::HiddenUnits => "hidden units",
            Self::Dropout => "dropout",
            Self::BackboneLr => "backbone learning rate",
            Self::DeepWeightDecay => "fine-tuning weight decay",
            Self::Warmup => "warm-up fraction",
            Self::Budget => "time budget",
            Self::Blocks => "trainable blocks",
            Self::LoraRank => "LoRA rank",
            Self::LoraAlpha => "LoRA alpha",
            Self::Augmentation => "augmentation",
        }
    }
}

/// One option out of its bounds: `rule` reads after the field's name ("must be between 0 and 1 (got 5)").
#[derive(Debug, Clone, PartialEq)]
pub struct OptionProblem {
    pub field: OptionField,
    pub rule: String,
}

impl fmt::Display for OptionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field.name(), self.rule)
    }
}

fn rate_ok(lr: f32) -> bool {
    lr.is_finite() && lr > 0.0 && lr <= 1.0
}

impl TrainOptions {
    /// Every out-of-range option the chosen mode uses. A part the mode does not use is not checked: the form
    /// hides it, so a problem there could not be seen or fixed.
    pub fn problems(&self) -> Vec<OptionProblem> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, field: OptionField, rule: String| {
            if !ok {
                problems.push(OptionProblem { field, rule });
            }
        };
        use OptionField::*;
        let v = self.val_fraction;
        check(
            (0.0..=0.9).contains(&v),
            ValFraction,
            format!("must be between 0 and 0.9 (got {v})"),
        );
        let (e, b) = (Self::EPOCHS, Self::BATCH);
        check(
            e.contains(&self.epochs),
            Epochs,
            format!("must be between {} and {} (got {})", e.start(), e.end(), self.epochs),
        );
        check(
            b.contains(&self.batch_size),
            BatchSize,
            format!(
                "must be between {} and {} (got {})",
                b.start(),
                b.end(),
                self.batch_size
            ),
        );
        let lr = self.learning_rate;
        check(
            rate_ok(lr),
            LearningRate,
            format!("must be above 0 and at most 1 (got {lr})"),
        );
        let s = self.label_smoothing;
        check(
            (0.0..=0.5).contains(&s),
            LabelSmoothing,
            format!("must be between 0 and 0.5 (got {s})"),
        );
        if self.finetune.trains_head_alone() {
            let head = &self.head;
            let (wd, units, dropout) = (head.weight_decay, head.hidden_units, head.dropout);
            check(
                (0.0..=1.0).contains(&wd),
                HeadWeightDecay,
                format!("must be between 0 and 1 (got {wd})"),
            );
            check(
                units <= 4096,
                HiddenUnits,
                format!("must be at most 4096 (got {units})"),
            );
            // Dropout only acts after a hidden layer: without one the form hides it.
            check(
                units == 0 || (0.0..0.95).contains(&dropout),
                Dropout,
                format!("must be at least 0 and below 0.95 (got {dropout})"),
            );
        }
        if let Some(mode) = self.deep_mode() {
            let deep = &self.deep;
            if let Some(lr) = deep.backbone_lr {
                check(
                    rate_ok(lr),
                    BackboneLr,
                    format!("must be above 0 and at most 1 (got {lr})"),
                );
            }
            let (wd, warmup) = (deep.weight_decay, deep.warmup_fraction);
            check(
                (0.0..=1.0).contains(&wd),
                DeepWeightDecay,
                format!("must be between 0 and 1 (got {wd})"),
            );
            check(
                (0.0..=0.5).contains(&warmup),
                Warmup,
                format!("must be between 0 and 0.5 (got {warmup})"),
            );
            let max = DeepOptions::MAX_BUDGET_SECONDS;
            check(
                deep.budget_seconds <= max,
                Budget,
                format!(
                    "must be at most {} minutes (got {})",
                    max / 60,
                    deep.budget_seconds / 60
                ),
            );
            problems.extend(mode.problems());
            if let Err(rule) = deep.augment.validate() {
                problems.push(OptionProblem {
                    field: Augmentation,
                    rule,
                });
            }
        }
        problems
    }

    /// [`Self::problems`] as one message, each problem naming its field.
    pub fn validate(&self) -> Result<(), String> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    }
}

impl FinetuneMode {
    /// Problems with the mode's numbers. Alpha is judged only with a valid rank: the page sets it from the rank
    /// and does not show it, so a rank of 0 must not read as a problem with alpha.
    pub(crate) fn problems(&self) -> Vec<OptionProblem> {
        let mut problems = Vec::new();
        let blocks = self.blocks();
        if !(1..=BLOCKS.len()).contains(&blocks) {
            problems.push(OptionProblem {
                field: OptionField::Blocks,
                rule: format!("must be between 1 and {} (got {blocks})", BLOCKS.len()),
            });
        }
        if let Self::Lora { rank, alpha, .. } = *self {
            if !(1..=256).contains(&rank) {
                problems.push(OptionProblem {
                    field: OptionField::LoraRank,
                    rule: format!("must be between 1 and 256 (got {rank})"),
                });
            } else if !(alpha.is_finite() && alpha > 0.0) {
                problems.push(OptionProblem {
                    field: OptionField::LoraAlpha,
                    rule: format!("must be above 0 (got {alpha})"),
                });
            }
        }
        problems
    }
}
