//! `model.tflite` (float32) and `model_int8.tflite` (full integer), for TFLite / LiteRT and MediaPipe's
//! ImageClassifier, written on the device from the exported `model.safetensors` (the same input as
//! `model_onnx`): the network walked as `onnx.rs` walks it, each BN folded into its conv by the loader's own
//! `folded_conv`, written with a small FlatBuffers writer (`tflite/flatbuf.rs`) to the TFLite schema
//! (`tflite/graph.rs`).
//!
//! - Input `input` [1,224,224,3] NHWC, RGB, the image prepared as ours (upright, alpha over white, centre square
//!   crop, bicubic resize to 224). Float: `(u8 - 127) / 128` as float32 (the metadata's NormalizationOptions:
//!   mean 127, std 128, which is how MediaPipe normalises). Int8: the pixels themselves as uint8, quantised with
//!   scale 1/128 and zero point 127, i.e. exactly our `(u8 - 127) / 128` (MediaPipe takes uint8 or float32
//!   image inputs, not int8), then a QUANTIZE to int8.
//! - Ops: CONV_2D and DEPTHWISE_CONV_2D with TFLite's SAME padding (TF's: the extra row and column at the
//!   bottom/right of the stride-2 convs, exactly the padding of our model, so no PAD op is needed) or VALID (the
//!   1×1 convs), ReLU6 fused where the model has it, ADD for the residuals, AVERAGE_POOL_2D over the 7×7 plane
//!   and RESHAPE to `[1, 1280]` (the embedding), FULLY_CONNECTED (a ReLU fused in the hidden layer of an MLP
//!   head), SOFTMAX.
//! - One output `probabilities` [1,K] (MediaPipe takes each output as a classification head): float32, or
//!   uint8 with scale 1/256 (probability = q / 256) in the int8 model.
//! - The labels and the normalisation in the TFLite metadata (`tflite/metadata.rs`): MediaPipe's
//!   ImageClassifier needs the NormalizationOptions for a float input and reads the class names from the
//!   labels file packed in the model (a zip after the FlatBuffer, as TFLite's metadata writer packs it).
//!
//! The int8 model (`tflite/quant.rs`): weights int8 symmetric per output channel (convs) or per tensor (the
//! dense layers, as TFLite's converter does), biases int32 at scale `s_in · s_w`, activations int8 asymmetric
//! per tensor from the min/max of each activation over calibration images (`tflite/calibrate.rs`: the float
//! model run on the burn device given, on at most [`CALIBRATION_IMAGES`] of the user's training images).

#[cfg(feature = "ml")]
mod calibrate;
mod flatbuf;
mod graph;
mod metadata;
mod quant;

#[cfg(feature = "ml")]
pub use calibrate::calibrate;
pub use quant::Ranges;

use super::ExportError;
use crate::model::tensor_file::{FoldedConv, folded_conv};
use crate::model::{BLOCKS, EMBEDDING_DIM, TensorFile, WeightsError};
use crate::preprocess::IMAGE_SIZE;

/// At most this many images calibrate the int8 model (spread over the ones given): enough for stable ranges of
/// a classifier's activations (TFLite's converter guide suggests about 100–500), a few seconds of inference.
pub const CALIBRATION_IMAGES: usize = 100;

/// Which of `n` images calibrate: all of them up to [`CALIBRATION_IMAGES`], else that many spread evenly
/// (the training images come class after class, so every class is represented).
pub fn calibration_subset(n: usize) -> Vec<usize> {
    if n <= CALIBRATION_IMAGES {
        return (0..n).collect();
    }
    (0..CALIBRATION_IMAGES).map(|i| i * n / CALIBRATION_IMAGES).collect()
}

/// What a layer computes (each takes the activations `inputs` and makes one new activation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Conv {
        depthwise: bool,
        stride: usize,
        relu6: bool,
    },
    Dense {
        relu: bool,
    },
    Add,
    Pool,
}

/// One layer of the plan: weights in PyTorch's layout (conv `[out, in/groups, k, k]`, dense `[out, in]`).
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub name: String,
    pub kind: Kind,
    pub inputs: Vec<usize>,
    pub weight_shape: Vec<usize>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// The output's shape, NHWC (or `[1, C]`).
    pub shape: Vec<usize>,
}

impl Layer {
    /// The name of the layer's output tensor: the layer's, but `logits` for the classifier's output and
    /// `classifier.0.relu` for an MLP head's hidden layer (tract names a dense layer's bias `{output}.bias`).
    pub fn output_name(&self) -> String {
        match self.kind {
            Kind::Dense { relu: false } => "logits".into(),
            Kind::Dense { relu: true } => format!("{}.relu", self.name),
            _ => self.name.clone(),
        }
    }
}

/// The network as a list of layers. Activation 0 is the input; layer `i` makes activation `i + 1` (the order
/// calibration records its ranges in).
pub(crate) fn plan(file: &TensorFile) -> Result<Vec<Layer>, WeightsError> {
    let mut layers: Vec<Layer> = Vec::new();
    let conv = |layers: &mut Vec<Layer>,
                name: String,
                input: usize,
                shape: [usize; 4],
                stride: usize,
                size: usize,
                relu6: bool| {
        let FoldedConv { weight, bias, .. } = folded_conv(file, &name, shape)?;
        layers.push(Layer {
            name,
            kind: Kind::Conv {
                depthwise: shape[1] == 1,
                stride,
                relu6,
            },
            inputs: vec![input],
            weight_shape: shape.to_vec(),
            weight,
            bias,
            shape: vec![1, size, size, shape[0]],
        });
        Ok::<usize, WeightsError>(layers.len())
    };
    let mut x = conv(&mut layers, "stem".into(), 0, [32, 3, 3, 3], 2, IMAGE_SIZE / 2, true)?;
    for (i, spec) in BLOCKS.iter().enumerate() {
        let (hidden, size_out) = (spec.hidden(), spec.size_in.div_ceil(spec.stride));
        let mut h = x;
        if spec.expand != 1 {
            let shape = [hidden, spec.cin, 1, 1];
            h = conv(
                &mut layers,
                format!("blocks.{i}.expand"),
                h,
                shape,
                1,
                spec.size_in,
                true,
            )?;
        }
        let dw = [hidden, 1, spec.kernel, spec.kernel];
        h = conv(
            &mut layers,
            format!("blocks.{i}.dw"),
            h,
            dw,
            spec.stride,
            size_out,
            true,
        )?;
        let project = [spec.cout, hidden, 1, 1];
        h = conv(
            &mut layers,
            format!("blocks.{i}.project"),
            h,
            project,
            1,
            size_out,
            false,
        )?;
        if spec.residual() {
            layers.push(Layer {
                name: format!("blocks.{i}.add"),
                kind: Kind::Add,
                inputs: vec![x, h],
                weight_shape: Vec::new(),
                weight: Vec::new(),
                bias: Vec::new(),
                shape: vec![1, size_out, size_out, spec.cout],
            });
            h = layers.len();
        }
        x = h;
    }
    let size = BLOCKS[15].size_in;
    x = conv(&mut layers, "head".into(), x, [EMBEDDING_DIM, 320, 1, 1], 1, size, true)?;
    layers.push(Layer {
        name: "embedding".into(),
        kind: Kind::Pool,
        inputs: vec![x],
        weight_shape: Vec::new(),
        weight: Vec::new(),
        bias: Vec::new(),
        shape: vec![1, EMBEDDING_DIM],
    });
    x = layers.len();
    let dense = |layers: &mut Vec<Layer>, prefix: &str, input: usize, d_in: usize, relu: bool| {
        let name = format!("{prefix}.weight");
        let (shape, weight) = file.f32_any_shape(&name)?;
        if shape.len() != 2 || shape[1] != d_in || shape[0] == 0 {
            return Err(WeightsError::Shape {
                name,
                expected: vec![0, d_in],
                found: shape,
            });
        }
        let bias = file.f32(&format!("{prefix}.bias"), &shape[..1])?;
        layers.push(Layer {
            name: prefix.into(),
            kind: Kind::Dense { relu },
            inputs: vec![input],
            shape: vec![1, shape[0]],
            weight_shape: shape,
            weight,
            bias,
        });
        Ok((layers.len(), layers[layers.len() - 1].shape[1]))
    };
    if file.contains("classifier.weight") {
        dense(&mut layers, "classifier", x, EMBEDDING_DIM, false)?;
    } else if file.contains("classifier.0.weight") {
        // nn.Sequential(Linear, ReLU, Dropout, Linear): dropout is the identity at inference.
        let (hidden, units) = dense(&mut layers, "classifier.0", x, EMBEDDING_DIM, true)?;
        dense(&mut layers, "classifier.3", hidden, units, false)?;
    } else {
        return Err(WeightsError::Missing("classifier.weight".into()));
    }
    Ok(layers)
}

/// The labels of a `model.safetensors` (its metadata's `labels`), or "class i".
fn labels_of(bytes: &[u8], classes: usize) -> Vec<String> {
    safetensors::SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().as_ref()?.get("labels").cloned())
        .and_then(|l| serde_json::from_str::<Vec<String>>(&l).ok())
        .filter(|l| l.len() == classes)
        .unwrap_or_else(|| (1..=classes).map(|i| format!("class {i}")).collect())
}

/// `model.tflite`: the float32 model of an exported `model.safetensors`, its labels in the metadata, and the
/// "none of these" threshold (a top-class probability; `TrainingReport::none_of_these`) when given.
pub fn model_tflite(model_safetensors: &[u8], none_of_these: Option<f32>) -> Result<Vec<u8>, ExportError> {
    let file = TensorFile::parse(model_safetensors)?;
    let layers = plan(&file)?;
    let classes = layers[layers.len() - 1].shape[1];
    let graph = quant::float_graph(&layers);
    let labels = labels_of(model_safetensors, classes);
    metadata::with_metadata(&graph, &labels, metadata::Input::Float, none_of_these)
}

/// `model_int8.tflite`: the full-integer model, its activations quantised with `ranges` (from [`calibrate`]);
/// the labels and the threshold as [`model_tflite`].
pub fn model_tflite_int8(
    model_safetensors: &[u8],
    ranges: &Ranges,
    none_of_these: Option<f32>,
) -> Result<Vec<u8>, ExportError> {
    let file = TensorFile::parse(model_safetensors)?;
    let layers = plan(&file)?;
    let classes = layers[layers.len() - 1].shape[1];
    let graph = quant::int8_graph(&layers, ranges)?;
    let labels = labels_of(model_safetensors, classes);
    metadata::with_metadata(&graph, &labels, metadata::Input::Uint8, none_of_these)
}
