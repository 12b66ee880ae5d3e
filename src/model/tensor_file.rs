//! Reading EfficientNet-Lite0's weights from safetensors bytes with the clean names of `docs/model.md`, without
//! burn: every tensor is checked (present, shape, dtype, finite) and each batch norm is folded into the conv
//! before it. Every problem with the file is an error naming the tensor, never a panic: the bytes may come
//! from a user's download or a half-finished fetch. `weights.rs` turns the result into burn modules.

use safetensors::{Dtype, SafeTensors};

use super::EMBEDDING_DIM;
use super::blocks::BLOCKS;

/// Batch-norm epsilon of the TF EfficientNet-Lite checkpoints.
pub const BN_EPS: f64 = 1e-3;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    #[error("the weights file is not valid safetensors (truncated or corrupt?): {0}")]
    Invalid(String),
    #[error("the weights file has no tensor `{0}`")]
    Missing(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{name}` has dtype {dtype}, expected F32 or F16")]
    Dtype { name: String, dtype: String },
    /// NaN or infinite values (stored, or made by folding a batch norm with a negative variance).
    #[error("tensor `{0}` holds values that are not numbers (NaN or infinite): the file is damaged")]
    NotFinite(String),
}

/// A parsed safetensors file that hands out tensors as f32, checking names, shapes and dtypes.
pub struct TensorFile<'a> {
    inner: SafeTensors<'a>,
}

impl<'a> TensorFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightsError> {
        SafeTensors::deserialize(bytes)
            .map(|inner| Self { inner })
            .map_err(|e| WeightsError::Invalid(e.to_string()))
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.names().into_iter().map(String::from).collect();
        names.sort();
        names
    }

    pub fn contains(&self, name: &str) -> bool {
        self.inner.tensor(name).is_ok()
    }

    pub fn shape(&self, name: &str) -> Result<Vec<usize>, WeightsError> {
        self.inner
            .tensor(name)
            .map(|t| t.shape().to_vec())
            .map_err(|_| WeightsError::Missing(name.to_string()))
    }

    /// The tensor as f32, whatever its stored precision (F32 or F16).
    pub fn f32_any_shape(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), WeightsError> {
        let view = self
            .inner
            .tensor(name)
            .map_err(|_| WeightsError::Missing(name.to_string()))?;
        let bytes = view.data();
        let data = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(WeightsError::Dtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok((view.shape().to_vec(), data))
    }

    /// The tensor as f32, checked against the expected shape.
    pub fn f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let (shape, data) = self.f32_any_shape(name)?;
        if shape != expected {
            return Err(WeightsError::Shape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: shape,
            });
        }
        Ok(data)
    }
}

fn finite(name: &str, values: &[f32]) -> Result<(), WeightsError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(WeightsError::NotFinite(name.to_string()))
    }
}

/// A conv with the batch norm after it folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedConv {
    /// `[c_out, c_in/groups, k, k]`.
    pub shape: [usize; 4],
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A dense layer, stored `[in, out]` as burn's `Linear` wants it (PyTorch's `[out, in]` transposed).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearWeights {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// One MBConv block's folded convs (`expand` is absent when the block does not expand).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockWeights {
    pub expand: Option<FoldedConv>,
    pub dw: FoldedConv,
    pub project: FoldedConv,
}

/// The whole network's weights, read and checked: building it from them cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneWeights {
    pub stem: FoldedConv,
    pub blocks: Vec<BlockWeights>,
    pub head: FoldedConv,
    /// The hidden layer of an exported MLP head, if any.
    pub hidden: Option<LinearWeights>,
    pub classifier: LinearWeights,
}

/// Conv weight [out, in/groups, k, k] with the BN that follows it folded in.
pub(crate) fn folded_conv(file: &TensorFile, prefix: &str, shape: [usize; 4]) -> Result<FoldedConv, WeightsError> {
    let out = shape[0];
    let weight_name = format!("{prefix}.conv.weight");
    let mut weight = file.f32(&weight_name, &shape)?;
    let gamma = file.f32(&format!("{prefix}.bn.weight"), &[out])?;
    let beta = file.f32(&format!("{prefix}.bn.bias"), &[out])?;
    let mean = file.f32(&format!("{prefix}.bn.running_mean"), &[out])?;
    let var = file.f32(&format!("{prefix}.bn.running_var"), &[out])?;
    let per_out = weight.len() / out;
    let mut bias = vec![0.0f32; out];
    for o in 0..out {
        // f64 so folding adds no rounding of its own beyond the final cast.
        let scale = gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt();
        for w in &mut weight[o * per_out..(o + 1) * per_out] {
            *w = (*w as f64 * scale) as f32;
        }
        bias[o] = (beta[o] as f64 - mean[o] as f64 * scale) as f32;
    }
    finite(&weight_name, &weight)?;
    finite(&format!("{prefix}.bn.bias"), &bias)?;
    Ok(FoldedConv { shape, weight, bias })
}

/// PyTorch `nn.Linear` weight [out, in] → `[in, out]`.
fn linear(file: &TensorFile, prefix: &str, d_in: usize) -> Result<LinearWeights, WeightsError> {
    let name = format!("{prefix}.weight");
    let (shape, w) = file.f32_any_shape(&name)?;
    if shape.len() != 2 || shape[1] != d_in || shape[0] == 0 {
        return Err(WeightsError::Shape {
            name,
            expected: vec![0, d_in],
            found: shape,
        });
    }
    finite(&name, &w)?;
    let d_out = shape[0];
    let bias_name = format!("{prefix}.bias");
    let bias = file.f32(&bias_name, &[d_out])?;
    finite(&bias_name, &bias)?;
    let mut weight = vec![0.0f32; w.len()];
    for o in 0..d_out {
        for i in 0..d_in {
            weight[i * d_out + o] = w[o * d_in + i];
        }
    }
    Ok(LinearWeights {
        d_in,
        d_out,
        weight,
        bias,
    })
}

/// The classifier present in the file: `classifier.{weight,bias}` (linear, the ImageNet head or an exported
/// linear head) or `classifier.{0,3}.*` (an exported MLP head, as PyTorch's Sequential names it).
fn read_classifier(file: &TensorFile) -> Result<(Option<LinearWeights>, LinearWeights), WeightsError> {
    if file.contains("classifier.weight") {
        return Ok((None, linear(file, "classifier", EMBEDDING_DIM)?));
    }
    if file.contains("classifier.0.weight") {
        let hidden = linear(file, "classifier.0", EMBEDDING_DIM)?;
        let out = linear(file, "classifier.3", hidden.d_out)?;
        return Ok((Some(hidden), out));
    }
    Err(WeightsError::Missing("classifier.weight".into()))
}

/// Reads and checks the pretrained (or exported fine-tuned) network's weights from safetensors bytes.
pub fn read_backbone(bytes: &[u8]) -> Result<BackboneWeights, WeightsError> {
    let file = TensorFile::parse(bytes)?;
    let stem = folded_conv(&file, "stem", [32, 3, 3, 3])?;
    let mut blocks = Vec::with_capacity(BLOCKS.len());
    for (i, spec) in BLOCKS.iter().enumerate() {
        let hidden = spec.hidden();
        let expand = if spec.expand != 1 {
            Some(folded_conv(
                &file,
                &format!("blocks.{i}.expand"),
                [hidden, spec.cin, 1, 1],
            )?)
        } else {
            None
        };
        let dw = folded_conv(&file, &format!("blocks.{i}.dw"), [hidden, 1, spec.kernel, spec.kernel])?;
        let project = folded_conv(&file, &format!("blocks.{i}.project"), [spec.cout, hidden, 1, 1])?;
        blocks.push(BlockWeights { expand, dw, project });
    }
    let head = folded_conv(&file, "head", [EMBEDDING_DIM, 320, 1, 1])?;
    let (hidden, classifier) = read_classifier(&file)?;
    Ok(BackboneWeights {
        stem,
        blocks,
        head,
        hidden,
        classifier,
    })
}
