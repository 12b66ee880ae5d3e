//! Deeper fine-tuning with burn's autodiff: LoRA adapters or unfrozen late blocks, on whatever device the
//! backbone runs on.
//!
//! The network is cut before the first trainable block. The frozen prefix (stem and early blocks) runs on the
//! plain device, without autodiff; its output at the cut is cached per image when there is no augmentation
//! (`cache.rs`), and the trainable tail (`tail.rs`: late blocks, head conv, classifier) runs on the same device
//! with autodiff. `trainer.rs` steps one mini-batch per call; `auto.rs` chooses between head only and LoRA.

pub mod auto;
pub mod cache;
pub mod optim;
pub mod options;
pub mod step;
pub mod tail;
pub mod trainer;

pub use auto::{AUTO_LORA, AutoChoice, AutoReport, AutoTrainer, choose};
pub use cache::{ActivationCache, cut_bytes_per_image};
pub use options::{FinetuneMode, FinetuneOptions};
pub use step::{Augment, Phase, StepReport, TrainData};
pub use tail::{Tail, classifier_from_head, head_from_classifier};
pub use trainer::DeepTrainer;
