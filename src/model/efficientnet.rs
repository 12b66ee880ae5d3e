//! EfficientNet-Lite0 (Tan & Le, 2019, the "Lite" variant: no squeeze-excite, ReLU6, fixed stem/head).
//!
//! Batch norms are folded into their convolutions when weights are loaded (see `weights.rs`): the backbone
//! is frozen, and folding halves the number of kernels per block, which is what costs on WebGPU.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::EMBEDDING_DIM;
pub use super::blocks::{BLOCKS, BlockSpec};
use super::depthwise::{conv_relu6, depthwise_relu6, depthwise_relu6_nhwc};
use super::lora::{
    Lora, channels_last, conv_rows, conv_rows_relu6, conv_with_lora, conv_with_lora_relu6, dense, to_nchw, to_nhwc,
};

/// TensorFlow "SAME" padding (`blocks::same_padding`) as burn's padding config.
pub fn tf_same_padding(size_in: usize, kernel: usize, stride: usize) -> PaddingConfig2d {
    let [top, left, bottom, right] = super::blocks::same_padding(size_in, kernel, stride);
    PaddingConfig2d::Explicit(top, left, bottom, right)
}

#[derive(Config, Debug)]
pub struct EfficientNetLite0Config {
    /// Outputs of the classifier: 1000 for the ImageNet head, K for a fine-tuned head.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Hidden units of an optional MLP head (0: a single linear layer, like the pretrained model).
    #[config(default = 0)]
    pub hidden_units: usize,
}

/// An inverted-residual block with BN folded into each conv (hence the biases), and optional LoRA adapters
/// on its two 1×1 convs (absent in the pretrained model: then it runs exactly the plain convs).
#[derive(Module, Debug)]
pub struct MbConv {
    pub expand: Option<Conv2d>,
    pub dw: Conv2d,
    pub project: Conv2d,
    pub residual: bool,
    pub expand_lora: Option<Lora>,
    pub project_lora: Option<Lora>,
}

impl MbConv {
    pub fn new(spec: &BlockSpec, device: &Device) -> Self {
        let hidden = spec.hidden();
        let expand = (spec.expand != 1).then(|| Conv2dConfig::new([spec.cin, hidden], [1, 1]).init(device));
        let dw = Conv2dConfig::new([hidden, hidden], [spec.kernel, spec.kernel])
            .with_stride([spec.stride, spec.stride])
            .with_groups(hidden)
            .with_padding(tf_same_padding(spec.size_in, spec.kernel, spec.stride))
            .init(device);
        let project = Conv2dConfig::new([hidden, spec.cout], [1, 1]).init(device);
        Self {
            expand,
            dw,
            project,
            residual: spec.residual(),
            expand_lora: None,
            project_lora: None,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if channels_last(&x) {
            return to_nchw(self.forward_nhwc(to_nhwc(x)));
        }
        let h = match &self.expand {
            Some(conv) => conv_with_lora_relu6(conv, self.expand_lora.as_ref(), x.clone()),
            None => x.clone(),
        };
        let h = depthwise_relu6(&self.dw, h);
        // The projection is linear: no activation (that is what makes the residual "linear bottleneck").
        let h = conv_with_lora(&self.project, self.project_lora.as_ref(), h);
        if self.residual { x + h } else { h }
    }

    /// The same on channels-last `x` `[n, h, w, c]` (the GPU path, `lora::channels_last`).
    pub fn forward_nhwc(&self, x: Tensor<4>) -> Tensor<4> {
        let h = match &self.expand {
            Some(conv) => conv_rows_relu6(conv, self.expand_lora.as_ref(), x.clone()),
            None => x.clone(),
        };
        let h = depthwise_relu6_nhwc(&self.dw, h);
        let h = conv_rows(&self.project, self.project_lora.as_ref(), h);
        if self.residual { x + h } else { h }
    }
}

/// The classifier on top of the 1280-d embedding: one linear layer, or Linear-ReLU-(Dropout)-Linear.
#[derive(Module, Debug)]
pub struct Classifier {
    pub hidden: Option<Linear>,
    pub out: Linear,
}

impl Classifier {
    pub fn new(num_classes: usize, hidden_units: usize, device: &Device) -> Self {
        if hidden_units == 0 {
            Self {
                hidden: None,
                out: LinearConfig::new(EMBEDDING_DIM, num_classes).init(device),
            }
        } else {
            Self {
                hidden: Some(LinearConfig::new(EMBEDDING_DIM, hidden_units).init(device)),
                out: LinearConfig::new(hidden_units, num_classes).init(device),
            }
        }
    }

    pub fn num_classes(&self) -> usize {
        self.out.weight.dims()[1]
    }

    pub fn forward(&self, embedding: Tensor<2>) -> Tensor<2> {
        match &self.hidden {
            Some(hidden) => dense(&self.out, relu(dense(hidden, embedding))),
            None => dense(&self.out, embedding),
        }
    }
}

#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    pub stem: Conv2d,
    pub blocks: Vec<MbConv>,
    pub head: Conv2d,
    /// LoRA on the head conv (fine-tuned models only).
    pub head_lora: Option<Lora>,
    pub classifier: Classifier,
}

impl EfficientNetLite0Config {
    /// A randomly initialised network (use `load_efficientnet` for the pretrained one).
    pub fn init(&self, device: &Device) -> EfficientNetLite0 {
        EfficientNetLite0 {
            stem: Conv2dConfig::new([3, 32], [3, 3])
                .with_stride([2, 2])
                .with_padding(tf_same_padding(224, 3, 2))
                .init(device),
            blocks: BLOCKS.iter().map(|spec| MbConv::new(spec, device)).collect(),
            head: Conv2dConfig::new([320, EMBEDDING_DIM], [1, 1]).init(device),
            head_lora: None,
            classifier: Classifier::new(self.num_classes, self.hidden_units, device),
        }
    }
}

impl Default for EfficientNetLite0Config {
    fn default() -> Self {
        Self::new()
    }
}

impl EfficientNetLite0 {
    /// Stem: conv 3x3/2 + ReLU6, [N,3,224,224] → [N,32,112,112].
    pub fn stem(&self, input: Tensor<4>) -> Tensor<4> {
        conv_relu6(&self.stem, input)
    }

    /// Runs blocks `from..to` (0..16 is all of them): a range, so a caller can run the backbone in parts.
    pub fn blocks(&self, mut x: Tensor<4>, from: usize, to: usize) -> Tensor<4> {
        for block in &self.blocks[from..to] {
            x = block.forward(x);
        }
        x
    }

    /// Head conv + ReLU6 + global average pool: [N,320,7,7] → the embedding [N,1280].
    pub fn pool(&self, x: Tensor<4>) -> Tensor<2> {
        head_pool(&self.head, self.head_lora.as_ref(), x)
    }

    /// Input after `(u8-127)/128`, NCHW → embedding [N,1280].
    pub fn embed(&self, input: Tensor<4>) -> Tensor<2> {
        let x = self.stem(input);
        let x = self.blocks(x, 0, self.blocks.len());
        self.pool(x)
    }

    /// Input → logits [N, num_classes].
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.embed(input))
    }

    pub fn num_classes(&self) -> usize {
        self.classifier.num_classes()
    }
}

/// Head conv (with its optional adapter) + ReLU6 + global average pool, shared with the fine-tuning tail.
pub fn head_pool(head: &Conv2d, lora: Option<&Lora>, x: Tensor<4>) -> Tensor<2> {
    if channels_last(&x) {
        let h = conv_rows_relu6(head, lora, to_nhwc(x));
        let [n, hh, ww, c] = h.dims();
        return h.reshape([n, hh * ww, c]).mean_dim(1).reshape([n, c]);
    }
    let h = conv_with_lora_relu6(head, lora, x);
    let [n, c, hh, ww] = h.dims();
    h.reshape([n, c, hh * ww]).mean_dim(2).reshape([n, c])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_same_padding_matches_the_reference_table() {
        let pads: Vec<_> = BLOCKS
            .iter()
            .map(|s| tf_same_padding(s.size_in, s.kernel, s.stride))
            .collect();
        assert_eq!(pads[1], PaddingConfig2d::Explicit(0, 0, 1, 1));
        assert_eq!(pads[3], PaddingConfig2d::Explicit(1, 1, 2, 2));
        assert_eq!(pads[4], PaddingConfig2d::Explicit(2, 2, 2, 2));
        assert_eq!(pads[11], PaddingConfig2d::Explicit(1, 1, 2, 2));
        assert_eq!(pads[15], PaddingConfig2d::Explicit(1, 1, 1, 1));
        assert_eq!(tf_same_padding(224, 3, 2), PaddingConfig2d::Explicit(0, 0, 1, 1));
    }

    /// The GPU path's channels-last block computes what the NCHW path does, on the CPU where both run: an
    /// expanding block with a stride-2 5×5 depthwise conv (asymmetric TF-SAME padding) and adapters, and a
    /// residual one.
    #[test]
    fn channels_last_blocks_match_nchw() {
        use crate::rng::Rng;
        use burn::module::Param;
        use burn::tensor::Distribution;
        let device = Device::flex();
        let mut rng = Rng::new(5);
        for spec in [BLOCKS[3], BLOCKS[4]] {
            let mut block = MbConv::new(&spec, &device);
            let hidden = spec.hidden();
            let mut lora = Lora::new(hidden, spec.cout, 4, 4.0, &mut rng, &device);
            lora.b = Param::from_tensor(Tensor::random([spec.cout, 4], Distribution::Normal(0.0, 0.1), &device));
            block.project_lora = Some(lora);
            let x = Tensor::<4>::random(
                [2, spec.cin, spec.size_in, spec.size_in],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let nhwc = to_nchw(block.forward_nhwc(to_nhwc(x.clone())));
            let gap: f32 = (nhwc - block.forward(x)).abs().max().into_scalar();
            assert!(gap < 1e-4, "block {spec:?}: channels-last differs by {gap}");
        }
    }

    #[test]
    fn random_network_has_the_expected_shapes() {
        let device = Device::flex();
        let model = EfficientNetLite0Config::new().with_num_classes(3).init(&device);
        let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
        let stem = model.stem(x);
        assert_eq!(stem.dims(), [1, 32, 112, 112]);
        let feats = model.blocks(stem, 0, 16);
        assert_eq!(feats.dims(), [1, 320, 7, 7]);
        let emb = model.pool(feats);
        assert_eq!(emb.dims(), [1, EMBEDDING_DIM]);
        assert_eq!(model.classifier.forward(emb).dims(), [1, 3]);
    }
}
