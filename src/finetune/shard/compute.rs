//! The burn side of a share: the trainable values and gradients as flat vectors, a share's gradients, and a
//! helper's answer.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{PIXELS, ShardAnswer, ShardInput, ShardRequest, ShardSums, ShardTask};
use crate::finetune::cache::cut_shape;
use crate::finetune::step::PendingLoss;
use crate::finetune::tail::{Tail, classifier_from_head};
use crate::head::Head;
use crate::model::embed::input_tensor;
use crate::model::{Classifier, EMBEDDING_DIM, EfficientNetLite0};
use crate::options::FinetuneMode;
use crate::rng::Rng;

/// Collects the trainable tensors (those that require gradients) of a module, flattened, in visiting order.
struct Trainable(Vec<Tensor<1>>);

impl ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            self.0.push(value.inner().flatten(0, D - 1));
        }
    }
}

/// The trainable values of `module` as one vector (plain device).
pub(crate) fn trainable_values<M: Module>(module: &M) -> Vec<Tensor<1>> {
    let mut visitor = Trainable(Vec::new());
    module.visit(&mut visitor);
    visitor.0
}

/// Replaces the trainable tensors of a module by consecutive slices of `values`, from `offset` on.
struct SetTrainable<'a> {
    values: &'a [f32],
    offset: usize,
}

impl ModuleMapper for SetTrainable<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        if !tensor.is_require_grad() {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let shape = tensor.shape();
        let n = shape.num_elements();
        let end = (self.offset + n).min(self.values.len());
        let mut slice = self.values[self.offset.min(end)..end].to_vec();
        slice.resize(n, 0.0);
        self.offset += n;
        let value = Tensor::<D>::from_data(TensorData::new(slice, shape), &tensor.device()).require_grad();
        Param::from_mapped_value(id, value, mapper)
    }
}

/// The trainable tensors' gradients, in visiting order (zeros for one without a gradient).
struct FlatGrads<'a> {
    grads: &'a GradientsParams,
    out: Vec<Tensor<1>>,
}

impl ModuleVisitor for FlatGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            let grad = self
                .grads
                .get::<D>(param.id)
                .unwrap_or_else(|| value.inner().zeros_like());
            self.out.push(grad.flatten(0, D - 1));
        }
    }
}

/// Gradients for `module`'s trainable tensors from consecutive slices of `flat`, from `offset` on.
struct FromFlat<'a> {
    flat: &'a Tensor<1>,
    offset: usize,
    grads: GradientsParams,
}

impl ModuleVisitor for FromFlat<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            let shape = value.shape();
            let n = shape.num_elements();
            let slice = self.flat.clone().slice(self.offset..self.offset + n).reshape(shape);
            self.offset += n;
            self.grads.register::<D>(param.id, slice);
        }
    }
}

/// The gradients of the classifier and the tail from one flat vector (classifier first).
pub(crate) fn grads_from_flat(
    classifier: &Classifier,
    tail: &Tail,
    flat: &Tensor<1>,
) -> (GradientsParams, GradientsParams) {
    let mut head = FromFlat {
        flat,
        offset: 0,
        grads: GradientsParams::new(),
    };
    classifier.visit(&mut head);
    let mut backbone = FromFlat {
        flat,
        offset: head.offset,
        grads: GradientsParams::new(),
    };
    tail.visit(&mut backbone);
    (head.grads, backbone.grads)
}

/// The flat gradients (classifier's, then the tail's) of `weight` × the mean loss of `x` (activations at the
/// cut, plain device) against `labels`, and the share's plain loss left on the device.
fn share_gradients(
    classifier: &Classifier,
    tail: &Tail,
    x: Tensor<4>,
    labels: &[i64],
    weight: f32,
    smoothing: Option<f32>,
) -> (Tensor<1>, PendingLoss) {
    let device = x.device();
    let autodiff = device.clone().autodiff();
    let label_tensor = |d: &Device| Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [labels.len()]), d);
    let logits = classifier.forward(tail.forward(x.autodiff()));
    let loss = CrossEntropyLossConfig::new()
        .with_smoothing(smoothing)
        .init(&autodiff)
        .forward(logits.clone(), label_tensor(&autodiff));
    let mut grads = loss.mul_scalar(weight).backward();
    let mut out = Vec::new();
    let head = GradientsParams::from_module(&mut grads, classifier);
    let mut flat = FlatGrads { grads: &head, out };
    classifier.visit(&mut flat);
    out = flat.out;
    let backbone = GradientsParams::from_module(&mut grads, tail);
    let mut flat = FlatGrads { grads: &backbone, out };
    tail.visit(&mut flat);
    let pending = PendingLoss::new(logits.inner(), label_tensor(&device), &device);
    (Tensor::cat(flat.out, 0), pending)
}

/// A helper's copy of the trainable part, made for a mode and a number of classes; its values come with each
/// request.
pub struct ShardWorker {
    mode: FinetuneMode,
    num_classes: usize,
    tail: Tail,
    classifier: Classifier,
}

impl ShardWorker {
    fn new(base: &EfficientNetLite0, mode: FinetuneMode, num_classes: usize) -> Self {
        let device = base.head.weight.device().inner();
        let mut rng = Rng::new(0);
        let head = Head::new(EMBEDDING_DIM, num_classes, 0, 0.0, &mut rng);
        Self {
            mode,
            num_classes,
            tail: Tail::new(base, mode, &mut rng).train(),
            classifier: classifier_from_head(&head, &device).train(),
        }
    }
}

/// Answers `request` with `base` (the frozen prefix) and the copy in `slot`, made (again) when the request's mode
/// or classes differ from its own, its trainable values set from the request.
pub async fn answer(
    base: &EfficientNetLite0,
    slot: &mut Option<ShardWorker>,
    request: ShardRequest,
) -> Result<ShardAnswer, String> {
    let spec = &request.spec;
    if spec.task == ShardTask::Prefix {
        return answer_with(base, None, &request).await;
    }
    if slot
        .as_ref()
        .is_none_or(|w| w.mode != spec.mode || w.num_classes != spec.num_classes)
    {
        *slot = Some(ShardWorker::new(base, spec.mode, spec.num_classes));
    }
    let worker = slot.as_mut().expect("made above");
    let mut setter = SetTrainable {
        values: &request.params,
        offset: 0,
    };
    worker.classifier = worker.classifier.clone().map(&mut setter);
    worker.tail = worker.tail.clone().map(&mut setter);
    if setter.offset != request.params.len() {
        return Err(format!(
            "{} trainable values sent, {} expected",
            request.params.len(),
            setter.offset
        ));
    }
    answer_with(base, Some((&worker.classifier, &worker.tail)), &request).await
}

/// Answers `request` part by part with `base`'s frozen prefix and the trainable part `model` (its own values; the
/// request's are not read): the trainer computes its own parts with this too, so a part's numbers do not depend
/// on who computes it.
pub(crate) async fn answer_with(
    base: &EfficientNetLite0,
    model: Option<(&Classifier, &Tail)>,
    request: &ShardRequest,
) -> Result<ShardAnswer, String> {
    let spec = &request.spec;
    let device = base.head.weight.device().inner();
    let [c, h, w] = cut_shape(spec.mode.cut());
    let (mut sums, mut values) = (Vec::new(), Vec::new());
    let mut start = 0;
    for &n in &spec.parts {
        let x = match &request.input {
            ShardInput::Pixels(pixels) => {
                let images: Vec<&[u8]> = pixels[start * PIXELS..(start + n) * PIXELS]
                    .chunks_exact(PIXELS)
                    .collect();
                base.blocks(base.stem(input_tensor(&images, &device)), 0, spec.mode.cut())
            }
            ShardInput::Activations(all) => {
                let per = c * h * w;
                let part = all[start * per..(start + n) * per].to_vec();
                Tensor::from_data(TensorData::new(part, [n, c, h, w]), &device)
            }
        };
        let y: Vec<i64> = request.labels[start..start + n].iter().map(|&l| l as i64).collect();
        start += n;
        let pending = match (spec.task, model) {
            (ShardTask::Prefix, _) => {
                values.extend(read(x.flatten::<1>(0, 3)).await?);
                sums.push(ShardSums {
                    images: n,
                    ..ShardSums::default()
                });
                continue;
            }
            (_, None) => return Err("a part to train or validate came without the model".into()),
            (ShardTask::Gradients { batch, smoothing }, Some((classifier, tail))) => {
                let weight = n as f32 / batch.max(1) as f32;
                let (grads, pending) = share_gradients(classifier, tail, x, &y, weight, smoothing);
                values.extend(read(grads).await?);
                pending
            }
            (ShardTask::Evaluate, Some((classifier, tail))) => {
                let logits = classifier.valid().forward(tail.valid().forward(x));
                let y = Tensor::<1, Int>::from_data(TensorData::new(y, [n]), &device);
                PendingLoss::new(logits, y, &device)
            }
        };
        let loss = pending.read().await?;
        sums.push(ShardSums {
            loss: loss.loss as f64 * loss.images as f64,
            correct: loss.correct,
            images: loss.images,
        });
    }
    Ok(ShardAnswer { sums, values })
}

async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    t.into_data_async()
        .await
        .map_err(|e| format!("reading a share: {e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading a share: {e:?}"))
}
