//! Loads EfficientNet-Lite0 from safetensors bytes with the clean names of `docs/model.md`,
//! folding each batch norm into the conv before it. Every problem with the file is an error naming the
//! tensor, never a panic: the bytes may come from a user's download or a half-finished fetch.

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::EMBEDDING_DIM;
use super::efficientnet::{BLOCKS, Classifier, EfficientNetLite0, MbConv, tf_same_padding};

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

/// Conv weight [out, in/groups, k, k] with the BN that follows it folded in: returns (weight, bias).
pub(crate) fn folded_conv(
    file: &TensorFile,
    prefix: &str,
    shape: [usize; 4],
) -> Result<(Vec<f32>, Vec<f32>), WeightsError> {
    let out = shape[0];
    let mut weight = file.f32(&format!("{prefix}.conv.weight"), &shape)?;
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
    Ok((weight, bias))
}

fn conv(
    (weight, bias): (Vec<f32>, Vec<f32>),
    shape: [usize; 4],
    stride: usize,
    groups: usize,
    padding: PaddingConfig2d,
    device: &Device,
) -> Conv2d {
    Conv2d {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, shape), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [shape[0]]),
            device,
        ))),
        stride: [stride, stride],
        kernel_size: [shape[2], shape[3]],
        dilation: [1, 1],
        groups,
        padding,
    }
}

/// PyTorch `nn.Linear` weight [out, in] → burn `Linear` (stored [in, out]).
fn linear(file: &TensorFile, prefix: &str, d_in: usize, device: &Device) -> Result<Linear, WeightsError> {
    let name = format!("{prefix}.weight");
    let (shape, w) = file.f32_any_shape(&name)?;
    if shape.len() != 2 || shape[1] != d_in || shape[0] == 0 {
        return Err(WeightsError::Shape {
            name,
            expected: vec![0, d_in],
            found: shape,
        });
    }
    let d_out = shape[0];
    let bias = file.f32(&format!("{prefix}.bias"), &[d_out])?;
    let mut transposed = vec![0.0f32; w.len()];
    for o in 0..d_out {
        for i in 0..d_in {
            transposed[i * d_out + o] = w[o * d_in + i];
        }
    }
    Ok(Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(transposed, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [d_out]),
            device,
        ))),
    })
}

/// The classifier present in the file: `classifier.{weight,bias}` (linear, the ImageNet head or an exported
/// linear head) or `classifier.{0,3}.*` (an exported MLP head, as PyTorch's Sequential names it).
fn load_classifier(file: &TensorFile, device: &Device) -> Result<Classifier, WeightsError> {
    if file.contains("classifier.weight") {
        return Ok(Classifier {
            hidden: None,
            out: linear(file, "classifier", EMBEDDING_DIM, device)?,
        });
    }
    if file.contains("classifier.0.weight") {
        let hidden = linear(file, "classifier.0", EMBEDDING_DIM, device)?;
        let units = hidden.weight.dims()[1];
        let out = linear(file, "classifier.3", units, device)?;
        return Ok(Classifier {
            hidden: Some(hidden),
            out,
        });
    }
    Err(WeightsError::Missing("classifier.weight".into()))
}

/// Builds the pretrained (or exported fine-tuned) network from safetensors bytes.
pub fn load_efficientnet(bytes: &[u8], device: &Device) -> Result<EfficientNetLite0, WeightsError> {
    let file = TensorFile::parse(bytes)?;
    let stem_shape = [32, 3, 3, 3];
    let stem = conv(
        folded_conv(&file, "stem", stem_shape)?,
        stem_shape,
        2,
        1,
        tf_same_padding(224, 3, 2),
        device,
    );
    let mut blocks = Vec::with_capacity(BLOCKS.len());
    for (i, spec) in BLOCKS.iter().enumerate() {
        let hidden = spec.hidden();
        let expand = if spec.expand != 1 {
            let shape = [hidden, spec.cin, 1, 1];
            let folded = folded_conv(&file, &format!("blocks.{i}.expand"), shape)?;
            Some(conv(folded, shape, 1, 1, PaddingConfig2d::Valid, device))
        } else {
            None
        };
        let dw_shape = [hidden, 1, spec.kernel, spec.kernel];
        let dw_pad = tf_same_padding(spec.size_in, spec.kernel, spec.stride);
        let dw = conv(
            folded_conv(&file, &format!("blocks.{i}.dw"), dw_shape)?,
            dw_shape,
            spec.stride,
            hidden,
            dw_pad,
            device,
        );
        let project_shape = [spec.cout, hidden, 1, 1];
        let project = conv(
            folded_conv(&file, &format!("blocks.{i}.project"), project_shape)?,
            project_shape,
            1,
            1,
            PaddingConfig2d::Valid,
            device,
        );
        blocks.push(MbConv {
            expand,
            dw,
            project,
            residual: spec.residual(),
            expand_lora: None,
            project_lora: None,
        });
    }
    let head_shape = [EMBEDDING_DIM, 320, 1, 1];
    let head = conv(
        folded_conv(&file, "head", head_shape)?,
        head_shape,
        1,
        1,
        PaddingConfig2d::Valid,
        device,
    );
    let classifier = load_classifier(&file, device)?;
    Ok(EfficientNetLite0 {
        stem,
        blocks,
        head,
        head_lora: None,
        classifier,
    })
}
