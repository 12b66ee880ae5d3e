//! A TFLite graph in memory (tensors with their data and quantisation, operators with their options) and its
//! serialisation to the TFLite schema (`tensorflow/lite/schema/schema.fbs`; the field ids below are the order of
//! declaration there). One subgraph, buffer 0 the empty one every model has.

use super::flatbuf::{Builder, Field, Pos};

/// `TensorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32 = 0,
    I32 = 2,
    U8 = 3,
    I8 = 9,
}

/// `f = scale * (q - zero_point)`, per tensor (one scale) or per channel along `dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub dim: i32,
}

impl Quant {
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        Self {
            scale: vec![scale],
            zero_point: vec![zero_point],
            dim: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    /// Constant data (little-endian), or `None` for an activation.
    pub data: Option<Vec<u8>>,
    pub quant: Option<Quant>,
}

/// The builtin operators used here, with their `BuiltinOperator` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpCode {
    Add = 0,
    AveragePool2d = 1,
    Conv2d = 3,
    DepthwiseConv2d = 4,
    FullyConnected = 9,
    Reshape = 22,
    Softmax = 25,
    Quantize = 114,
}

/// `ActivationFunctionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None = 0,
    Relu = 1,
    Relu6 = 3,
}

/// An operator's options (its `BuiltinOptions` union member).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Options {
    /// `Conv2DOptions` / `DepthwiseConv2DOptions` with TFLite's SAME padding (TF's: the extra row and column at
    /// the bottom and right, exactly our model's padding) or VALID.
    Conv {
        same: bool,
        stride: usize,
        act: Activation,
    },
    FullyConnected {
        act: Activation,
    },
    Add,
    /// `Pool2DOptions`, VALID, stride 1: the average over a `filter`×`filter` plane (the global pool).
    Pool {
        filter: usize,
    },
    /// `ReshapeOptions` to `[1, channels]` (the same shape as the op's shape input).
    Reshape {
        channels: usize,
    },
    Softmax,
    None,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub code: OpCode,
    pub version: i32,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub options: Options,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub ops: Vec<Op>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

impl Graph {
    pub fn tensor(&mut self, tensor: Tensor) -> usize {
        self.tensors.push(tensor);
        self.tensors.len() - 1
    }

    /// An activation (no data) named `name`.
    pub fn activation(&mut self, name: &str, shape: &[usize], dtype: Dtype, quant: Option<Quant>) -> usize {
        self.tensor(Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
            data: None,
            quant,
        })
    }

    pub fn constant(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: Dtype,
        data: Vec<u8>,
        quant: Option<Quant>,
    ) -> usize {
        self.tensor(Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
            data: Some(data),
            quant,
        })
    }

    pub fn op(&mut self, code: OpCode, version: i32, inputs: &[usize], outputs: &[usize], options: Options) {
        self.ops.push(Op {
            code,
            version,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options,
        });
    }

    /// The `.tflite` bytes; `metadata` (name, bytes) go into buffers named by the model's `metadata` table.
    pub fn to_bytes(&self, description: &str, metadata: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = Builder::new();
        // Buffers: 0 empty, then each constant's data, then the metadata.
        let mut buffers = vec![b.table(&[])];
        let mut buffer_of = vec![0u32; self.tensors.len()];
        for (i, t) in self.tensors.iter().enumerate() {
            if let Some(data) = &t.data {
                let bytes = b.vector_bytes(data, 1, 16);
                buffer_of[i] = buffers.len() as u32;
                buffers.push(b.table(&[Field::Offset(0, bytes)]));
            }
        }
        let mut metadata_tables = Vec::new();
        for (name, bytes) in metadata {
            let data = b.vector_bytes(bytes, 1, 16);
            let index = buffers.len() as u32;
            buffers.push(b.table(&[Field::Offset(0, data)]));
            let name = b.string(name);
            metadata_tables.push(b.table(&[Field::Offset(0, name), Field::U32(1, index)]));
        }
        let tensors: Vec<Pos> = self
            .tensors
            .iter()
            .zip(&buffer_of)
            .map(|(t, &buffer)| tensor(&mut b, t, buffer))
            .collect();
        // Operator codes: each code once, in order of first use.
        let mut codes: Vec<(OpCode, i32)> = Vec::new();
        for op in &self.ops {
            match codes.iter_mut().find(|(c, _)| *c == op.code) {
                Some((_, v)) => *v = (*v).max(op.version),
                None => codes.push((op.code, op.version)),
            }
        }
        let ops: Vec<Pos> = self
            .ops
            .iter()
            .map(|op| {
                let index = codes.iter().position(|(c, _)| *c == op.code).unwrap_or(0) as u32;
                operator(&mut b, op, index)
            })
            .collect();
        let code_tables: Vec<Pos> = codes
            .iter()
            .map(|&(code, version)| {
                let code = code as i32;
                // deprecated_builtin_code (a byte, 127 = "look at builtin_code"), version, builtin_code.
                b.table(&[
                    Field::U8(0, code.min(127) as u8),
                    Field::I32(2, version),
                    Field::I32(3, code),
                ])
            })
            .collect();
        let tensors = b.vector_offsets(&tensors);
        let inputs = b.vector_i32(&self.inputs.iter().map(|&i| i as i32).collect::<Vec<_>>());
        let outputs = b.vector_i32(&self.outputs.iter().map(|&i| i as i32).collect::<Vec<_>>());
        let ops = b.vector_offsets(&ops);
        let name = b.string("main");
        let subgraph = b.table(&[
            Field::Offset(0, tensors),
            Field::Offset(1, inputs),
            Field::Offset(2, outputs),
            Field::Offset(3, ops),
            Field::Offset(4, name),
        ]);
        let codes = b.vector_offsets(&code_tables);
        let subgraphs = b.vector_offsets(&[subgraph]);
        let description = b.string(description);
        let buffers = b.vector_offsets(&buffers);
        let mut fields = vec![
            Field::U32(0, 3),
            Field::Offset(1, codes),
            Field::Offset(2, subgraphs),
            Field::Offset(3, description),
            Field::Offset(4, buffers),
        ];
        if !metadata_tables.is_empty() {
            fields.push(Field::Offset(6, b.vector_offsets(&metadata_tables)));
        }
        let model = b.table(&fields);
        b.finish(model, b"TFL3")
    }
}

fn tensor(b: &mut Builder, t: &Tensor, buffer: u32) -> Pos {
    let shape = b.vector_i32(&t.shape.iter().map(|&d| d as i32).collect::<Vec<_>>());
    let name = b.string(&t.name);
    let mut fields = vec![
        Field::Offset(0, shape),
        Field::U8(1, t.dtype as u8),
        Field::U32(2, buffer),
        Field::Offset(3, name),
    ];
    if let Some(q) = &t.quant {
        let scale = b.vector_f32(&q.scale);
        let zero_point = b.vector_i64(&q.zero_point);
        // QuantizationParameters: min 0, max 1, scale 2, zero_point 3, details (type 4, value 5), dimension 6.
        let quant = b.table(&[
            Field::Offset(2, scale),
            Field::Offset(3, zero_point),
            Field::I32(6, q.dim),
        ]);
        fields.push(Field::Offset(4, quant));
    }
    b.table(&fields)
}

/// An `Operator`: opcode_index 0, inputs 1, outputs 2, builtin_options_type 3, builtin_options 4.
fn operator(b: &mut Builder, op: &Op, index: u32) -> Pos {
    let inputs = b.vector_i32(&op.inputs.iter().map(|&i| i as i32).collect::<Vec<_>>());
    let outputs = b.vector_i32(&op.outputs.iter().map(|&i| i as i32).collect::<Vec<_>>());
    // (union type, the options table) — the BuiltinOptions indices of the schema's union.
    let options = match op.options {
        Options::Conv { same, stride, act } => {
            // Conv2DOptions: padding 0, stride_w 1, stride_h 2, activation 3 (dilations default to 1).
            // DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, depth_multiplier 3, activation 4.
            let padding = Field::U8(0, if same { 0 } else { 1 });
            let (sw, sh) = (Field::I32(1, stride as i32), Field::I32(2, stride as i32));
            if op.code == OpCode::DepthwiseConv2d {
                Some((
                    2,
                    b.table(&[padding, sw, sh, Field::I32(3, 1), Field::U8(4, act as u8)]),
                ))
            } else {
                Some((1, b.table(&[padding, sw, sh, Field::U8(3, act as u8)])))
            }
        }
        Options::FullyConnected { act } => Some((8, b.table(&[Field::U8(0, act as u8)]))),
        Options::Softmax => Some((9, b.table(&[Field::F32(0, 1.0)]))),
        Options::Add => Some((11, b.table(&[]))),
        // Pool2DOptions: padding 0 (VALID = 1), stride_w 1, stride_h 2, filter_width 3, filter_height 4.
        Options::Pool { filter } => {
            let f = filter as i32;
            let fields = [
                Field::U8(0, 1),
                Field::I32(1, 1),
                Field::I32(2, 1),
                Field::I32(3, f),
                Field::I32(4, f),
            ];
            Some((5, b.table(&fields)))
        }
        // ReshapeOptions: new_shape 0.
        Options::Reshape { channels } => {
            let shape = b.vector_i32(&[1, channels as i32]);
            Some((17, b.table(&[Field::Offset(0, shape)])))
        }
        Options::None => None,
    };
    let mut fields = vec![
        Field::U32(0, index),
        Field::Offset(1, inputs),
        Field::Offset(2, outputs),
    ];
    if let Some((kind, table)) = options {
        fields.push(Field::U8(3, kind));
        fields.push(Field::Offset(4, table));
    }
    b.table(&fields)
}
