//! The training pipeline behind one small API: a [`TrainData`] (features, labels, class names) and
//! [`TrainOptions`] in, one epoch per [`TrainingRun::step`], a [`Trained`] head with its [`TrainingReport`] out.
//! It does the split, the trainer's setup and the final evaluation; [`EmbeddingCache`] turns a dataset into
//! `TrainData` once every image is embedded. [`TrainEvent`] is what a run reports while it goes: serde
//! values (`events.rs`), so the same events can cross from a Web Worker to the page as messages.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use super::events::{Progress, Stage, TrainEvent};
use super::mode::{RunHistory, RunMode};
use crate::data::Dataset;
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

/// Embeddings by the sample's pixel key: they survive renames, removals, backend switches and retraining.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingCache {
    rows: HashMap<u64, Vec<f32>>,
}

impl EmbeddingCache {
    /// The samples of `dataset` with no embedding yet, as (key, pixels), in dataset order, each image once;
    /// the pixels are empty for images kept out of memory.
    pub fn missing<'a>(&self, dataset: &'a Dataset) -> Vec<(u64, &'a [u8])> {
        let mut seen = std::collections::HashSet::new();
        dataset
            .classes
            .iter()
            .flat_map(|c| &c.samples)
            .filter(|s| !self.rows.contains_key(&s.key()) && seen.insert(s.key()))
            .map(|s| (s.key(), s.pixels.as_slice()))
            .collect()
    }

    /// Stores a batch: `rows` holds `keys.len()` embeddings of equal length, one after the other.
    pub fn insert(&mut self, keys: &[u64], rows: &[f32]) -> Result<(), String> {
        if keys.is_empty() || rows.is_empty() || !rows.len().is_multiple_of(keys.len()) {
            return Err(format!(
                "{} values do not split into {} embeddings",
                rows.len(),
                keys.len()
            ));
        }
        let dim = rows.len() / keys.len();
        for (key, row) in keys.iter().zip(rows.chunks_exact(dim)) {
            self.rows.insert(*key, row.to_vec());
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The dataset as training input. Fails (naming the image) when an image is not embedded yet.
    pub fn train_data(&self, dataset: &Dataset) -> Result<TrainData, String> {
        let mut features = Vec::new();
        let mut dim = 0;
        for class in &dataset.classes {
            for sample in &class.samples {
                let row = self
                    .rows
                    .get(&sample.key())
                    .ok_or_else(|| format!("“{}” in class “{}” has no features yet", sample.name, class.name))?;
                if dim != 0 && row.len() != dim {
                    return Err(format!("“{}” has {} features, not {dim}", sample.name, row.len()));
                }
                dim = row.len();
                features.extend_from_slice(row);
            }
        }
        Ok(TrainData {
            features,
            dim,
            labels: dataset.labels(),
            class_names: dataset.class_names(),
            keys: dataset.keys(),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ClassData, Sample};

    #[test]
    fn cache_finds_missing_images_once_and_builds_train_data() {
        let class = |name: &str, values: &[u8]| {
            ClassData::new(
                name,
                values
                    .iter()
                    .map(|&v| Sample::new(format!("{v}.png"), vec![v; 4]))
                    .collect(),
            )
        };
        // Image 2 is in both classes: embedded once.
        let dataset = Dataset {
            classes: vec![class("a", &[1, 2]), class("b", &[2, 3])],
        };
        let mut cache = EmbeddingCache::default();
        let missing: Vec<u64> = cache.missing(&dataset).iter().map(|(k, _)| *k).collect();
        assert_eq!(missing.len(), 3);
        assert!(cache.train_data(&dataset).unwrap_err().contains("1.png"));
        cache.insert(&missing[..2], &[1.0, 1.0, 2.0, 2.0]).unwrap();
        assert_eq!(cache.missing(&dataset).len(), 1);
        assert!(cache.insert(&missing[2..], &[]).is_err());
        assert!(cache.insert(&missing[..2], &[1.0, 2.0, 3.0]).is_err());
        cache.insert(&missing[2..], &[3.0, 3.0, 3.0]).unwrap();
        assert!(
            cache.train_data(&dataset).unwrap_err().contains("not 2"),
            "rows of another length are refused"
        );
        cache.insert(&missing[2..], &[3.0, 3.0]).unwrap();
        assert_eq!(cache.len(), 3);
        let data = cache.train_data(&dataset).unwrap();
        assert_eq!(data.dim, 2);
        assert_eq!(data.labels, [0, 0, 1, 1]);
        assert_eq!(data.class_names, ["a", "b"]);
        assert_eq!(data.keys, dataset.keys());
        assert_eq!(
            data.features,
            [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0],
            "the shared image's row twice"
        );
    }
}
