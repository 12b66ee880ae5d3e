//! The training options: one type for every layer (the form, the saved project, the worker's messages, the
//! report and `config.json`, the head trainer and the deep trainer), composed the way burn composes its configs:
//! what every run shares, the head-only run's part ([`HeadOptions`]) and the deeper runs' part ([`DeepOptions`]).
//! Validated once ([`TrainOptions::validate`]), each problem naming its field. Serialised flat (the parts'
//! fields side by side), as options saved before the parts existed were.

mod augment;
mod finetune;
mod validate;

use serde::{Deserialize, Serialize};

pub use augment::{AugmentOptions, Strength};
pub use finetune::{AUTO_LORA, FinetuneChoice, FinetuneMode};
pub use validate::{OptionField, OptionProblem};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    /// Share of each class held out for validation (stratified, seeded).
    pub val_fraction: f32,
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the classifier (the head alone, or the head of a deeper run).
    pub learning_rate: f32,
    pub label_smoothing: f32,
    /// Early stopping: epochs without a lower validation loss before stopping (0: never stop early).
    pub patience: usize,
    pub seed: u64,
    /// What trains: the head alone, the last blocks, LoRA adapters, or Auto (head, then LoRA; the better kept).
    pub finetune: FinetuneChoice,
    /// The head-only run's (head only, and Auto's first run).
    #[serde(flatten)]
    pub head: HeadOptions,
    /// The deeper runs' (last blocks, LoRA, and Auto's second run).
    #[serde(flatten)]
    pub deep: DeepOptions,
}

/// What only the head-only run uses: a classifier on fixed features, trained by Adam or AdamW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeadOptions {
    pub weight_decay: f32,
    /// false: Adam with L2 added to the gradient (PyTorch `Adam(weight_decay=…)`, the reference);
    /// true: AdamW's decoupled weight decay.
    pub decoupled_weight_decay: bool,
    /// 0: a linear head; otherwise a hidden layer of this width with ReLU and dropout.
    pub hidden_units: usize,
    /// Dropout after the hidden layer (ignored without one).
    pub dropout: f32,
}

/// What only the deeper runs use: a linear head and the end of the backbone, trained by AdamW with a warm-up and
/// a cosine decay, on augmented images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeepOptions {
    /// Learning rate of the backbone weights or adapters (`None`: 1e-4 for last blocks, 1e-3 for LoRA).
    #[serde(rename = "backbone_learning_rate")]
    pub backbone_lr: Option<f32>,
    /// AdamW's decoupled weight decay, on the head and the backbone's trainable tensors alike.
    #[serde(rename = "deep_weight_decay")]
    pub weight_decay: f32,
    /// Share of all steps spent warming the learning rate up linearly, before the cosine decay.
    pub warmup_fraction: f32,
    /// Augmentation of the training images (the head alone trains on fixed features).
    pub augment: AugmentOptions,
    /// Most bytes of cut activations kept in memory; views beyond it run the frozen prefix every time.
    pub cache_bytes: usize,
    /// Wall-clock seconds the deeper run may take, its caching included (0: no limit): the schedule is cut to
    /// the rounds that fit once the first has been timed, and the run stops there with its best round kept.
    pub budget_seconds: u32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            val_fraction: 0.2,
            epochs: 50,
            batch_size: 32,
            learning_rate: 1e-3,
            label_smoothing: 0.0,
            patience: 10,
            seed: 0,
            finetune: FinetuneChoice::default(),
            head: HeadOptions::default(),
            deep: DeepOptions::default(),
        }
    }
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self {
            weight_decay: 1e-4,
            decoupled_weight_decay: false,
            hidden_units: 0,
            dropout: 0.2,
        }
    }
}

impl Default for DeepOptions {
    fn default() -> Self {
        Self {
            backbone_lr: None,
            weight_decay: 1e-2,
            warmup_fraction: 0.05,
            augment: AugmentOptions::default(),
            cache_bytes: 256 << 20,
            budget_seconds: Self::BUDGET_SECONDS,
        }
    }
}

impl TrainOptions {
    /// The epochs a user may ask for (the form's help and the error both say this range).
    pub const EPOCHS: std::ops::RangeInclusive<usize> = 1..=10_000;
    /// Mini-batch sizes a user may ask for.
    pub const BATCH: std::ops::RangeInclusive<usize> = 1..=4096;

    /// These options with `finetune` set to a single deep `mode` (Auto's second run, or a test's).
    pub fn with_mode(self, mode: FinetuneMode) -> Self {
        let finetune = match mode {
            FinetuneMode::LastBlocks { blocks } => FinetuneChoice::LastBlocks { blocks },
            FinetuneMode::Lora { blocks, rank, alpha } => FinetuneChoice::Lora { blocks, rank, alpha },
        };
        Self { finetune, ..self }
    }

    /// The deep mode this job trains: the chosen one, Auto's LoRA, or none for head only.
    pub fn deep_mode(&self) -> Option<FinetuneMode> {
        self.finetune.deep_mode()
    }

    /// The backbone's learning rate in `mode`: the one set, or the mode's default.
    pub fn backbone_lr(&self, mode: FinetuneMode) -> f32 {
        self.deep.backbone_lr.unwrap_or(match mode {
            FinetuneMode::LastBlocks { .. } => 1e-4,
            FinetuneMode::Lora { .. } => 1e-3,
        })
    }
}

impl DeepOptions {
    /// The default time budget: 10 minutes.
    pub const BUDGET_SECONDS: u32 = 600;
    /// The longest budget a user may set: a day.
    pub const MAX_BUDGET_SECONDS: u32 = 86_400;

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
    fn auto_is_the_default_and_maps_to_lora_on_the_last_blocks() {
        let o = TrainOptions::default();
        assert_eq!(o.finetune, FinetuneChoice::Auto);
        assert_eq!(o.deep_mode(), Some(AUTO_LORA));
        assert_eq!((AUTO_LORA.cut(), o.backbone_lr(AUTO_LORA)), (8, 1e-3));
        let last = FinetuneMode::LastBlocks { blocks: 4 };
        assert_eq!((last.cut(), o.backbone_lr(last)), (12, 1e-4));
        let head = TrainOptions {
            finetune: FinetuneChoice::Head,
            ..o.clone()
        };
        assert_eq!(head.deep_mode(), None);
        let json = serde_json::to_string(&FinetuneChoice::LastBlocks { blocks: 3 }).unwrap();
        assert_eq!(json, r#"{"kind":"last-blocks","blocks":3}"#);
    }

    #[test]
    fn one_set_of_bounds_and_each_problem_names_its_field() {
        assert!(TrainOptions::default().validate().is_ok());
        let bad = TrainOptions {
            finetune: FinetuneChoice::Lora {
                blocks: 20,
                rank: 0,
                alpha: 1.0,
            },
            batch_size: 5000,
            learning_rate: 5.0,
            head: HeadOptions {
                hidden_units: 64,
                dropout: 0.99,
                ..Default::default()
            },
            deep: DeepOptions {
                backbone_lr: Some(2.0),
                warmup_fraction: 0.9,
                ..Default::default()
            },
            ..Default::default()
        };
        let message = bad.validate().unwrap_err();
        for field in [
            "trainable blocks",
            "LoRA rank",
            "batch size must be between 1 and 4096",
            "learning rate must be above 0 and at most 1 (got 5)",
            "backbone learning rate",
            "warm-up",
        ] {
            assert!(message.contains(field), "{field} not named in: {message}");
        }
        // LoRA trains no head-only run: its form hides the dropout, and so does its check.
        assert!(!message.contains("dropout"), "{message}");
        let auto = TrainOptions {
            finetune: FinetuneChoice::Auto,
            ..bad.clone()
        };
        let message = auto.validate().unwrap_err();
        assert!(
            message.contains("dropout") && message.contains("warm-up"),
            "Auto uses both: {message}"
        );
        let head = TrainOptions {
            finetune: FinetuneChoice::Head,
            ..bad
        };
        let message = head.validate().unwrap_err();
        assert!(message.contains("dropout") && !message.contains("warm-up"), "{message}");
        // Without a hidden layer no dropout applies, so none is judged; a rank of 0 is the rank's problem only.
        let linear = TrainOptions {
            head: HeadOptions {
                dropout: 0.99,
                ..Default::default()
            },
            finetune: FinetuneChoice::Lora {
                blocks: 4,
                rank: 0,
                alpha: 0.0,
            },
            ..Default::default()
        };
        let problems = linear.problems();
        assert_eq!(
            problems.iter().map(|p| p.field).collect::<Vec<_>>(),
            [OptionField::LoraRank],
            "{problems:?}"
        );
        assert_eq!(problems[0].to_string(), "LoRA rank must be between 1 and 256 (got 0)");
    }

    #[test]
    fn serialised_flat_so_options_saved_before_the_parts_still_read() {
        let options = TrainOptions {
            head: HeadOptions {
                hidden_units: 64,
                ..Default::default()
            },
            deep: DeepOptions {
                backbone_lr: Some(5e-4),
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&options).unwrap();
        for key in [
            "hidden_units",
            "weight_decay",
            "backbone_learning_rate",
            "deep_weight_decay",
            "augment",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(serde_json::from_value::<TrainOptions>(json).unwrap(), options);
        // As the page saved them before: flat, without the deep part's new fields.
        let old = r#"{"val_fraction":0.25,"epochs":7,"weight_decay":0.001,"hidden_units":32,
            "backbone_learning_rate":0.0002,"finetune":{"kind":"head"}}"#;
        let read: TrainOptions = serde_json::from_str(old).unwrap();
        assert_eq!(
            (read.epochs, read.head.hidden_units, read.head.weight_decay),
            (7, 32, 0.001)
        );
        assert_eq!(read.deep.backbone_lr, Some(2e-4));
        assert_eq!(read.deep.weight_decay, DeepOptions::default().weight_decay);
    }

    #[test]
    fn warm_up_then_cosine_to_zero() {
        let o = DeepOptions {
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
}
