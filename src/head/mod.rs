//! The new head, trained on cached embeddings, in plain Rust on f32 slices.
//!
//! The compute is tiny (a 1280×K layer on a few hundred vectors); what costs in a framework is per-op overhead
//! (GPU dispatches, autodiff graph building). Hand-written forward/backward runs a 50-epoch training in
//! milliseconds, so the head trains on the CPU whatever backend embedded the images. One epoch per call lets
//! the UI repaint between epochs. The floor below `finetune` (whose trainer keeps the same epoch log and
//! metrics) and the jobs of `train`.

pub mod epoch_log;
pub mod layers;
pub mod metrics;
pub mod optimizer;
pub mod trainer;

pub use layers::{Dense, Head, NamedTensor, argmax};
pub use metrics::{ConfusionMatrix, EpochMetrics, ImagePrediction, evaluate};
pub use trainer::Trainer;
