//! `model.onnx`: the exported `model.safetensors` as an ONNX graph (opset 13), for ONNX Runtime (Python, C++,
//! the browser's onnxruntime-web), tract and the rest. The weights are exactly the ones the Rust loader builds:
//! each BN folded into its conv by the loader's own `folded_conv` (f64, one f32 cast), TF-SAME padding as the
//! conv's asymmetric `pads`, ReLU6 as `Clip(0, 6)`, the mean over H×W as `ReduceMean`, the head as `Gemm`s.
//!
//! Input `input`: float32 [batch, 3, 224, 224], the preprocessed image (`PREPROCESSING`: upright by its EXIF
//! orientation, RGB with alpha over white, centre square
//! crop, bicubic resize to 224, `(u8 - 127) / 128`, NCHW), or with [`OnnxInput::Pixels`] the 0–255 pixel
//! values, the normalisation then being the graph's first two nodes. Outputs: `logits` [batch, K] and
//! `embedding` [batch, 1280]. The labels and the preprocessing are in the model's metadata.

mod proto;

use super::ExportError;
use crate::model::blocks::same_padding;
use crate::model::tensor_file::{FoldedConv, folded_conv};
use crate::model::{BLOCKS, EMBEDDING_DIM, TensorFile, WeightsError};
use crate::preprocess::IMAGE_SIZE;
use proto::{Attr, Dim, Message, entry, float_tensor, float_value_info, node};

/// No padding (the 1×1 convs).
const VALID: [usize; 4] = [0; 4];

/// ONNX IR version 7 goes with opset 13 (Clip's bounds as inputs, ReduceMean's axes as an attribute).
const IR_VERSION: i64 = 7;
pub const OPSET: i64 = 13;

/// What the graph takes as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnnxInput {
    /// The preprocessed tensor, `(u8 - 127) / 128` already applied (what the app's preprocessing gives).
    #[default]
    Preprocessed,
    /// Pixel values 0–255 as float32 (RGB, cropped and resized); the graph normalises them.
    Pixels,
}

struct Graph<'f> {
    file: &'f TensorFile<'f>,
    nodes: Vec<Message>,
    initializers: Vec<Message>,
}

impl Graph<'_> {
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], output: &str, attrs: &[Attr]) {
        self.nodes.push(node(op, name, inputs, &[output], attrs));
    }

    fn init(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        self.initializers.push(float_tensor(name, dims, values));
    }

    /// Conv with its BN folded in (as the loader folds it) + optional ReLU6; returns the output's name.
    fn conv_bn(
        &mut self,
        prefix: &str,
        x: &str,
        shape: [usize; 4],
        stride: usize,
        padding: [usize; 4],
        relu6: bool,
    ) -> Result<String, WeightsError> {
        let FoldedConv { weight, bias, .. } = folded_conv(self.file, prefix, shape)?;
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        self.init(&w, &shape, &weight);
        self.init(&b, &shape[..1], &bias);
        let [top, left, bottom, right] = padding;
        // Depthwise convs have one input channel per group ([hidden, 1, k, k]); the others one group.
        let groups = if shape[1] == 1 { shape[0] } else { 1 };
        let y = format!("{prefix}.conv");
        let pads = [top, left, bottom, right].map(|p| p as i64);
        let kernel = [shape[2] as i64, shape[3] as i64];
        let strides = [stride as i64; 2];
        self.node(
            "Conv",
            &y,
            &[x, &w, &b],
            &y,
            &[
                Attr::Int("group", groups as i64),
                Attr::Ints("kernel_shape", &kernel),
                Attr::Ints("strides", &strides),
                Attr::Ints("pads", &pads),
            ],
        );
        if !relu6 {
            return Ok(y);
        }
        let out = format!("{prefix}.relu6");
        self.node("Clip", &out, &[&y, "relu6.min", "relu6.max"], &out, &[]);
        Ok(out)
    }

    /// `classifier.weight` [out, in] as a Gemm (`y = x Wᵀ + b`, PyTorch's layout); returns (output, out size).
    fn dense(&mut self, prefix: &str, x: &str, d_in: usize) -> Result<(String, usize), WeightsError> {
        let name = format!("{prefix}.weight");
        let (shape, weight) = self.file.f32_any_shape(&name)?;
        if shape.len() != 2 || shape[1] != d_in || shape[0] == 0 {
            return Err(WeightsError::Shape {
                name,
                expected: vec![0, d_in],
                found: shape,
            });
        }
        let d_out = shape[0];
        let bias = self.file.f32(&format!("{prefix}.bias"), &[d_out])?;
        let b = format!("{prefix}.bias");
        self.init(&name, &shape, &weight);
        self.init(&b, &[d_out], &bias);
        let y = format!("{prefix}.gemm");
        self.node("Gemm", &y, &[x, &name, &b], &y, &[Attr::Int("transB", 1)]);
        Ok((y, d_out))
    }
}

/// The `__metadata__` of a `model.safetensors` (labels, preprocessing…), sorted, for the ONNX model's own.
fn metadata_of(bytes: &[u8]) -> Vec<(String, String)> {
    let Ok((_, metadata)) = safetensors::SafeTensors::read_metadata(bytes) else {
        return Vec::new();
    };
    let mut entries: Vec<(String, String)> = metadata.metadata().clone().unwrap_or_default().into_iter().collect();
    entries.sort();
    entries
}

/// The ONNX model of an exported `model.safetensors` (or of any file with its names, e.g. the shipped one).
pub fn model_onnx(model_safetensors: &[u8], input: OnnxInput) -> Result<Vec<u8>, ExportError> {
    let file = TensorFile::parse(model_safetensors)?;
    let mut g = Graph {
        file: &file,
        nodes: Vec::new(),
        initializers: Vec::new(),
    };
    g.init("relu6.min", &[], &[0.0]);
    g.init("relu6.max", &[], &[6.0]);
    let mut x = "input".to_string();
    if input == OnnxInput::Pixels {
        g.init("normalise.mean", &[], &[127.0]);
        g.init("normalise.std", &[], &[128.0]);
        g.node(
            "Sub",
            "normalise.sub",
            &["input", "normalise.mean"],
            "normalise.sub",
            &[],
        );
        g.node(
            "Div",
            "normalise.div",
            &["normalise.sub", "normalise.std"],
            "normalise",
            &[],
        );
        x = "normalise".into();
    }
    let stem_pad = same_padding(IMAGE_SIZE, 3, 2);
    x = g.conv_bn("stem", &x, [32, 3, 3, 3], 2, stem_pad, true)?;
    for (i, spec) in BLOCKS.iter().enumerate() {
        let hidden = spec.hidden();
        let mut h = x.clone();
        if spec.expand != 1 {
            let shape = [hidden, spec.cin, 1, 1];
            h = g.conv_bn(&format!("blocks.{i}.expand"), &h, shape, 1, VALID, true)?;
        }
        let pad = same_padding(spec.size_in, spec.kernel, spec.stride);
        let dw_shape = [hidden, 1, spec.kernel, spec.kernel];
        h = g.conv_bn(&format!("blocks.{i}.dw"), &h, dw_shape, spec.stride, pad, true)?;
        let project_shape = [spec.cout, hidden, 1, 1];
        let project = format!("blocks.{i}.project");
        h = g.conv_bn(&project, &h, project_shape, 1, VALID, false)?;
        if spec.residual() {
            let sum = format!("blocks.{i}.add");
            g.node("Add", &sum, &[&x, &h], &sum, &[]);
            h = sum;
        }
        x = h;
    }
    let head_shape = [EMBEDDING_DIM, 320, 1, 1];
    x = g.conv_bn("head", &x, head_shape, 1, VALID, true)?;
    g.node(
        "ReduceMean",
        "pool",
        &[&x],
        "embedding",
        &[Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
    );
    let (last, classes) = if file.contains("classifier.weight") {
        g.dense("classifier", "embedding", EMBEDDING_DIM)?
    } else if file.contains("classifier.0.weight") {
        // nn.Sequential(Linear, ReLU, Dropout, Linear): dropout is the identity at inference.
        let (hidden, units) = g.dense("classifier.0", "embedding", EMBEDDING_DIM)?;
        g.node("Relu", "classifier.1", &[&hidden], "classifier.1", &[]);
        g.dense("classifier.3", "classifier.1", units)?
    } else {
        return Err(WeightsError::Missing("classifier.weight".into()).into());
    };
    g.node("Identity", "logits", &[&last], "logits", &[]);

    let graph = g.nodes.into_iter().fold(Message::new(), |m, n| m.message(1, n));
    let graph = graph.string(2, "ajuste_efficientnet_lite0");
    let graph = g.initializers.into_iter().fold(graph, |m, t| m.message(5, t));
    let side = Dim::Fixed(IMAGE_SIZE);
    let graph = graph
        .message(
            11,
            float_value_info(
                "input",
                &[Dim::Named("batch"), Dim::Fixed(3), side, Dim::Fixed(IMAGE_SIZE)],
            ),
        )
        .message(
            12,
            float_value_info("logits", &[Dim::Named("batch"), Dim::Fixed(classes)]),
        )
        .message(
            12,
            float_value_info("embedding", &[Dim::Named("batch"), Dim::Fixed(EMBEDDING_DIM)]),
        );
    let input_doc = match input {
        OnnxInput::Preprocessed => "preprocessed: (u8 - 127) / 128, NCHW float32",
        OnnxInput::Pixels => "pixels: u8 values 0..255 as float32, NCHW (normalised inside the graph)",
    };
    let mut props = metadata_of(model_safetensors);
    props.push(("input".into(), input_doc.into()));
    let model = Message::new()
        .int(1, IR_VERSION)
        .string(2, "ajuste")
        .string(3, env!("CARGO_PKG_VERSION"))
        .string(
            6,
            "EfficientNet-Lite0 fine-tuned with Ajuste: input [batch,3,224,224] -> logits [batch,K], embedding [batch,1280]",
        )
        .message(7, graph)
        .message(8, Message::new().string(1, "").int(2, OPSET));
    let model = props.iter().fold(model, |m, (k, v)| m.message(14, entry(k, v)));
    Ok(model.into_bytes())
}
