//! What the deep trainer takes and reports, and the small pieces of a step: input checks, the read-back of a
//! batch's loss and accuracy, running sums.

use std::future::{Future, poll_fn};
use std::task::Poll;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, Transaction};

pub use super::Augment;
use crate::head::EpochMetrics;

/// Prepared images (224×224×3 HWC u8), their labels and the train/validation split.
#[derive(Debug, Clone)]
pub struct TrainData {
    /// An empty image is kept elsewhere (the page's storage): the trainer asks for it by its key when a step
    /// needs it (`DeepTrainer::wanted`) and drops it after, so memory is bounded by the batch, not the dataset.
    pub images: Vec<Vec<u8>>,
    /// `data::pixel_key` of every image; empty when every image is in `images` (computed from the pixels).
    pub keys: Vec<u64>,
    pub labels: Vec<usize>,
    pub num_classes: usize,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

impl TrainData {
    /// The pixel key of image `i`.
    pub fn key(&self, i: usize) -> u64 {
        self.keys
            .get(i)
            .copied()
            .unwrap_or_else(|| crate::data::pixel_key(&self.images[i]))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running the frozen prefix once per image to fill the activation cache.
    Caching,
    Training,
    Validating,
    Done,
}

/// What one `step` did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub phase: Phase,
    /// 0-based epoch the step belongs to.
    pub epoch: usize,
    /// Step within the phase (1-based, after this step) and the phase's steps.
    pub step: usize,
    pub steps: usize,
    /// Images this step processed.
    pub images: usize,
    /// Set when this step finished an epoch.
    pub epoch_metrics: Option<EpochMetrics>,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Sums {
    pub loss: f64,
    pub correct: usize,
    pub seen: usize,
}

impl Sums {
    pub fn add(&mut self, batch: BatchLoss) {
        self.loss += batch.loss as f64 * batch.images as f64;
        self.correct += batch.correct;
        self.seen += batch.images;
    }

    pub fn mean(&self) -> (f32, f32) {
        let n = self.seen.max(1) as f64;
        ((self.loss / n) as f32, (self.correct as f64 / n) as f32)
    }
}

pub(crate) fn check_data(data: &TrainData) -> Result<(), String> {
    let n = data.images.len();
    if data.labels.len() != n {
        return Err(format!("{n} images but {} labels", data.labels.len()));
    }
    if !data.keys.is_empty() && data.keys.len() != n {
        return Err(format!("{n} images but {} keys", data.keys.len()));
    }
    let kept_elsewhere = |im: &Vec<u8>| im.is_empty() && !data.keys.is_empty();
    if let Some(i) = data
        .images
        .iter()
        .position(|im| im.len() != 224 * 224 * 3 && !kept_elsewhere(im))
    {
        return Err(format!(
            "image {i} has {} bytes, expected 224×224×3",
            data.images[i].len()
        ));
    }
    if data.num_classes < 2 {
        return Err(format!("training needs at least 2 classes (got {})", data.num_classes));
    }
    if let Some(bad) = data.labels.iter().find(|&&l| l >= data.num_classes) {
        return Err(format!("label {bad} is out of range for {} classes", data.num_classes));
    }
    if data.train.is_empty() {
        return Err("there are no training images".into());
    }
    if let Some(bad) = data.train.iter().chain(&data.val).find(|&&i| i >= n) {
        return Err(format!("sample index {bad} is out of range ({n} samples)"));
    }
    Ok(())
}

/// A batch's plain (unsmoothed) mean cross-entropy and correct predictions, read back.
pub(crate) struct BatchLoss {
    pub loss: f32,
    pub correct: usize,
    pub images: usize,
}

/// [`BatchLoss`] of `logits` against `labels`, read back.
pub(crate) async fn read_loss(logits: Tensor<2>, labels: Tensor<1, Int>, device: &Device) -> Result<BatchLoss, String> {
    PendingLoss::new(logits, labels, device).read().await
}

/// A [`BatchLoss`] computed on the device and not read back yet.
pub(crate) struct PendingLoss {
    loss: Tensor<1>,
    correct: Tensor<1, Int>,
    images: usize,
}

impl PendingLoss {
    pub fn new(logits: Tensor<2>, labels: Tensor<1, Int>, device: &Device) -> Self {
        let images = labels.dims()[0];
        let loss = CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits.clone(), labels.clone());
        let correct = logits.argmax(1).squeeze_dim::<1>(1).equal(labels).int().sum();
        Self { loss, correct, images }
    }

    pub async fn read(self) -> Result<BatchLoss, String> {
        let mut out = Transaction::default()
            .register(self.loss)
            .register(self.correct)
            .execute_async()
            .await
            .map_err(|e| format!("reading the loss: {e:?}"))?
            .into_iter();
        let (Some(loss), Some(correct)) = (out.next(), out.next()) else {
            return Err("the loss read-back returned fewer tensors than registered".into());
        };
        let loss = loss
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| format!("reading the loss: {e:?}"))?;
        let correct = correct
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| format!("reading accuracy: {e:?}"))?;
        Ok(BatchLoss {
            loss: loss[0],
            correct: correct[0] as usize,
            images: self.images,
        })
    }

    /// Runs `record` while this loss is read back: the read is polled once first, which queues its copy before
    /// the work `record` adds, so a GPU runs that work while the CPU records the next step instead of waiting
    /// for a read-back every step. On the CPU the read is ready at once.
    pub async fn read_during<T>(
        previous: Option<Self>,
        record: impl FnOnce() -> T,
    ) -> (Option<Result<BatchLoss, String>>, T) {
        let Some(previous) = previous else {
            return (None, record());
        };
        let mut read = Box::pin(previous.read());
        let started = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
        let recorded = record();
        let read = match started {
            Poll::Ready(read) => read,
            Poll::Pending => read.await,
        };
        (Some(read), recorded)
    }
}
