//! Builds EfficientNet-Lite0 as burn modules from safetensors bytes. Reading and checking the file (names,
//! shapes, dtypes, batch norms folded into the convs) is `tensor_file.rs`, burn-free; what it returns is
//! complete, so building from it cannot fail.

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

use super::efficientnet::{BLOCKS, Classifier, EfficientNetLite0, MbConv, tf_same_padding};
pub use super::tensor_file::{BN_EPS, TensorFile, WeightsError};
use super::tensor_file::{FoldedConv, LinearWeights, read_backbone};

fn conv(folded: FoldedConv, stride: usize, groups: usize, padding: PaddingConfig2d, device: &Device) -> Conv2d {
    let shape = folded.shape;
    Conv2d {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(folded.weight, shape), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(folded.bias, [shape[0]]),
            device,
        ))),
        stride: [stride, stride],
        kernel_size: [shape[2], shape[3]],
        dilation: [1, 1],
        groups,
        padding,
    }
}

fn linear(weights: LinearWeights, device: &Device) -> Linear {
    let (d_in, d_out) = (weights.d_in, weights.d_out);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weights.weight, [d_in, d_out]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(weights.bias, [d_out]),
            device,
        ))),
    }
}

/// Builds the pretrained (or exported fine-tuned) network from safetensors bytes.
pub fn load_efficientnet(bytes: &[u8], device: &Device) -> Result<EfficientNetLite0, WeightsError> {
    let weights = read_backbone(bytes)?;
    let stem = conv(weights.stem, 2, 1, tf_same_padding(224, 3, 2), device);
    let blocks = weights
        .blocks
        .into_iter()
        .zip(BLOCKS.iter())
        .map(|(block, spec)| MbConv {
            expand: block.expand.map(|e| conv(e, 1, 1, PaddingConfig2d::Valid, device)),
            dw: conv(
                block.dw,
                spec.stride,
                spec.hidden(),
                tf_same_padding(spec.size_in, spec.kernel, spec.stride),
                device,
            ),
            project: conv(block.project, 1, 1, PaddingConfig2d::Valid, device),
            residual: spec.residual(),
            expand_lora: None,
            project_lora: None,
        })
        .collect();
    let head = conv(weights.head, 1, 1, PaddingConfig2d::Valid, device);
    let classifier = Classifier {
        hidden: weights.hidden.map(|h| linear(h, device)),
        out: linear(weights.classifier, device),
    };
    Ok(EfficientNetLite0 {
        stem,
        blocks,
        head,
        head_lora: None,
        classifier,
    })
}
