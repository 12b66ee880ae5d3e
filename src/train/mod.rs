//! Training the new head on cached embeddings, in plain Rust on f32 slices.
//!
//! The compute is tiny (a 1280×K layer on a few hundred vectors); what costs in a framework is per-op overhead
//! (GPU dispatches, autodiff graph building). Hand-written forward/backward runs a 50-epoch training in
//! milliseconds, so the head trains on the CPU whatever backend embedded the images. One epoch per call lets
//! the UI repaint between epochs.

pub mod augment;
#[cfg(feature = "ml")]
mod deep_job;
pub mod epoch_log;
pub mod events;
pub mod head;
pub mod honest;
#[cfg(feature = "ml")]
pub mod job;
pub mod metrics;
pub mod mode;
pub mod optimizer;
pub mod options;
pub mod pipeline;
pub mod protocol;
pub mod trainer;

pub use augment::{AugmentOptions, Strength, augment};
pub use head::{Dense, Head, NamedTensor};
pub use metrics::{ConfusionMatrix, EpochMetrics, ImagePrediction, evaluate};
pub use mode::{FinetuneChoice, RunHistory, RunMode};
pub use options::TrainOptions;
pub use pipeline::{EmbeddingCache, Progress, Stage, TrainData, TrainEvent, Trained, TrainingReport, TrainingRun};
pub use trainer::Trainer;
