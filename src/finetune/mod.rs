//! Deeper fine-tuning with burn's autodiff: LoRA adapters or unfrozen late blocks, on whatever device the
//! backbone runs on.
//!
//! The network is cut before the first trainable block. The frozen prefix (stem and early blocks) runs on the
//! plain device, without autodiff; its output at the cut is cached per image when there is no augmentation
//! (`cache.rs`), and the trainable tail (`tail.rs`: late blocks, head conv, classifier) runs on the same device
//! with autodiff. `trainer.rs` steps one mini-batch per call; `auto.rs` chooses between head only and LoRA.

//! `options` (what to train) needs no burn: the page reads it; the rest needs the `ml` feature.

#[cfg(feature = "ml")]
pub mod auto;
#[cfg(feature = "ml")]
pub mod cache;
#[cfg(feature = "ml")]
pub mod optim;
pub mod options;
#[cfg(feature = "ml")]
pub mod step;
#[cfg(feature = "ml")]
pub mod tail;
#[cfg(feature = "ml")]
pub mod trainer;

#[cfg(feature = "ml")]
pub use auto::{AutoChoice, AutoReport, AutoTrainer, choose};
#[cfg(feature = "ml")]
pub use cache::{ActivationCache, cut_bytes_per_image};
pub use options::{AUTO_LORA, Augment, FinetuneMode, FinetuneOptions};
#[cfg(feature = "ml")]
pub use step::{Phase, StepReport, TrainData};
#[cfg(feature = "ml")]
pub use tail::{Tail, classifier_from_head, head_from_classifier};
#[cfg(feature = "ml")]
pub use trainer::DeepTrainer;
