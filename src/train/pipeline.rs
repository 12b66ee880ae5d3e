//! The training pipeline behind one small API: a [`TrainData`] (features, labels, class names) and
//! [`TrainOptions`] in, one epoch per [`TrainingRun::step`], a [`Trained`] head with its [`TrainingReport`] out.
//! It does the split, the trainer's setup and the final evaluation; [`EmbeddingCache`] turns a dataset into
//! `TrainData` once every image is embedded. [`TrainEvent`] is what a run reports while it goes: serde
//! values (`events.rs`), so the same events can cross from a Web Worker to the page as messages.

use serde::{Deserialize, Serialize};

pub use super::embeddings::{EmbeddingCache, FeatureStore};
pub use super::events::{Progress, Stage, TrainEvent};
use super::mode::{RunHistory, RunMode};
use crate::data::split::stratified_split;
use crate::head::Trainer;
use crate::head::layers::{Head, NamedTensor};
use crate::head::metrics::{ConfusionMatrix, EpochMetrics, ImagePrediction};
use crate::model::BackboneDelta;
use crate::options::TrainOptions;

/// What a head is trained on: one feature row per image.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainData {
    /// `labels.len()` rows of `dim` values.
    pub features: Vec<f32>,
    pub dim: usize,
    /// Index into `class_names`, one per row.
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    /// The pixel key of each row's image (`data::Sample::key`), for the per-image predictions.
    pub keys: Vec<u64>,
}

/// Where the time went, measured by whoever runs the pipeline (there is no clock in plain wasm).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub embed_seconds: f64,
    /// Images embedded per second (0 when every image was cached).
    pub images_per_second: f64,
    /// Threads that embedded them (`Host::embed_threads`; 0 in reports from before it was kept).
    #[serde(default)]
    pub embed_threads: usize,
    /// Of `embed_seconds`, the time inside the backbone's batches (the rest went to reading images back, storing
    /// features and reporting progress: what the flow costs). 0 in reports from before it was kept.
    #[serde(default)]
    pub backbone_seconds: f64,
    pub train_seconds: f64,
    /// Threads a deeper run's steps were shared across (`Host::helpers` and this one; 0 for a head-only run and in
    /// reports from before it was kept).
    #[serde(default)]
    pub train_threads: usize,
}

/// Everything about one finished training: what the results panel shows and the export metadata says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    pub labels: Vec<String>,
    pub options: TrainOptions,
    pub history: Vec<EpochMetrics>,
    /// The metrics of the epoch whose head is kept (lowest validation loss).
    pub best: EpochMetrics,
    /// The kept head on the validation images (the training images without a validation split).
    pub val_loss: f32,
    pub val_accuracy: f32,
    /// Rows: true class, columns: predicted class.
    pub confusion: ConfusionMatrix,
    pub per_class_accuracy: Vec<f32>,
    pub stop_reason: String,
    pub num_train: usize,
    pub num_val: usize,
    pub timings: Timings,
    /// Mode of the kept model (`history` and `best` are its run's).
    #[serde(default)]
    pub mode: RunMode,
    /// Every run the job made, in order: one, or Auto's two.
    #[serde(default)]
    pub runs: Vec<RunHistory>,
    /// Why Auto kept the model it kept, in words.
    #[serde(default)]
    pub explanation: Option<String>,
    /// The kept model's prediction for each image the confusion matrix counts, in the same order.
    #[serde(default)]
    pub predictions: Vec<ImagePrediction>,
    /// The "none of these" threshold the person set (`None`: the one suggested by the validation images,
    /// [`TrainingReport::none_of_these`]).
    #[serde(default)]
    pub none_threshold: Option<f32>,
}

impl TrainingReport {
    /// Below this top-class probability an answer is "none of these": the person's choice, else the suggestion
    /// from the validation images (`threshold::suggest`).
    pub fn none_of_these(&self) -> f32 {
        self.none_threshold
            .unwrap_or_else(|| super::threshold::suggest(&self.predictions))
    }

    /// What the kept run counted: "round" when it validated every so many images instead of once a pass (a deeper
    /// run on a large set), else "epoch".
    pub fn unit(&self) -> &'static str {
        let rounds = self
            .runs
            .iter()
            .any(|run| run.mode == self.mode && run.deep.as_ref().is_some_and(|d| d.round_images > 0));
        if rounds { "round" } else { "epoch" }
    }

    /// The epoch kept beside the epochs run ("best epoch 22 of 32"), so an early stop does not read as contradicting
    /// the epoch kept; a model opened from a file has no history, only its best epoch ("epoch 22").
    pub fn kept_epoch(&self) -> String {
        let best = self.best.epoch + 1;
        match self.history.len() {
            0 => format!("{} {best}", self.unit()),
            run => format!("best {} {best} of {run}", self.unit()),
        }
    }
}

/// A trained head, what fine-tuning changed in the backbone (empty for head only) and the report. Serialised
/// with the head as named tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "SavedTrained", try_from = "SavedTrained")]
pub struct Trained {
    pub head: Head,
    pub delta: BackboneDelta,
    pub report: TrainingReport,
}

#[derive(Serialize, Deserialize)]
struct SavedTrained {
    head: Vec<NamedTensor>,
    #[serde(default)]
    delta: BackboneDelta,
    report: TrainingReport,
}

impl From<Trained> for SavedTrained {
    fn from(t: Trained) -> Self {
        Self {
            head: t.head.tensors(),
            delta: t.delta,
            report: t.report,
        }
    }
}

impl TryFrom<SavedTrained> for Trained {
    type Error = String;
    fn try_from(s: SavedTrained) -> Result<Self, String> {
        Ok(Self {
            head: Head::from_tensors(&s.head)?,
            delta: s.delta,
            report: s.report,
        })
    }
}

/// One training: split, trainer, epochs, evaluation.
pub struct TrainingRun {
    trainer: Trainer,
    labels: Vec<String>,
    keys: Vec<u64>,
    options: TrainOptions,
    num_train: usize,
    num_val: usize,
}

impl TrainingRun {
    /// Checks the options and the data, makes the stratified split and sets up the trainer.
    pub fn new(data: TrainData, options: TrainOptions) -> Result<Self, String> {
        options.validate()?;
        if data.keys.len() != data.labels.len() {
            return Err(format!(
                "{} image keys for {} images",
                data.keys.len(),
                data.labels.len()
            ));
        }
        let split = stratified_split(&data.labels, options.val_fraction, options.seed);
        let (num_train, num_val) = (split.train.len(), split.val.len());
        let trainer = Trainer::new(
            data.features,
            data.dim,
            data.labels,
            split.train,
            split.val,
            data.class_names.len(),
            options.clone(),
        )?;
        Ok(Self {
            trainer,
            labels: data.class_names,
            keys: data.keys,
            options,
            num_train,
            num_val,
        })
    }

    /// Continues from an earlier model's head (`classes`: its outputs' names, in any order of this run's).
    pub fn start_from(&mut self, head: &Head, classes: &[String]) -> Result<(), String> {
        let head = head.for_classes(classes, &self.labels)?;
        self.trainer.start_from(head)?;
        self.options = self.trainer.options().clone();
        Ok(())
    }

    /// Trains one epoch; `None` once the run is over (all epochs, early stop or [`Self::stop`]).
    pub fn step(&mut self) -> Option<EpochMetrics> {
        (!self.trainer.is_done()).then(|| self.trainer.step_epoch())
    }

    /// Ends the run after the current epoch; the best head so far is kept.
    pub fn stop(&mut self) {
        self.trainer.request_stop();
    }

    pub fn epochs(&self) -> usize {
        self.options.epochs
    }

    pub fn history(&self) -> &[EpochMetrics] {
        self.trainer.history()
    }

    /// The best epoch's head and the report on it.
    pub fn finish(self, timings: Timings) -> Trained {
        let (val_loss, val_accuracy, confusion) = self.trainer.evaluate_best();
        let predictions = self.trainer.best_predictions(&self.keys);
        let (head, best) = self.trainer.best();
        let history = self.trainer.history().to_vec();
        Trained {
            head: head.clone(),
            delta: BackboneDelta::default(),
            report: TrainingReport {
                labels: self.labels,
                runs: vec![RunHistory {
                    mode: RunMode::Head,
                    history: history.clone(),
                    stop_reason: self.trainer.stop_reason().to_string(),
                    deep: None,
                }],
                mode: RunMode::Head,
                explanation: None,
                predictions,
                none_threshold: None,
                history,
                best: best.clone(),
                val_loss,
                val_accuracy,
                per_class_accuracy: confusion.per_class_accuracy(),
                confusion,
                stop_reason: self.trainer.stop_reason().to_string(),
                num_train: self.num_train,
                num_val: self.num_val,
                options: self.options,
                timings,
            },
        }
    }
}
