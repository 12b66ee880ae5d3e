//! A Keras functional model as TF.js Layers writes it (`model.json`'s `modelTopology`, snake_case configs as
//! Python Keras saves them, which TF.js reads too) and its weights as one little-endian float32 buffer with the
//! `weightsManifest` entry that describes it. The layers are the few the exported network needs.

use serde_json::{Value, json};

/// How a conv pads in Keras: `"same"` (TensorFlow's rule) or `"valid"` after an explicit `ZeroPadding2D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KerasPadding {
    /// TF "SAME": `out = ceil(in / stride)`, the odd extra row and column at the bottom and right.
    Same,
    /// Zeros `[top, left, bottom, right]` by a `ZeroPadding2D` layer, then the conv with `"valid"`.
    Explicit([usize; 4]),
}

/// TF "SAME" padding `[top, left, bottom, right]` of a square `size_in` plane (Keras' and TF.js's rule, written
/// out here from its definition, independently of the model's own `same_padding`).
pub fn tf_same_padding(size_in: usize, kernel: usize, stride: usize) -> [usize; 4] {
    let out = size_in.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size_in);
    let (before, after) = (total / 2, total - total / 2);
    [before, before, after, after]
}

/// The Keras padding that gives exactly the padding `model` `[top, left, bottom, right]` a conv of the network
/// uses: `"same"` where TF's rule gives the same zeros, an explicit `ZeroPadding2D` elsewhere.
pub fn keras_padding(model: [usize; 4], size_in: usize, kernel: usize, stride: usize) -> KerasPadding {
    if model == tf_same_padding(size_in, kernel, stride) {
        KerasPadding::Same
    } else {
        KerasPadding::Explicit(model)
    }
}

/// The layers and weights of a functional model, in the order they are added.
#[derive(Default)]
pub struct Keras {
    layers: Vec<Value>,
    manifest: Vec<Value>,
    weights: Vec<u8>,
}

/// A conv as the exporter sees it: `[c_out, c_in/groups, k, k]` (PyTorch's layout) with its bias.
pub struct Conv<'a> {
    pub shape: [usize; 4],
    pub weight: &'a [f32],
    pub bias: &'a [f32],
    pub stride: usize,
}

impl Keras {
    /// Adds a layer fed by `inputs` (layer names, first output of each); returns its name.
    pub fn layer(&mut self, class: &str, name: &str, mut config: Value, inputs: &[&str]) -> String {
        config["name"] = json!(name);
        config["trainable"] = json!(true);
        config["dtype"] = json!("float32");
        let inbound: Vec<Value> = inputs.iter().map(|i| json!([i, 0, 0, {}])).collect();
        let inbound_nodes = if inputs.is_empty() { json!([]) } else { json!([inbound]) };
        self.layers.push(json!({
            "class_name": class,
            "config": config,
            "name": name,
            "inbound_nodes": inbound_nodes,
        }));
        name.to_string()
    }

    /// A weight of layer `layer` (`{layer}/{kind}`, the name TF.js gives the variable), appended to the buffer.
    fn weight(&mut self, layer: &str, kind: &str, shape: &[usize], values: &[f32]) {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len(), "{layer}/{kind}");
        self.manifest
            .push(json!({ "name": format!("{layer}/{kind}"), "shape": shape, "dtype": "float32" }));
        self.weights.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }

    pub fn input(&mut self, name: &str, shape: [usize; 3]) -> String {
        let config = json!({ "batch_input_shape": [null, shape[0], shape[1], shape[2]], "sparse": false });
        self.layer("InputLayer", name, config, &[])
    }

    /// A conv (one group, or depthwise when `c_in/groups` is 1 and `c_out` equals the input's channels), with
    /// an explicit `ZeroPadding2D` before it when the padding asks for one. Returns the conv's name.
    pub fn conv(&mut self, name: &str, x: &str, conv: Conv, padding: KerasPadding, depthwise: bool) -> String {
        let [c_out, c_in, kh, kw] = conv.shape;
        let (x, padding) = match padding {
            KerasPadding::Same => (x.to_string(), "same"),
            KerasPadding::Explicit([top, left, bottom, right]) => {
                let config = json!({ "padding": [[top, bottom], [left, right]], "data_format": "channels_last" });
                (
                    self.layer("ZeroPadding2D", &format!("{name}_pad"), config, &[x]),
                    "valid",
                )
            }
        };
        let mut config = json!({
            "kernel_size": [kh, kw],
            "strides": [conv.stride, conv.stride],
            "padding": padding,
            "data_format": "channels_last",
            "dilation_rate": [1, 1],
            "activation": "linear",
            "use_bias": true,
        });
        let name = if depthwise {
            config["depth_multiplier"] = json!(1);
            let name = self.layer("DepthwiseConv2D", name, config, &[&x]);
            self.weight(&name, "depthwise_kernel", &[kh, kw, c_out, 1], &depthwise_hwc(&conv));
            name
        } else {
            config["filters"] = json!(c_out);
            let name = self.layer("Conv2D", name, config, &[&x]);
            self.weight(&name, "kernel", &[kh, kw, c_in, c_out], &conv_hwio(&conv));
            name
        };
        self.weight(&name, "bias", &[c_out], conv.bias);
        name
    }

    /// ReLU capped at `max_value` (ReLU6 with 6), as Keras' MobileNets write it.
    pub fn relu(&mut self, name: &str, x: &str, max_value: f32) -> String {
        self.layer("ReLU", name, json!({ "max_value": max_value }), &[x])
    }

    pub fn add(&mut self, name: &str, a: &str, b: &str) -> String {
        self.layer("Add", name, json!({}), &[a, b])
    }

    pub fn global_average_pooling(&mut self, name: &str, x: &str) -> String {
        self.layer(
            "GlobalAveragePooling2D",
            name,
            json!({ "data_format": "channels_last" }),
            &[x],
        )
    }

    /// A dense layer from the loader's `[in, out]` weight (Keras' kernel layout), with `activation`.
    pub fn dense(
        &mut self,
        name: &str,
        x: &str,
        (d_in, d_out): (usize, usize),
        weight: &[f32],
        bias: &[f32],
        activation: &str,
    ) -> String {
        let config = json!({ "units": d_out, "activation": activation, "use_bias": true });
        let name = self.layer("Dense", name, config, &[x]);
        self.weight(&name, "kernel", &[d_in, d_out], weight);
        self.weight(&name, "bias", &[d_out], bias);
        name
    }

    /// `model.json` (the functional model from `input` to `output`, its weights in `weights_file`) and the
    /// weights' bytes.
    pub fn finish(
        self,
        model_name: &str,
        input: &str,
        output: &str,
        weights_file: &str,
        generated_by: &str,
        keras_version: &str,
    ) -> (String, Vec<u8>) {
        let model = json!({
            "format": "layers-model",
            "generatedBy": generated_by,
            "convertedBy": null,
            "modelTopology": {
                "class_name": "Model",
                "config": {
                    "name": model_name,
                    "layers": self.layers,
                    "input_layers": [[input, 0, 0]],
                    "output_layers": [[output, 0, 0]],
                },
                "keras_version": keras_version,
                "backend": "tensor_flow.js",
            },
            "weightsManifest": [{ "paths": [weights_file], "weights": self.manifest }],
        });
        (model.to_string(), self.weights)
    }
}

/// `[c_out, c_in, kh, kw]` → Keras' `[kh, kw, c_in, c_out]`.
fn conv_hwio(conv: &Conv) -> Vec<f32> {
    let [c_out, c_in, kh, kw] = conv.shape;
    let mut out = vec![0.0; conv.weight.len()];
    for o in 0..c_out {
        for i in 0..c_in {
            for y in 0..kh {
                for x in 0..kw {
                    out[((y * kw + x) * c_in + i) * c_out + o] = conv.weight[((o * c_in + i) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// Depthwise `[c, 1, kh, kw]` → Keras' `[kh, kw, c, 1]`.
fn depthwise_hwc(conv: &Conv) -> Vec<f32> {
    let [c, _, kh, kw] = conv.shape;
    let mut out = vec![0.0; conv.weight.len()];
    for ch in 0..c {
        for y in 0..kh {
            for x in 0..kw {
                out[(y * kw + x) * c + ch] = conv.weight[(ch * kh + y) * kw + x];
            }
        }
    }
    out
}
