//! Try it: the trained model on one new image. [`exported_model`] makes the very bytes of the
//! `model.safetensors` download (fine-tuned convs merged); [`Predictor`] loads those bytes through the ordinary
//! loader and runs them on prepared pixels (the preprocessing training uses), so what the page shows is what
//! the exported file does.

#[cfg(feature = "ml")]
use burn::tensor::Device;
use image::{DynamicImage, RgbaImage};
use serde::{Deserialize, Serialize};

use crate::export::{self, ExportError, ExportMetadata};
#[cfg(feature = "ml")]
use crate::head::metrics::softmax;
#[cfg(feature = "ml")]
use crate::model::embed::input_tensor;
#[cfg(feature = "ml")]
use crate::model::{EfficientNetLite0, IMAGENET_CLASSES, imagenet, load_efficientnet};
#[cfg(feature = "ml")]
use crate::preprocess::IMAGE_SIZE;
use crate::preprocess::{crop_and_resize, to_rgb_over_white};
use crate::train::Trained;

/// The `model.safetensors` of a trained model: the shipped backbone (`backbone`: its weights file) with the
/// fine-tuned changes merged in, and the new head. The download, the project file and Try it all use this.
pub fn exported_model(backbone: &[u8], trained: &Trained) -> Result<Vec<u8>, ExportError> {
    let meta = ExportMetadata::from_report(&trained.report);
    export::merged_model_safetensors(backbone, &trained.delta, &trained.head, &meta)
}

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProbability {
    pub label: String,
    pub probability: f32,
}

/// Every class with its probability, the most likely first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub classes: Vec<ClassProbability>,
}

impl Prediction {
    pub fn top(&self) -> Option<&ClassProbability> {
        self.classes.first()
    }
}

/// An exported model built on a device, with its labels.
#[cfg(feature = "ml")]
pub struct Predictor {
    model: EfficientNetLite0,
    labels: Vec<String>,
}

#[cfg(feature = "ml")]
impl Predictor {
    /// The pretrained network with its ImageNet classifier (`weights`: the shipped weights file): what the
    /// backbone recognises before any fine-tuning.
    pub fn imagenet(weights: &[u8], device: &Device) -> Result<Self, String> {
        let model = load_efficientnet(weights, device).map_err(|e| e.to_string())?;
        if model.num_classes() != IMAGENET_CLASSES {
            return Err("the model has no ImageNet head".into());
        }
        let labels = (0..IMAGENET_CLASSES)
            .map(|i| imagenet::class_name(i).unwrap_or("?").to_string())
            .collect();
        Ok(Self { model, labels })
    }

    /// Builds the network of a `model.safetensors` (ours: the labels come from its metadata).
    pub fn load(model_safetensors: &[u8], device: &Device) -> Result<Self, String> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(model_safetensors)
            .map_err(|e| format!("the model file cannot be read: {e}"))?;
        let labels: Vec<String> = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("labels"))
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or("the model file has no list of labels in its metadata")?;
        let model = load_efficientnet(model_safetensors, device).map_err(|e| e.to_string())?;
        if model.num_classes() != labels.len() {
            return Err(format!(
                "the model has {} outputs but {} labels",
                model.num_classes(),
                labels.len()
            ));
        }
        Ok(Self { model, labels })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The network (the int8 TFLite export calibrates on it).
    pub fn network(&self) -> &EfficientNetLite0 {
        &self.model
    }

    /// The logits of one prepared image (224×224×3 RGB, as `preprocess::prepare_rgb` makes).
    pub async fn logits(&self, pixels: &[u8], device: &Device) -> Result<Vec<f32>, String> {
        self.logits_batch(&[pixels], device).await
    }

    /// The logits of prepared images in one forward pass: `images.len()` rows of one logit per label.
    pub async fn logits_batch(&self, images: &[&[u8]], device: &Device) -> Result<Vec<f32>, String> {
        let expected = IMAGE_SIZE * IMAGE_SIZE * 3;
        if let Some(bad) = images.iter().find(|p| p.len() != expected) {
            return Err(format!("a prepared image has {expected} bytes, not {}", bad.len()));
        }
        let logits = self.model.forward(input_tensor(images, device));
        logits
            .into_data_async()
            .await
            .map_err(|e| format!("reading the logits: {e:?}"))?
            .try_to_vec::<f32>()
            .map_err(|e| format!("reading the logits: {e:?}"))
    }

    /// Every class's probability for one prepared image.
    pub async fn predict(&self, pixels: &[u8], device: &Device) -> Result<Prediction, String> {
        let probabilities = softmax(&self.logits(pixels, device).await?);
        let mut classes: Vec<ClassProbability> = self
            .labels
            .iter()
            .zip(probabilities)
            .map(|(label, probability)| ClassProbability {
                label: label.clone(),
                probability,
            })
            .collect();
        classes.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        Ok(Prediction { classes })
    }
}

/// A camera frame (RGBA, `width`×`height`) prepared as training prepares a file: alpha over white, centre
/// square crop, bicubic resize to 224.
pub fn prepare_frame(width: u32, height: u32, rgba: Vec<u8>) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 {
        return Err(format!("the frame has no pixels ({width}×{height})"));
    }
    let image = RgbaImage::from_raw(width, height, rgba)
        .ok_or_else(|| format!("the frame's pixels do not make {width}×{height} RGBA"))?;
    Ok(crop_and_resize(&to_rgb_over_white(DynamicImage::ImageRgba8(image))).into_raw())
}
