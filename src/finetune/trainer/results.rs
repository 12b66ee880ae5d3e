//! What a deep trainer reports and hands over: options, history, progress counts, and the best epoch's network,
//! backbone changes and head.

use burn::module::Module;

use super::{DeepTrainer, State};
use crate::finetune::cache::ActivationCache;
use crate::finetune::tail::head_from_classifier;
use crate::head::{EpochMetrics, Head};
use crate::model::{BackboneDelta, EfficientNetLite0};
use crate::options::{FinetuneMode, TrainOptions};

impl DeepTrainer {
    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// The deep mode this run trains.
    pub fn mode(&self) -> FinetuneMode {
        self.mode
    }
    pub fn history(&self) -> &[EpochMetrics] {
        self.log.history()
    }
    pub fn is_done(&self) -> bool {
        self.log.is_done()
    }
    /// Why training ended ("" while it runs).
    pub fn stop_reason(&self) -> &str {
        self.log.stop_reason()
    }
    /// Parameters that train: adapters or tail convs, plus the classifier.
    /// The most threads a step was shared across (`step_with`'s helpers and this one).
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn trainable_params(&self) -> usize {
        self.trainable_params
    }
    pub fn cache(&self) -> &ActivationCache {
        &self.cache
    }
    /// Optimizer steps done.
    pub fn steps_done(&self) -> usize {
        self.step_count
    }

    /// Whether the next step validates.
    pub fn is_validating(&self) -> bool {
        matches!(self.state, State::Validating { .. })
    }

    /// Whether the next step fills the activation cache.
    pub fn is_caching(&self) -> bool {
        matches!(self.state, State::Caching { .. })
    }

    /// Whether the next step is a training step (not caching or validating).
    pub fn is_training(&self) -> bool {
        matches!(self.state, State::Training { .. })
    }

    /// Optimizer steps of the whole run as planned now (every round, or those the time budget holds).
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Metrics of the epoch with the lowest validation loss (None before the first epoch ends).
    pub fn best_metrics(&self) -> Option<&EpochMetrics> {
        self.log.best().map(|(_, m)| m)
    }

    /// The best epoch's whole network on the plain device (adapters kept, not merged).
    pub fn best_model(&self) -> EfficientNetLite0 {
        match self.log.best() {
            Some(((tail, classifier), _)) => tail.assemble(&self.base, classifier),
            None => self.tail.valid().assemble(&self.base, &self.classifier.valid()),
        }
    }

    /// The best epoch's changes to the backbone, for the export.
    pub async fn best_delta(&self) -> Result<BackboneDelta, String> {
        match self.log.best() {
            Some(((tail, _), _)) => tail.delta().await,
            None => self.tail.valid().delta().await,
        }
    }

    /// The best epoch's classifier as the plain-Rust head the export writes.
    pub async fn best_head(&self) -> Result<Head, String> {
        match self.log.best() {
            Some(((_, classifier), _)) => head_from_classifier(classifier).await,
            None => head_from_classifier(&self.classifier.valid()).await,
        }
    }
}
