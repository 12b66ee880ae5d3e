//! A small interpreter of the Keras layers the TF.js export writes, written from their definitions (channels
//! last, TF "SAME" padding, kernels `[kh, kw, c_in, c_out]`, depthwise `[kh, kw, c, 1]`, dense `[in, out]`), so
//! that tests/tfjs can run `model.json` + `weights.bin` natively as TF.js would.

use std::collections::HashMap;

use ajuste::export::tfjs;
use ajuste::model::imagenet::softmax;
use serde_json::Value;

/// A weight of `weights.bin`: (shape, values).
pub type Weight = (Vec<usize>, Vec<f32>);

/// A channels-last image (batch 1).
#[derive(Clone)]
pub struct Nhwc {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

/// What `tmImage.capture` gives the model: `x / 127 − 1`, in f32 as TF.js computes it.
pub fn tm_input(pixels: &[u8]) -> Nhwc {
    let data = pixels.iter().map(|&v| v as f32 / 127.0 - 1.0).collect();
    Nhwc {
        h: 224,
        w: 224,
        c: 3,
        data,
    }
}

/// `weights.bin` split by the manifest: name → (shape, values). Checks the dtype and that the bytes are exactly
/// the manifest's, each name once.
pub fn manifest_weights(model_json: &Value, bin: &[u8]) -> HashMap<String, Weight> {
    let groups = model_json["weightsManifest"].as_array().expect("weightsManifest");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["paths"], serde_json::json!([tfjs::WEIGHTS_BIN]));
    let mut weights = HashMap::new();
    let mut at = 0;
    for entry in groups[0]["weights"].as_array().unwrap() {
        assert_eq!(entry["dtype"], "float32", "{entry}");
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone()).unwrap();
        let n: usize = shape.iter().product();
        let bytes = bin
            .get(at..at + 4 * n)
            .unwrap_or_else(|| panic!("{entry}: past the end of weights.bin"));
        let values = bytes
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let name = entry["name"].as_str().unwrap().to_string();
        assert!(weights.insert(name.clone(), (shape, values)).is_none(), "{name} twice");
        at += 4 * n;
    }
    assert_eq!(
        at,
        bin.len(),
        "weights.bin has {} bytes, the manifest lists {at}",
        bin.len()
    );
    weights
}

/// Keras' `"same"`: `out = ceil(in / s)`, the odd extra row or column after.
fn same_pads(size: usize, k: usize, s: usize) -> (usize, usize) {
    let total = ((size.div_ceil(s) - 1) * s + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// A conv, channels last: kernel `[kh, kw, c_in, c_out]`, or depthwise `[kh, kw, c, 1]`.
pub fn conv(x: &Nhwc, kernel: &Weight, bias: &[f32], stride: usize, same: bool, depthwise: bool) -> Nhwc {
    let (shape, w) = kernel;
    let (kh, kw, c_out) = (shape[0], shape[1], if depthwise { x.c } else { shape[3] });
    let ((top, _), (left, _)) = if same {
        (same_pads(x.h, kh, stride), same_pads(x.w, kw, stride))
    } else {
        ((0, 0), (0, 0))
    };
    let (h, wd) = if same {
        (x.h.div_ceil(stride), x.w.div_ceil(stride))
    } else {
        ((x.h - kh) / stride + 1, (x.w - kw) / stride + 1)
    };
    let mut out = vec![0.0f32; h * wd * c_out];
    for oy in 0..h {
        for ox in 0..wd {
            let acc = &mut out[(oy * wd + ox) * c_out..][..c_out];
            acc.copy_from_slice(bias);
            for ky in 0..kh {
                let Some(iy) = (oy * stride + ky).checked_sub(top).filter(|&y| y < x.h) else {
                    continue;
                };
                for kx in 0..kw {
                    let Some(ix) = (ox * stride + kx).checked_sub(left).filter(|&v| v < x.w) else {
                        continue;
                    };
                    let pixel = &x.data[(iy * x.w + ix) * x.c..][..x.c];
                    let taps = &w[(ky * kw + kx) * x.c * if depthwise { 1 } else { c_out }..];
                    if depthwise {
                        acc.iter_mut().zip(pixel).zip(taps).for_each(|((a, p), t)| *a += p * t);
                    } else {
                        for (i, p) in pixel.iter().enumerate() {
                            acc.iter_mut()
                                .zip(&taps[i * c_out..][..c_out])
                                .for_each(|(a, t)| *a += p * t);
                        }
                    }
                }
            }
        }
    }
    Nhwc {
        h,
        w: wd,
        c: c_out,
        data: out,
    }
}

fn zero_pad(x: &Nhwc, [[top, bottom], [left, right]]: [[usize; 2]; 2]) -> Nhwc {
    let (h, w) = (x.h + top + bottom, x.w + left + right);
    let mut data = vec![0.0; h * w * x.c];
    for y in 0..x.h {
        let row = &x.data[y * x.w * x.c..][..x.w * x.c];
        data[((y + top) * w + left) * x.c..][..x.w * x.c].copy_from_slice(row);
    }
    Nhwc { h, w, c: x.c, data }
}

fn dense(x: &[f32], kernel: &Weight, bias: &[f32], activation: &str) -> Vec<f32> {
    let (shape, w) = kernel;
    assert_eq!(shape[0], x.len());
    let mut out = bias.to_vec();
    for (i, v) in x.iter().enumerate() {
        out.iter_mut()
            .zip(&w[i * shape[1]..][..shape[1]])
            .for_each(|(o, t)| *o += v * t);
    }
    match activation {
        "linear" => out,
        "relu" => out.into_iter().map(|v| v.max(0.0)).collect(),
        "softmax" => softmax(&out),
        other => panic!("activation {other}"),
    }
}

/// Runs `model.json`'s layers in their order on one image; returns the output layer's values.
pub fn run_keras(model: &Value, weights: &HashMap<String, Weight>, input: &Nhwc) -> Vec<f32> {
    let topology = &model["modelTopology"]["config"];
    let mut values: HashMap<String, Nhwc> = HashMap::new();
    let flat = |v: Vec<f32>| Nhwc {
        h: 1,
        w: 1,
        c: v.len(),
        data: v,
    };
    for layer in topology["layers"].as_array().unwrap() {
        let (class, config) = (layer["class_name"].as_str().unwrap(), &layer["config"]);
        let name = layer["name"].as_str().unwrap();
        let inputs: Vec<&Nhwc> = layer["inbound_nodes"]
            .get(0)
            .map(|node| {
                node.as_array()
                    .unwrap()
                    .iter()
                    .map(|i| &values[i[0].as_str().unwrap()])
                    .collect()
            })
            .unwrap_or_default();
        let weight = |kind: &str| &weights[&format!("{name}/{kind}")];
        let stride = || config["strides"][0].as_u64().unwrap() as usize;
        let same = || match config["padding"].as_str() {
            Some("same") => true,
            Some("valid") => false,
            other => panic!("{name}: padding {other:?}"),
        };
        let out = match class {
            "InputLayer" => {
                assert_eq!(config["batch_input_shape"], serde_json::json!([null, 224, 224, 3]));
                input.clone()
            }
            "Conv2D" => conv(inputs[0], weight("kernel"), &weight("bias").1, stride(), same(), false),
            "DepthwiseConv2D" => conv(
                inputs[0],
                weight("depthwise_kernel"),
                &weight("bias").1,
                stride(),
                same(),
                true,
            ),
            "ZeroPadding2D" => zero_pad(inputs[0], serde_json::from_value(config["padding"].clone()).unwrap()),
            "ReLU" => {
                let max = config["max_value"].as_f64().unwrap() as f32;
                let data = inputs[0].data.iter().map(|v| v.clamp(0.0, max)).collect();
                Nhwc {
                    data,
                    ..inputs[0].clone()
                }
            }
            "Add" => {
                let data = inputs[0].data.iter().zip(&inputs[1].data).map(|(a, b)| a + b).collect();
                Nhwc {
                    data,
                    ..inputs[0].clone()
                }
            }
            "GlobalAveragePooling2D" => {
                let x = inputs[0];
                let mut sum = vec![0.0f32; x.c];
                x.data
                    .chunks(x.c)
                    .for_each(|p| sum.iter_mut().zip(p).for_each(|(s, v)| *s += v));
                flat(sum.into_iter().map(|s| s / (x.h * x.w) as f32).collect())
            }
            "Dense" => flat(dense(
                &inputs[0].data,
                weight("kernel"),
                &weight("bias").1,
                config["activation"].as_str().unwrap(),
            )),
            other => panic!("{name}: layer class {other} is not one the export writes"),
        };
        values.insert(name.to_string(), out);
    }
    let output = topology["output_layers"][0][0].as_str().unwrap();
    values.remove(output).expect("the output layer ran").data
}
