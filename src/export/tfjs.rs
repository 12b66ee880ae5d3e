//! *Download for Teachable Machine / TF.js*: the exported `model.safetensors` as a TF.js Layers model
//! (`model.json` + `weights.bin`) with the `metadata.json` that `@teachablemachine/image` reads, so that code
//! written for a Teachable Machine image model (`tmImage.load(modelURL, metadataURL)`, ml5's `imageClassifier`)
//! runs the fine-tuned EfficientNet-Lite0 unchanged.
//!
//! The network is the one the Rust loader builds (`read_backbone`: every BN folded into its conv in f64, one f32
//! cast), written as Keras layers, channels last: `InputLayer` [224, 224, 3], `Conv2D` and `DepthwiseConv2D` with
//! `padding: "same"` (TF's rule: the model's own padding, see `keras::keras_padding`; an explicit
//! `ZeroPadding2D` + `"valid"` would be written wherever the two differed), `ReLU` with `max_value` 6, `Add`,
//! `GlobalAveragePooling2D`, `Dense` and a softmax, as Teachable Machine's models end: `predict` gives the
//! probabilities. Weights NCHW → NHWC (`[kh, kw, c_in, c_out]`, depthwise `[kh, kw, c, 1]`, dense `[in, out]`).
//!
//! The input is the one `tmImage` gives a model: the centre square at 224×224, `x / 127 − 1` (its `capture`).
//! Ours is `(x − 127) / 128`, the same numbers times 127/128 with no offset, so the factor is folded into the
//! first conv's weights (exactly: the zeros it pads with stay zeros in both).

pub mod keras;

use serde_json::json;

use super::{ExportError, bundle_zip};
use crate::model::blocks::same_padding;
use crate::model::tensor_file::FoldedConv;
use crate::model::{BLOCKS, EMBEDDING_DIM, imagenet, read_backbone};
use crate::preprocess::IMAGE_SIZE;
use keras::{Conv, Keras, keras_padding};

/// The TF.js version Teachable Machine's image library is made for (its peer dependency, what its own snippet
/// loads); the end-to-end test loads the export with these versions (package.json).
pub const TFJS_VERSION: &str = "1.3.1";
/// `@teachablemachine/image`'s package name and the version it reports (`tmImage.version` of 0.8.5).
pub const TM_PACKAGE: &str = "@teachablemachine/image";
pub const TM_PACKAGE_VERSION: &str = "0.8.4-alpha2";
/// The zip the page downloads.
pub const TM_ZIP: &str = "teachable-machine.zip";
/// The file names a TM sketch loads (`URL + "model.json"`, `URL + "metadata.json"`; `weights.bin` by the first).
pub const MODEL_JSON: &str = "model.json";
pub const WEIGHTS_BIN: &str = "weights.bin";
pub const METADATA_JSON: &str = "metadata.json";

/// `tmImage`'s input `x / 127 − 1` times this is ours, `(x − 127) / 128`.
pub const TM_TO_OURS: f64 = 127.0 / 128.0;
/// ReLU6.
const RELU_MAX: f32 = 6.0;

/// The three files of a TF.js / Teachable Machine model.
#[derive(Debug, Clone, PartialEq)]
pub struct TfjsModel {
    pub model_json: String,
    pub weights_bin: Vec<u8>,
    pub metadata_json: String,
}

impl TfjsModel {
    /// Adds the "none of these" threshold to `metadata.json` (`userMetadata.noneOfTheseThreshold`, a top-class
    /// probability below which an app should answer no class; `model.getMetadata()` in tmImage).
    pub fn with_none_of_these(mut self, threshold: f32) -> Self {
        if let Ok(mut metadata) = serde_json::from_str::<serde_json::Value>(&self.metadata_json) {
            // The f32 as its shortest decimal (0.37, not 0.3700000047683716).
            let shortest = threshold.to_string().parse::<f64>().unwrap_or(f64::from(threshold));
            metadata["userMetadata"]["noneOfTheseThreshold"] = json!(shortest);
            self.metadata_json = serde_json::to_string_pretty(&metadata).unwrap_or(self.metadata_json);
        }
        self
    }

    /// (name, bytes) of `model.json`, `weights.bin` and `metadata.json`.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (MODEL_JSON.into(), self.model_json.clone().into_bytes()),
            (WEIGHTS_BIN.into(), self.weights_bin.clone()),
            (METADATA_JSON.into(), self.metadata_json.clone().into_bytes()),
        ]
    }

    /// The three files in one zip, at its top level (unzipped, the folder a sketch's `URL` names).
    pub fn zip(&self) -> Result<Vec<u8>, ExportError> {
        bundle_zip(&self.files())
    }
}

/// The first conv's weights for `tmImage`'s input: `w · 127/128` (f64, one f32 cast), bias unchanged.
pub fn fold_tm_input(weight: &[f32]) -> Vec<f32> {
    weight.iter().map(|&w| (w as f64 * TM_TO_OURS) as f32).collect()
}

/// The labels in a `model.safetensors`' metadata; without any, ImageNet's names for a 1000-class model (the
/// shipped weights), else Teachable Machine's "Class 1", "Class 2"…
fn labels_of(model_safetensors: &[u8], classes: usize) -> Result<Vec<String>, ExportError> {
    let stored: Option<Vec<String>> = safetensors::SafeTensors::read_metadata(model_safetensors)
        .ok()
        .and_then(|(_, meta)| meta.metadata().as_ref()?.get("labels").cloned())
        .and_then(|labels| serde_json::from_str(&labels).ok());
    let labels = stored.unwrap_or_else(|| {
        (0..classes)
            .map(|i| match imagenet::class_name(i).filter(|_| classes == 1000) {
                Some(name) => name.to_string(),
                None => format!("Class {}", i + 1),
            })
            .collect()
    });
    if labels.len() != classes {
        return Err(ExportError::Write(format!(
            "the model has {classes} outputs but {} labels",
            labels.len()
        )));
    }
    Ok(labels)
}

/// `metadata.json`: the fields `tmImage.load` reads (`labels`, `imageSize`, and the versions and names a
/// Teachable Machine export carries). No time stamp, so the same model always gives the same bytes (`tmImage`
/// fills one in when it loads the file).
pub fn tm_metadata(labels: &[String]) -> String {
    let metadata = json!({
        "tfjsVersion": TFJS_VERSION,
        "packageVersion": TM_PACKAGE_VERSION,
        "packageName": TM_PACKAGE,
        "modelName": "ajuste-efficientnet-lite0",
        "labels": labels,
        "imageSize": IMAGE_SIZE,
        "grayscale": false,
        "userMetadata": {
            "createdBy": "Ajuste",
            "architecture": "EfficientNet-Lite0 (BN folded), fine-tuned; ends with a softmax",
            "input": "tmImage's: the centre square at 224x224, x / 127 - 1, NHWC",
            "source": super::SOURCE,
        },
    });
    serde_json::to_string_pretty(&metadata).unwrap_or_default()
}

fn conv<'a>(folded: &'a FoldedConv, weight: &'a [f32], stride: usize) -> Conv<'a> {
    Conv {
        shape: folded.shape,
        weight,
        bias: &folded.bias,
        stride,
    }
}

/// The TF.js Layers model and TM metadata of an exported `model.safetensors` (or of any file with its names).
pub fn tfjs_model(model_safetensors: &[u8]) -> Result<TfjsModel, ExportError> {
    let weights = read_backbone(model_safetensors)?;
    let classes = weights.classifier.d_out;
    let labels = labels_of(model_safetensors, classes)?;
    let mut k = Keras::default();
    let input = k.input("input", [IMAGE_SIZE, IMAGE_SIZE, 3]);

    let stem = &weights.stem;
    let stem_weight = fold_tm_input(&stem.weight);
    let padding = keras_padding(same_padding(IMAGE_SIZE, 3, 2), IMAGE_SIZE, 3, 2);
    let x = k.conv("stem_conv", &input, conv(stem, &stem_weight, 2), padding, false);
    let mut x = k.relu("stem_relu", &x, RELU_MAX);
    for (i, (spec, block)) in BLOCKS.iter().zip(&weights.blocks).enumerate() {
        let mut h = x.clone();
        if let Some(expand) = &block.expand {
            let valid = keras_padding([0; 4], spec.size_in, 1, 1);
            h = k.conv(
                &format!("block{i}_expand"),
                &h,
                conv(expand, &expand.weight, 1),
                valid,
                false,
            );
            h = k.relu(&format!("block{i}_expand_relu"), &h, RELU_MAX);
        }
        let pad = same_padding(spec.size_in, spec.kernel, spec.stride);
        let padding = keras_padding(pad, spec.size_in, spec.kernel, spec.stride);
        let dw = conv(&block.dw, &block.dw.weight, spec.stride);
        h = k.conv(&format!("block{i}_dw"), &h, dw, padding, true);
        h = k.relu(&format!("block{i}_dw_relu"), &h, RELU_MAX);
        let size_out = spec.size_in.div_ceil(spec.stride);
        let valid = keras_padding([0; 4], size_out, 1, 1);
        let project = conv(&block.project, &block.project.weight, 1);
        h = k.conv(&format!("block{i}_project"), &h, project, valid, false);
        if spec.residual() {
            h = k.add(&format!("block{i}_add"), &x, &h);
        }
        x = h;
    }
    let head = &weights.head;
    let valid = keras_padding([0; 4], 7, 1, 1);
    let x = k.conv("head_conv", &x, conv(head, &head.weight, 1), valid, false);
    let x = k.relu("head_relu", &x, RELU_MAX);
    let mut x = k.global_average_pooling("embedding", &x);
    let mut d_in = EMBEDDING_DIM;
    if let Some(hidden) = &weights.hidden {
        // nn.Sequential(Linear, ReLU, Dropout, Linear): dropout is the identity at inference.
        x = k.dense("hidden", &x, (d_in, hidden.d_out), &hidden.weight, &hidden.bias, "relu");
        d_in = hidden.d_out;
    }
    let out = &weights.classifier;
    let output = k.dense("probabilities", &x, (d_in, classes), &out.weight, &out.bias, "softmax");
    let generated_by = concat!("Ajuste ", env!("CARGO_PKG_VERSION"));
    let keras_version = format!("tfjs-layers {TFJS_VERSION}");
    let (model_json, weights_bin) = k.finish(
        "ajuste_efficientnet_lite0",
        &input,
        &output,
        WEIGHTS_BIN,
        generated_by,
        &keras_version,
    );
    Ok(TfjsModel {
        model_json,
        weights_bin,
        metadata_json: tm_metadata(&labels),
    })
}
