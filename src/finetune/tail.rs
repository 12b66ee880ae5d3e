//! The trainable end of the backbone: the last blocks and the head conv (with adapters in LoRA mode), and
//! the conversions between burn's `Classifier` and the plain-Rust `Head` the export writes.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

use crate::head::{Dense, Head};
use crate::model::efficientnet::head_pool;
use crate::model::{BLOCKS, BackboneDelta, Classifier, ConvDelta, ConvUpdate, EfficientNetLite0, Lora, MbConv};
use crate::options::FinetuneMode;
use crate::rng::Rng;

/// Blocks `first..16`, the head conv and its adapter: cut activations → the 1280-d embedding.
#[derive(Module, Debug)]
pub struct Tail {
    pub blocks: Vec<MbConv>,
    pub head: Conv2d,
    pub head_lora: Option<Lora>,
}

impl Tail {
    /// The tail of `model` for `mode`, still on the model's device and with its parameters' trainability set:
    /// in LoRA mode only the (new, seeded) adapters train; otherwise every conv of the tail does.
    pub fn new(model: &EfficientNetLite0, mode: FinetuneMode, rng: &mut Rng) -> Self {
        let cut = mode.cut();
        let blocks = model.blocks[cut..].to_vec();
        let head = model.head.clone();
        match mode {
            FinetuneMode::LastBlocks { .. } => Self {
                blocks,
                head,
                head_lora: None,
            }
            .set_require_grad(true),
            FinetuneMode::Lora { rank, alpha, .. } => {
                let device = &model.head.weight.device();
                let mut adapter = |conv: &Conv2d| {
                    let [c_out, c_in, _, _] = conv.weight.dims();
                    Lora::new(c_in, c_out, rank, alpha, rng, device)
                };
                let blocks = blocks
                    .into_iter()
                    .map(|block| {
                        let block = block.no_grad();
                        MbConv {
                            expand_lora: block.expand.as_ref().map(&mut adapter),
                            project_lora: Some(adapter(&block.project)),
                            ..block
                        }
                    })
                    .collect();
                let head_lora = Some(adapter(&head));
                Self {
                    blocks,
                    head: head.no_grad(),
                    head_lora,
                }
            }
        }
    }

    /// Index of the first block of the tail in the whole network.
    pub fn first_block(&self) -> usize {
        BLOCKS.len() - self.blocks.len()
    }

    /// Cut activations `[n, c, h, w]` → embeddings `[n, 1280]`.
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for block in &self.blocks {
            x = block.forward(x);
        }
        head_pool(&self.head, self.head_lora.as_ref(), x)
    }

    /// The whole network with this tail and `classifier` in place of `base`'s (adapters kept, not merged).
    pub fn assemble(&self, base: &EfficientNetLite0, classifier: &Classifier) -> EfficientNetLite0 {
        let cut = self.first_block();
        let mut blocks = base.blocks[..cut].to_vec();
        blocks.extend(self.blocks.iter().cloned());
        EfficientNetLite0 {
            stem: base.stem.clone(),
            blocks,
            head: self.head.clone(),
            head_lora: self.head_lora.clone(),
            classifier: classifier.clone(),
        }
    }

    /// What training changed, per conv and in clean names: adapters in LoRA mode, full folded weights and
    /// biases otherwise.
    pub async fn delta(&self) -> Result<BackboneDelta, String> {
        let mut convs = Vec::new();
        let first = self.first_block();
        for (j, block) in self.blocks.iter().enumerate() {
            let i = first + j;
            let lora_mode = block.project_lora.is_some();
            if let Some(expand) = &block.expand {
                convs.push(conv_delta(&format!("blocks.{i}.expand.conv"), expand, block.expand_lora.as_ref()).await?);
            }
            if !lora_mode {
                convs.push(conv_delta(&format!("blocks.{i}.dw.conv"), &block.dw, None).await?);
            }
            convs.push(
                conv_delta(
                    &format!("blocks.{i}.project.conv"),
                    &block.project,
                    block.project_lora.as_ref(),
                )
                .await?,
            );
        }
        convs.push(conv_delta("head.conv", &self.head, self.head_lora.as_ref()).await?);
        Ok(BackboneDelta { convs })
    }
}

async fn read(tensor: Tensor<1>, what: &str) -> Result<Vec<f32>, String> {
    tensor
        .into_data_async()
        .await
        .map_err(|e| format!("reading {what}: {e:?}"))?
        .try_to_vec::<f32>()
        .map_err(|e| format!("reading {what}: {e:?}"))
}

async fn conv_delta(name: &str, conv: &Conv2d, lora: Option<&Lora>) -> Result<ConvDelta, String> {
    let shape = conv.weight.dims();
    let update = match lora {
        Some(lora) => ConvUpdate::Lora {
            a: read(lora.a.val().flatten(0, 1), &format!("{name} lora A")).await?,
            b: read(lora.b.val().flatten(0, 1), &format!("{name} lora B")).await?,
            rank: lora.rank(),
            scale: lora.scale,
        },
        None => {
            let bias = conv.bias.as_ref().ok_or_else(|| format!("{name} has no bias"))?;
            ConvUpdate::Full {
                weight: read(conv.weight.val().flatten(0, 3), &format!("{name} weight")).await?,
                bias: read(bias.val(), &format!("{name} bias")).await?,
            }
        }
    };
    Ok(ConvDelta {
        name: name.to_string(),
        shape,
        update,
    })
}

/// burn's `Linear` stores `[in, out]`; `Dense` is PyTorch's `[out, in]`.
fn linear_from_dense(dense: &Dense, device: &Device) -> Linear {
    let mut w = vec![0.0f32; dense.weight.len()];
    for o in 0..dense.d_out {
        for i in 0..dense.d_in {
            w[i * dense.d_out + o] = dense.weight[o * dense.d_in + i];
        }
    }
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [dense.d_in, dense.d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(dense.bias.clone(), [dense.d_out]),
            device,
        ))),
    }
}

async fn dense_from_linear(linear: &Linear) -> Result<Dense, String> {
    let [d_in, d_out] = linear.weight.dims();
    let w = read(linear.weight.val().flatten(0, 1), "classifier weight").await?;
    let bias = match &linear.bias {
        Some(b) => read(b.val(), "classifier bias").await?,
        None => vec![0.0; d_out],
    };
    let mut weight = vec![0.0f32; w.len()];
    for i in 0..d_in {
        for o in 0..d_out {
            weight[o * d_in + i] = w[i * d_out + o];
        }
    }
    Ok(Dense {
        d_in,
        d_out,
        weight,
        bias,
    })
}

/// The plain-Rust head (PyTorch init, seeded) as a burn classifier on `device`.
pub fn classifier_from_head(head: &Head, device: &Device) -> Classifier {
    Classifier {
        hidden: head.hidden.as_ref().map(|d| linear_from_dense(d, device)),
        out: linear_from_dense(&head.out, device),
    }
}

/// A trained burn classifier as the plain-Rust head the export writes.
pub async fn head_from_classifier(classifier: &Classifier) -> Result<Head, String> {
    let hidden = match &classifier.hidden {
        Some(h) => Some(dense_from_linear(h).await?),
        None => None,
    };
    Ok(Head {
        hidden,
        out: dense_from_linear(&classifier.out).await?,
        dropout: 0.0,
    })
}
