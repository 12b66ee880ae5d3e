//! Deeper fine-tuning with burn's autodiff: LoRA adapters or unfrozen late blocks, on whatever device the
//! backbone runs on.
//!
//! The network is cut before the first trainable block. The frozen prefix (stem and early blocks) runs on the
//! plain device, without autodiff; its output at the cut is cached per image when there is no augmentation
//! (`cache.rs`), and the trainable tail (`tail.rs`: late blocks, head conv, classifier) runs on the same device
//! with autodiff. `trainer.rs` steps one mini-batch per call. Its options are `crate::options::TrainOptions`.

/// A per-image transform of prepared 224×224×3 HWC u8 pixels (augmentation, `train::augment`), drawing from the
/// trainer's rng. Needs no burn: the page builds the transform's options.
pub type Augment = Box<dyn Fn(&[u8], &mut crate::rng::Rng) -> Vec<u8> + Send + Sync>;

pub mod cache;
#[cfg(feature = "ml")]
pub mod optim;
pub mod shard;
#[cfg(feature = "ml")]
pub mod step;
#[cfg(feature = "ml")]
pub mod tail;
#[cfg(feature = "ml")]
pub mod trainer;

pub use cache::{ActivationCache, cut_bytes_per_image};
#[cfg(feature = "ml")]
pub use step::{Phase, StepReport, TrainData};
#[cfg(feature = "ml")]
pub use tail::{Tail, classifier_from_head, head_from_classifier};
#[cfg(feature = "ml")]
pub use trainer::DeepTrainer;
