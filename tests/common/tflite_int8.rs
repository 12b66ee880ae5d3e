//! A reference run of a full-integer `.tflite` as TFLite's integer kernels compute it (int8 values, int32
//! accumulators, each output requantised to its scale and zero point), written from the TFLite semantics, not
//! from our exporter: it reads the file back through tract-tflite's schema accessors (whose verifier checks the
//! FlatBuffer) and runs the ops our int8 model uses. The requantisation is done in f64 where TFLite uses a
//! fixed-point multiplier, so a value may differ from TFLite's by one step now and then.

use std::collections::HashMap;

use tract_tflite::tflite::{self, ActivationFunctionType, BuiltinOperator, Padding, TensorType};

/// A tensor's quantisation: per-tensor (one scale) or per channel along `dim`.
#[derive(Debug, Clone)]
pub struct Q {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub dim: usize,
}

pub fn quant(t: &tflite::Tensor) -> Q {
    let q = t.quantization().expect("a quantised tensor");
    Q {
        scale: q.scale().expect("scales").iter().collect(),
        zero_point: q.zero_point().expect("zero points").iter().collect(),
        dim: q.quantized_dimension() as usize,
    }
}

fn dims(t: &tflite::Tensor) -> Vec<usize> {
    t.shape().unwrap().iter().map(|d| d as usize).collect()
}

fn range(t: &tflite::Tensor) -> (i32, i32) {
    match t.type_() {
        TensorType::UINT8 => (0, 255),
        TensorType::INT8 => (-128, 127),
        other => panic!("{:?}: unexpected type {other:?}", t.name()),
    }
}

/// `real` as the quantised value of `out`, clamped to its type and to the fused activation.
fn requantize(real: f64, out: &Q, lo: i32, hi: i32) -> i32 {
    let q = (real / out.scale[0] as f64).round() as i64 + out.zero_point[0];
    q.clamp(lo as i64, hi as i64) as i32
}

/// The output's integer range under a fused activation (ReLU6: `[0, 6]` in its real values).
fn activation_range(t: &tflite::Tensor, q: &Q, act: ActivationFunctionType) -> (i32, i32) {
    let (lo, hi) = range(t);
    let zp = q.zero_point[0] as i32;
    let six = zp + (6.0 / q.scale[0]).round() as i32;
    match act {
        ActivationFunctionType::RELU6 => (lo.max(zp), hi.min(six)),
        ActivationFunctionType::RELU => (lo.max(zp), hi),
        _ => (lo, hi),
    }
}

/// Runs the model on one image (224×224×3 uint8, RGB): the dequantised output.
pub fn run(file: &[u8], image: &[u8]) -> Vec<f32> {
    let model = tflite::root_as_model(file).expect("the FlatBuffer verifies");
    let graph = model.subgraphs().unwrap().get(0);
    let tensors = graph.tensors().unwrap();
    let buffers = model.buffers().unwrap();
    let codes = model.operator_codes().unwrap();
    let data = |i: i32| -> Vec<u8> {
        let t = tensors.get(i as usize);
        buffers
            .get(t.buffer() as usize)
            .data()
            .map(|d| d.bytes().to_vec())
            .unwrap_or_default()
    };
    let mut values: HashMap<i32, Vec<i32>> = HashMap::new();
    let input = graph.inputs().unwrap().get(0);
    assert_eq!(tensors.get(input as usize).type_(), TensorType::UINT8);
    values.insert(input, image.iter().map(|&v| v as i32).collect());
    for op in graph.operators().unwrap() {
        let code = codes.get(op.opcode_index() as usize).builtin_code();
        let ins: Vec<i32> = op.inputs().unwrap().iter().collect();
        let out_i = op.outputs().unwrap().get(0);
        let out_t = tensors.get(out_i as usize);
        let oq = quant(&out_t);
        let x_t = tensors.get(ins[0] as usize);
        let xq = quant(&x_t);
        let x = &values[&ins[0]];
        let deq = |v: i32, q: &Q| q.scale[0] as f64 * (v as i64 - q.zero_point[0]) as f64;
        let (lo, hi) = range(&out_t);
        let y: Vec<i32> = match code {
            BuiltinOperator::QUANTIZE => x.iter().map(|&v| requantize(deq(v, &xq), &oq, lo, hi)).collect(),
            BuiltinOperator::ADD => {
                let bq = quant(&tensors.get(ins[1] as usize));
                let b = &values[&ins[1]];
                x.iter()
                    .zip(b)
                    .map(|(&u, &v)| requantize(deq(u, &xq) + deq(v, &bq), &oq, lo, hi))
                    .collect()
            }
            BuiltinOperator::RESHAPE => {
                let same = (xq.scale[0], xq.zero_point[0]) == (oq.scale[0], oq.zero_point[0]);
                assert!(same, "RESHAPE keeps its quantisation");
                x.clone()
            }
            BuiltinOperator::AVERAGE_POOL_2D => {
                let [_, h, w, c] = dims(&x_t)[..] else {
                    panic!("a pool of a 4-d tensor")
                };
                let o = op.builtin_options_as_pool_2_doptions().unwrap();
                let filter = (o.filter_height() as usize, o.filter_width() as usize);
                assert_eq!(filter, (h, w), "a global pool");
                let same = (xq.scale[0], xq.zero_point[0]) == (oq.scale[0], oq.zero_point[0]);
                assert!(same, "an int8 pool keeps its quantisation");
                (0..c)
                    .map(|ch| {
                        let sum: i64 = (0..h * w).map(|p| x[p * c + ch] as i64 - xq.zero_point[0]).sum();
                        requantize(xq.scale[0] as f64 * sum as f64 / (h * w) as f64, &oq, lo, hi)
                    })
                    .collect()
            }
            BuiltinOperator::SOFTMAX => {
                let real: Vec<f64> = x.iter().map(|&v| deq(v, &xq)).collect();
                let m = real.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = real.iter().map(|v| (v - m).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter().map(|v| requantize(v / s, &oq, lo, hi)).collect()
            }
            BuiltinOperator::FULLY_CONNECTED => {
                let (w_t, b_t) = (tensors.get(ins[1] as usize), tensors.get(ins[2] as usize));
                let (w, b, wq) = (data(ins[1]), bias(&data(ins[2])), quant(&w_t));
                let [o, i] = dims(&w_t)[..] else {
                    panic!("FC weights [out, in]")
                };
                assert_eq!(quant(&b_t).zero_point.iter().sum::<i64>(), 0);
                let act = op
                    .builtin_options_as_fully_connected_options()
                    .unwrap()
                    .fused_activation_function();
                let (lo, hi) = activation_range(&out_t, &oq, act);
                (0..o)
                    .map(|r| {
                        let acc: i64 = (0..i)
                            .map(|k| (x[k] as i64 - xq.zero_point[0]) * (w[r * i + k] as i8) as i64)
                            .sum::<i64>()
                            + b[r] as i64;
                        let s = xq.scale[0] as f64 * wq.scale[if wq.scale.len() == 1 { 0 } else { r }] as f64;
                        requantize(acc as f64 * s, &oq, lo, hi)
                    })
                    .collect()
            }
            BuiltinOperator::CONV_2D | BuiltinOperator::DEPTHWISE_CONV_2D => {
                let depthwise = code == BuiltinOperator::DEPTHWISE_CONV_2D;
                let (padding, stride, act) = if depthwise {
                    let o = op.builtin_options_as_depthwise_conv_2_doptions().unwrap();
                    (o.padding(), o.stride_w() as usize, o.fused_activation_function())
                } else {
                    let o = op.builtin_options_as_conv_2_doptions().unwrap();
                    (o.padding(), o.stride_w() as usize, o.fused_activation_function())
                };
                let w_t = tensors.get(ins[1] as usize);
                let (w, b, wq) = (data(ins[1]), bias(&data(ins[2])), quant(&w_t));
                let (lo, hi) = activation_range(&out_t, &oq, act);
                let conv = Conv {
                    input: dims(&x_t),
                    weight: dims(&w_t),
                    output: dims(&out_t),
                    stride,
                    same: padding == Padding::SAME,
                    depthwise,
                };
                conv.run(x, xq.zero_point[0] as i32, &w, &b)
                    .into_iter()
                    .enumerate()
                    .map(|(k, acc)| {
                        let c = k % conv.output[3];
                        let s = xq.scale[0] as f64 * wq.scale[c] as f64;
                        requantize(acc as f64 * s, &oq, lo, hi)
                    })
                    .collect()
            }
            other => panic!("op {other:?} is not in the reference"),
        };
        values.insert(out_i, y);
    }
    let out = graph.outputs().unwrap().get(0);
    let oq = quant(&tensors.get(out as usize));
    values[&out]
        .iter()
        .map(|&v| oq.scale[0] * (v as i64 - oq.zero_point[0]) as f32)
        .collect()
}

fn bias(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A conv in NHWC with TFLite's SAME (the extra row and column after) or VALID padding: the int32 accumulators.
struct Conv {
    input: Vec<usize>,
    weight: Vec<usize>,
    output: Vec<usize>,
    stride: usize,
    same: bool,
    depthwise: bool,
}

impl Conv {
    fn run(&self, x: &[i32], zp: i32, w: &[u8], b: &[i32]) -> Vec<i64> {
        let [_, h, wd, cin] = self.input[..] else { panic!() };
        let [_, ho, wo, cout] = self.output[..] else { panic!() };
        let (kh, kw) = (self.weight[1], self.weight[2]);
        let pad = |size: usize, out: usize, k: usize| {
            if self.same {
                ((out - 1) * self.stride + k).saturating_sub(size) / 2
            } else {
                0
            }
        };
        let (pt, pl) = (pad(h, ho, kh), pad(wd, wo, kw));
        let w: Vec<i64> = w.iter().map(|&v| v as i8 as i64).collect();
        let mut out = vec![0i64; ho * wo * cout];
        for oy in 0..ho {
            for ox in 0..wo {
                let acc = &mut out[(oy * wo + ox) * cout..][..cout];
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = b[c] as i64;
                }
                for ky in 0..kh {
                    let iy = (oy * self.stride + ky) as isize - pt as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * self.stride + kx) as isize - pl as isize;
                        if ix < 0 || ix >= wd as isize {
                            continue;
                        }
                        let px = &x[(iy as usize * wd + ix as usize) * cin..][..cin];
                        if self.depthwise {
                            let taps = &w[(ky * kw + kx) * cout..][..cout];
                            for c in 0..cout {
                                acc[c] += (px[c] - zp) as i64 * taps[c];
                            }
                        } else {
                            for (c, a) in acc.iter_mut().enumerate() {
                                let taps = &w[((c * kh + ky) * kw + kx) * cin..][..cin];
                                *a += px.iter().zip(taps).map(|(&v, &t)| (v - zp) as i64 * t).sum::<i64>();
                            }
                        }
                    }
                }
            }
        }
        out
    }
}
