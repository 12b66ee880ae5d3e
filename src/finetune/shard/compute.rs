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
pub(crate) fn share_gradients(
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
/// or classes differ from its own.
pub async fn answer(
    base: &EfficientNetLite0,
    slot: &mut Option<ShardWorker>,
    request: ShardRequest,
) -> Result<ShardAnswer, String> {
    let ShardRequest {
        spec,
        params,
        labels,
        input,
    } = request;
    let device = base.head.weight.device().inner();
    let x = match input {
        ShardInput::Pixels(pixels) => {
            let images: Vec<&[u8]> = pixels.chunks_exact(PIXELS).collect();
            base.blocks(base.stem(input_tensor(&images, &device)), 0, spec.mode.cut())
        }
        ShardInput::Activations(values) => {
            let [c, h, w] = cut_shape(spec.mode.cut());
            Tensor::from_data(TensorData::new(values, [spec.images, c, h, w]), &device)
        }
    };
    if spec.task == ShardTask::Prefix {
        let values = read(x).await?;
        let sums = ShardSums::default();
        return Ok(ShardAnswer { sums, values });
    }
    if slot
        .as_ref()
        .is_none_or(|w| w.mode != spec.mode || w.num_classes != spec.num_classes)
    {
        *slot = Some(ShardWorker::new(base, spec.mode, spec.num_classes));
    }
    let worker = slot.as_mut().expect("made above");
    let mut setter = SetTrainable {
        values: &params,
        offset: 0,
    };
    worker.classifier = worker.classifier.clone().map(&mut setter);
    worker.tail = worker.tail.clone().map(&mut setter);
    if setter.offset != params.len() {
        return Err(format!(
            "{} trainable values sent, {} expected",
            params.len(),
            setter.offset
        ));
    }
    let y: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let (values, pending) = match spec.task {
        ShardTask::Gradients { weight, smoothing } => {
            let (grads, pending) = share_gradients(&worker.classifier, &worker.tail, x, &y, weight, smoothing);
            (read(grads).await?, pending)
        }
        _ => {
            let logits = worker.classifier.valid().forward(worker.tail.valid().forward(x));
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [labels.len()]), &device);
            (Vec::new(), PendingLoss::new(logits, y, &device))
        }
    };
    let loss = pending.read().await?;
    let sums = ShardSums {
        loss: loss.loss as f64 * loss.images as f64,
        correct: loss.correct,
        images: loss.images,
    };
    Ok(ShardAnswer { sums, values })
}

async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    t.into_data_async()
        .await
        .map_err(|e| format!("reading a share: {e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading a share: {e:?}"))
}
