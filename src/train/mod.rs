//! Whole trainings as the page asks for them: the jobs (`job.rs`; `head_job.rs`: embed what is not cached, train the head
//! epoch by epoch; `deep_job.rs`: a deeper run one mini-batch at a time; Auto, both and the better kept,
//! `auto.rs`), what they report while they go (`events.rs`) and hand over (`pipeline.rs`: `Trained` and its
//! `TrainingReport`), the runs' modes and histories (`mode.rs`), the augmentation the deeper runs apply
//! (`augment.rs`) and how an accuracy is quoted (`honest.rs`). Above `head` and `finetune`; the options are
//! `crate::options`.

pub mod augment;
pub mod auto;
pub mod budget;
pub mod checkpoint;
#[cfg(feature = "ml")]
mod deep_job;
pub mod embeddings;
pub mod events;
#[cfg(feature = "ml")]
mod head_job;
pub mod honest;
#[cfg(feature = "ml")]
pub mod job;
pub mod mode;
pub mod pipeline;
pub mod threshold;

pub use augment::augment;
pub use auto::{AutoChoice, AutoReport, choose};
pub use mode::{RunHistory, RunMode};
pub use pipeline::{EmbeddingCache, Progress, Stage, TrainData, TrainEvent, Trained, TrainingReport, TrainingRun};
