//! An opened model as the app's kept model (`Trained`): what its backbone changed against the shipped weights
//! becomes a `BackboneDelta` (trained-in-full convs, in the folded space the app runs in), and its
//! `config.json`, when given, the report (labels, options, held-out metrics; 0 where it has none). Exports of it then go through
//! the same merge as a freshly trained model and give the same network.

use serde_json::Value;

use super::{OpenError, OpenedModel};
use crate::head::{ConfusionMatrix, EpochMetrics};
use crate::model::tensor_file::{FoldedConv, folded_conv};
use crate::model::{BLOCKS, BackboneDelta, ConvDelta, ConvUpdate, EMBEDDING_DIM, TensorFile};
use crate::options::TrainOptions;
use crate::train::{RunMode, Trained, TrainingReport};

/// Every conv of the backbone: (BN prefix, weight shape).
fn convs() -> Vec<(String, [usize; 4])> {
    let mut convs = vec![("stem".to_string(), [32, 3, 3, 3])];
    for (i, spec) in BLOCKS.iter().enumerate() {
        let hidden = spec.hidden();
        if spec.expand != 1 {
            convs.push((format!("blocks.{i}.expand"), [hidden, spec.cin, 1, 1]));
        }
        convs.push((format!("blocks.{i}.dw"), [hidden, 1, spec.kernel, spec.kernel]));
        convs.push((format!("blocks.{i}.project"), [spec.cout, hidden, 1, 1]));
    }
    convs.push(("head".into(), [EMBEDDING_DIM, 320, 1, 1]));
    convs
}

/// The convs whose folded weights differ from the shipped ones, as full updates.
fn delta_against(opened: &[u8], shipped: &[u8]) -> Result<BackboneDelta, OpenError> {
    let fail = |file: &str, e: crate::model::WeightsError| OpenError {
        file: file.into(),
        problem: e.to_string(),
    };
    let ours = TensorFile::parse(opened).map_err(|e| fail("model.safetensors", e))?;
    let base = TensorFile::parse(shipped).map_err(|e| fail("the shipped weights", e))?;
    let mut delta = BackboneDelta::default();
    for (prefix, shape) in convs() {
        let FoldedConv { weight, bias, .. } =
            folded_conv(&ours, &prefix, shape).map_err(|e| fail("model.safetensors", e))?;
        let shipped = folded_conv(&base, &prefix, shape).map_err(|e| fail("the shipped weights", e))?;
        if (&weight, &bias) != (&shipped.weight, &shipped.bias) {
            delta.convs.push(ConvDelta {
                name: format!("{prefix}.conv"),
                shape,
                update: ConvUpdate::Full { weight, bias },
            });
        }
    }
    Ok(delta)
}

/// The report of an opened model: `config.json`'s options and metrics where it has them, no history.
fn report(opened: &OpenedModel, mode: RunMode) -> TrainingReport {
    let k = opened.labels.len();
    let config = opened.config.as_ref().unwrap_or(&Value::Null);
    let metrics = &config["metrics"];
    let number = |v: &Value| v.as_f64().map(|x| x as f32);
    let count = |v: &Value| v.as_u64().map(|x| x as usize).unwrap_or(0);
    let per_class = opened
        .labels
        .iter()
        .map(|l| number(&metrics["per_class_val_accuracy"][l]).unwrap_or(0.0))
        .collect();
    let best = EpochMetrics {
        epoch: count(&metrics["best_epoch"]).saturating_sub(1),
        train_loss: number(&metrics["train_loss"]).unwrap_or(0.0),
        train_accuracy: number(&metrics["train_accuracy"]).unwrap_or(0.0),
        val_loss: number(&metrics["val_loss"]).unwrap_or(0.0),
        val_accuracy: number(&metrics["val_accuracy"]).unwrap_or(0.0),
    };
    TrainingReport {
        labels: opened.labels.clone(),
        options: serde_json::from_value::<TrainOptions>(config["training_options"].clone()).unwrap_or_default(),
        history: Vec::new(),
        val_loss: best.val_loss,
        val_accuracy: best.val_accuracy,
        best,
        confusion: ConfusionMatrix::new(k),
        per_class_accuracy: per_class,
        stop_reason: "opened from a file".into(),
        num_train: count(&config["num_train"]),
        num_val: count(&config["num_val"]),
        timings: Default::default(),
        mode,
        runs: Vec::new(),
        explanation: None,
        predictions: Vec::new(),
        // The exporter's "none of these" threshold, where its config.json says.
        none_threshold: config["none_of_these"]["threshold"].as_f64().map(|t| t as f32),
    }
}

impl OpenedModel {
    /// The kept model the app holds for this file, against the shipped backbone `shipped`.
    pub fn to_trained(&self, shipped: &[u8]) -> Result<Trained, OpenError> {
        let delta = delta_against(&self.bytes, shipped)?;
        // A merged LoRA cannot be split back into adapters: a changed backbone counts as trained in full.
        let mode = if delta.convs.is_empty() {
            RunMode::Head
        } else {
            RunMode::LastBlocks
        };
        Ok(Trained {
            head: self.head.clone(),
            report: report(self, mode),
            delta,
        })
    }
}
