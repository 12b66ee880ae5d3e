//! The plan (`Layer`s) as a TFLite graph: float32 as it is, or full integer (int8 weights and activations,
//! int32 biases, uint8 input and output).

use serde::{Deserialize, Serialize};

use super::graph::{Activation, Dtype, Graph, OpCode, Options, Quant};
use super::{Kind, Layer};
use crate::export::ExportError;
use crate::preprocess::IMAGE_SIZE;

/// The range of every activation over the calibration images (index 0 the input, `i + 1` the output of layer
/// `i` of the plan), and how many images they were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranges {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
    pub images: usize,
}

/// The input as `(u8 - 127) / 128`: uint8 with zero point 127 is exactly that; int8 the same values shifted.
pub const INPUT_SCALE: f32 = 1.0 / 128.0;
/// TFLite's int8 softmax output: scale 1/256, zero point −128 (probability = (q + 128) / 256).
const PROB_SCALE: f32 = 1.0 / 256.0;

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

/// A conv's weight in TFLite's layout: CONV_2D `[out, kh, kw, in]`, DEPTHWISE_CONV_2D `[1, kh, kw, channels]`,
/// from PyTorch's `[out, in/groups, kh, kw]`; the same element order for any element type.
fn conv_layout<T: Copy + Default>(layer: &Layer, w: &[T]) -> (Vec<usize>, Vec<T>) {
    let [o, i, kh, kw] = [0, 1, 2, 3].map(|d| layer.weight_shape[d]);
    let mut out = vec![T::default(); w.len()];
    let depthwise = matches!(layer.kind, Kind::Conv { depthwise: true, .. });
    for oc in 0..o {
        for ic in 0..i {
            for y in 0..kh {
                for x in 0..kw {
                    let src = ((oc * i + ic) * kh + y) * kw + x;
                    let dst = if depthwise {
                        (y * kw + x) * o + oc
                    } else {
                        ((oc * kh + y) * kw + x) * i + ic
                    };
                    out[dst] = w[src];
                }
            }
        }
    }
    let shape = if depthwise {
        vec![1, kh, kw, o]
    } else {
        vec![o, kh, kw, i]
    };
    (shape, out)
}

fn conv_options(layer: &Layer, stride: usize, relu6: bool) -> Options {
    Options::Conv {
        same: layer.weight_shape[2] > 1,
        stride,
        act: if relu6 { Activation::Relu6 } else { Activation::None },
    }
}

fn conv_code(depthwise: bool) -> OpCode {
    if depthwise {
        OpCode::DepthwiseConv2d
    } else {
        OpCode::Conv2d
    }
}

fn dense_options(relu: bool) -> Options {
    Options::FullyConnected {
        act: if relu { Activation::Relu } else { Activation::None },
    }
}

/// The global average pool: AVERAGE_POOL_2D over the whole plane to `[1, 1, 1, C]`, then a RESHAPE to
/// `[1, C]` (MEAN would do both, but tract's TFLite front end computes it wrongly); in the int8 model both keep
/// their input's quantisation, as TFLite's int8 average pool and reshape require.
fn global_pool(g: &mut Graph, x: usize, out: usize, version: i32) {
    let [_, h, _, c] = g.tensors[x].shape[..] else {
        unreachable!("the pool's input is NHWC")
    };
    let (dtype, quant) = (g.tensors[out].dtype, g.tensors[out].quant.clone());
    let name = format!("{}.pool", g.tensors[out].name);
    let pooled = g.activation(&name, &[1, 1, 1, c], dtype, quant);
    g.op(
        OpCode::AveragePool2d,
        version,
        &[x],
        &[pooled],
        Options::Pool { filter: h },
    );
    let shape = le_bytes(&[1i32, c as i32], i32::to_le_bytes);
    let shape = g.constant(&format!("{name}.shape"), &[2], Dtype::I32, shape, None);
    g.op(
        OpCode::Reshape,
        1,
        &[pooled, shape],
        &[out],
        Options::Reshape { channels: c },
    );
}

const INPUT_SHAPE: [usize; 4] = [1, IMAGE_SIZE, IMAGE_SIZE, 3];

pub(crate) fn float_graph(layers: &[Layer]) -> Graph {
    let mut g = Graph::default();
    let f32s = |v: &[f32]| le_bytes(v, f32::to_le_bytes);
    let input = g.activation("input", &INPUT_SHAPE, Dtype::F32, None);
    let mut act = vec![input];
    for layer in layers {
        let x: Vec<usize> = layer.inputs.iter().map(|&i| act[i]).collect();
        let out = g.activation(&layer.output_name(), &layer.shape, Dtype::F32, None);
        match layer.kind {
            Kind::Conv {
                depthwise,
                stride,
                relu6,
            } => {
                let (shape, w) = conv_layout(layer, &layer.weight);
                let w = g.constant(&format!("{}.weight", layer.name), &shape, Dtype::F32, f32s(&w), None);
                let b = g.constant(
                    &format!("{}.bias", layer.name),
                    &[layer.bias.len()],
                    Dtype::F32,
                    f32s(&layer.bias),
                    None,
                );
                g.op(
                    conv_code(depthwise),
                    1,
                    &[x[0], w, b],
                    &[out],
                    conv_options(layer, stride, relu6),
                );
            }
            Kind::Dense { relu } => {
                let w = g.constant(
                    &format!("{}.weight", layer.name),
                    &layer.weight_shape,
                    Dtype::F32,
                    f32s(&layer.weight),
                    None,
                );
                let b = g.constant(
                    &format!("{}.bias", layer.name),
                    &[layer.bias.len()],
                    Dtype::F32,
                    f32s(&layer.bias),
                    None,
                );
                g.op(OpCode::FullyConnected, 1, &[x[0], w, b], &[out], dense_options(relu));
            }
            Kind::Add => g.op(OpCode::Add, 1, &x, &[out], Options::Add),
            Kind::Pool => global_pool(&mut g, x[0], out, 1),
        }
        act.push(out);
    }
    let logits = act[act.len() - 1];
    let shape = g.tensors[logits].shape.clone();
    let probs = g.activation("probabilities", &shape, Dtype::F32, None);
    g.op(OpCode::Softmax, 1, &[logits], &[probs], Options::Softmax);
    g.inputs = vec![input];
    g.outputs = vec![probs];
    g
}

/// TFLite's asymmetric int8 quantisation of a range, widened to hold 0 (so that zero padding is exact).
pub(crate) fn activation_quant(min: f32, max: f32) -> Quant {
    let (lo, mut hi) = (min.min(0.0), max.max(0.0));
    if hi - lo < 1e-6 {
        hi = lo + 1e-6;
    }
    let scale = (hi - lo) / 255.0;
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i64;
    Quant::per_tensor(scale, zero_point)
}

/// Symmetric int8 scale of values whose largest magnitude is `max_abs` (1 for all zeros: any scale is exact).
fn symmetric_scale(max_abs: f32) -> f32 {
    if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 }
}

fn quantize(w: &[f32], scale: f32) -> impl Iterator<Item = i8> + '_ {
    w.iter().map(move |&v| (v / scale).round().clamp(-127.0, 127.0) as i8)
}

/// Weights int8 with one scale per output channel (`channels` equal slices of PyTorch's layout), or one for all.
pub(crate) fn quantize_weights(w: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / channels;
    let scales: Vec<f32> = w
        .chunks(per)
        .map(|c| symmetric_scale(c.iter().fold(0f32, |m, v| m.max(v.abs()))))
        .collect();
    let q = w
        .chunks(per)
        .zip(&scales)
        .flat_map(|(c, &s)| quantize(c, s).collect::<Vec<_>>())
        .collect();
    (q, scales)
}

/// Biases int32 at the scale of the product `input · weight` (zero point 0), as TFLite requires.
pub(crate) fn quantize_bias(b: &[f32], input_scale: f32, weight_scales: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let scales: Vec<f32> = (0..b.len())
        .map(|c| input_scale * weight_scales[if weight_scales.len() == 1 { 0 } else { c }])
        .collect();
    let q = b
        .iter()
        .zip(&scales)
        .map(|(&v, &s)| (v as f64 / s as f64).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32)
        .collect();
    (q, scales)
}

fn per_channel(scales: Vec<f32>, dim: i32) -> Quant {
    let zero_point = vec![0; scales.len()];
    Quant {
        scale: scales,
        zero_point,
        dim,
    }
}

pub(crate) fn int8_graph(layers: &[Layer], ranges: &Ranges) -> Result<Graph, ExportError> {
    if ranges.min.len() != layers.len() + 1 || ranges.max.len() != layers.len() + 1 {
        return Err(ExportError::Write(format!(
            "calibration has {} ranges for {} activations",
            ranges.min.len(),
            layers.len() + 1
        )));
    }
    let mut g = Graph::default();
    let input = g.activation(
        "input",
        &INPUT_SHAPE,
        Dtype::U8,
        Some(Quant::per_tensor(INPUT_SCALE, 127)),
    );
    let input_q = Quant::per_tensor(INPUT_SCALE, -1);
    let first = g.activation("input_int8", &INPUT_SHAPE, Dtype::I8, Some(input_q.clone()));
    g.op(OpCode::Quantize, 2, &[input], &[first], Options::None);
    let mut act = vec![first];
    let mut quants = vec![input_q];
    for (i, layer) in layers.iter().enumerate() {
        let x: Vec<usize> = layer.inputs.iter().map(|&i| act[i]).collect();
        let s_in = quants[layer.inputs[0]].scale[0];
        let q = match layer.kind {
            Kind::Pool => quants[layer.inputs[0]].clone(),
            _ => activation_quant(ranges.min[i + 1], ranges.max[i + 1]),
        };
        let out = g.activation(&layer.output_name(), &layer.shape, Dtype::I8, Some(q.clone()));
        let (wname, bname) = (format!("{}.weight", layer.name), format!("{}.bias", layer.name));
        match layer.kind {
            Kind::Conv {
                depthwise,
                stride,
                relu6,
            } => {
                let (wq, scales) = quantize_weights(&layer.weight, layer.weight_shape[0]);
                let (shape, wq) = conv_layout(layer, &wq);
                let (bq, bscales) = quantize_bias(&layer.bias, s_in, &scales);
                let dim = if depthwise { 3 } else { 0 };
                let wbytes = wq.iter().map(|&v| v as u8).collect();
                let w = g.constant(&wname, &shape, Dtype::I8, wbytes, Some(per_channel(scales, dim)));
                let bbytes = le_bytes(&bq, i32::to_le_bytes);
                let b = g.constant(&bname, &[bq.len()], Dtype::I32, bbytes, Some(per_channel(bscales, 0)));
                g.op(
                    conv_code(depthwise),
                    3,
                    &[x[0], w, b],
                    &[out],
                    conv_options(layer, stride, relu6),
                );
            }
            Kind::Dense { relu } => {
                let (wq, scales) = quantize_weights(&layer.weight, 1);
                let (bq, bscales) = quantize_bias(&layer.bias, s_in, &scales);
                let wbytes = wq.iter().map(|&v| v as u8).collect();
                let w = g.constant(
                    &wname,
                    &layer.weight_shape,
                    Dtype::I8,
                    wbytes,
                    Some(per_channel(scales, 0)),
                );
                let bbytes = le_bytes(&bq, i32::to_le_bytes);
                let b = g.constant(&bname, &[bq.len()], Dtype::I32, bbytes, Some(per_channel(bscales, 0)));
                g.op(OpCode::FullyConnected, 4, &[x[0], w, b], &[out], dense_options(relu));
            }
            Kind::Add => g.op(OpCode::Add, 2, &x, &[out], Options::Add),
            Kind::Pool => global_pool(&mut g, x[0], out, 2),
        }
        act.push(out);
        quants.push(q);
    }
    let logits = act[act.len() - 1];
    let shape = g.tensors[logits].shape.clone();
    let probs_q = Quant::per_tensor(PROB_SCALE, -128);
    let probs_i8 = g.activation("probabilities_int8", &shape, Dtype::I8, Some(probs_q));
    g.op(OpCode::Softmax, 2, &[logits], &[probs_i8], Options::Softmax);
    let probs = g.activation(
        "probabilities",
        &shape,
        Dtype::U8,
        Some(Quant::per_tensor(PROB_SCALE, 0)),
    );
    g.op(OpCode::Quantize, 2, &[probs_i8], &[probs], Options::None);
    g.inputs = vec![input];
    g.outputs = vec![probs];
    Ok(g)
}
