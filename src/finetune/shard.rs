//! Data-parallel deep training on the CPU path. A batch is cut into a fixed number of contiguous *parts*
//! (`DeepTrainer::with_parts`), whatever the number of threads; the parts go out in contiguous groups, the first
//! computed by the trainer and each other by a helper (in the browser, a copy of the worker with its own
//! backbone). A helper gets the trainable values and its parts' pixels or cut activations and labels, and answers
//! with each part's cut activations (filling the cache), gradients (training) or loss sums (validation), computed
//! one part at a time exactly as the trainer computes its own. The trainer adds the parts' gradients in their order
//! and takes one optimizer step. So a run gives the same model, bit for bit, on any number of threads: nothing in
//! the tail depends on the batch as a whole (no batch norm, no dropout), each part's mean loss is weighted by its
//! share of the batch, and no sum depends on who computed what.

use std::future::Future;

use serde::{Deserialize, Serialize};

use super::cache::cut_shape;
use crate::floats::{from_le_bytes, to_le_bytes};
use crate::options::FinetuneMode;

#[cfg(feature = "ml")]
mod compute;
#[cfg(all(feature = "ml", not(target_arch = "wasm32")))]
mod devices;
#[cfg(feature = "ml")]
pub use compute::{ShardWorker, answer};
#[cfg(feature = "ml")]
pub(crate) use compute::{answer_with, grads_from_flat, trainable_values};
#[cfg(all(feature = "ml", not(target_arch = "wasm32")))]
pub use devices::DeviceHelpers;

const PIXELS: usize = 224 * 224 * 3;

/// Parts every batch of a deeper run is computed in on the CPU, in the page and in the command, whatever the
/// number of threads: the model is then the same, bit for bit, on 1 to 16 threads.
pub const CPU_PARTS: usize = 16;

/// What a helper computes for its share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ShardTask {
    /// The images' activations at the cut (the frozen prefix), to cache.
    Prefix,
    /// The gradients of each part's mean loss × its share of the whole batch of `batch` images.
    Gradients { batch: usize, smoothing: Option<f32> },
    /// The share's loss and correct predictions only (validation).
    Evaluate,
}

/// A request's description (the message's JSON); the numbers travel as bytes ([`ShardRequest::to_bytes`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub task: ShardTask,
    pub mode: FinetuneMode,
    pub num_classes: usize,
    /// Images per part, in order: each part is computed on its own.
    pub parts: Vec<usize>,
    /// Trainable values sent (the classifier's, then the tail's; none for `Prefix`).
    pub params: usize,
    /// Whether the input is prepared pixels (224×224×3 u8 per image) rather than activations at the cut.
    pub pixels: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShardInput {
    Pixels(Vec<u8>),
    Activations(Vec<f32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRequest {
    pub spec: ShardSpec,
    pub params: Vec<f32>,
    pub labels: Vec<u32>,
    pub input: ShardInput,
}

/// A share's plain (unsmoothed) cross-entropy summed over its images, and its correct predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardSums {
    pub loss: f64,
    pub correct: usize,
    pub images: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardAnswer {
    /// Per part.
    pub sums: Vec<ShardSums>,
    /// The images' cut activations (`Prefix`) or each part's flat gradients, one after the other (`Gradients`);
    /// empty for `Evaluate`.
    pub values: Vec<f32>,
}

impl ShardSpec {
    pub fn images(&self) -> usize {
        self.parts.iter().sum()
    }
}

/// Whoever computes shares beside the trainer.
pub trait Helpers {
    /// Shares that can go out now, beside the trainer's own.
    fn available(&self) -> usize;
    /// Sends each request to a helper of its own *before returning* (the trainer computes its share meanwhile);
    /// the answers come in the requests' order. A failed one is computed by the trainer.
    fn ask(&self, requests: Vec<ShardRequest>) -> impl Future<Output = Vec<Result<ShardAnswer, String>>>;
}

/// The trainer alone (a GPU, or one thread).
pub struct NoHelpers;

impl Helpers for NoHelpers {
    fn available(&self) -> usize {
        0
    }
    fn ask(&self, requests: Vec<ShardRequest>) -> impl Future<Output = Vec<Result<ShardAnswer, String>>> {
        let answers = requests.iter().map(|_| Err("no helper".to_string())).collect();
        std::future::ready(answers)
    }
}

impl<H: Helpers> Helpers for Option<&H> {
    fn available(&self) -> usize {
        self.map_or(0, |h| h.available())
    }
    fn ask(&self, requests: Vec<ShardRequest>) -> impl Future<Output = Vec<Result<ShardAnswer, String>>> {
        // Asked now, not when first polled: the trainer computes its own share in between.
        let asked = match self {
            Some(h) => Ok(h.ask(requests)),
            None => Err(requests.len()),
        };
        async move {
            match asked {
                Ok(answers) => answers.await,
                Err(n) => (0..n).map(|_| Err("no helper".to_string())).collect(),
            }
        }
    }
}

impl ShardRequest {
    /// The numbers as bytes: the values, the labels (u32), then the input (pixels as they are, activations as
    /// f32), all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = to_le_bytes(&self.params);
        out.extend(self.labels.iter().flat_map(|l| l.to_le_bytes()));
        match &self.input {
            ShardInput::Pixels(p) => out.extend_from_slice(p),
            ShardInput::Activations(a) => out.extend(to_le_bytes(a)),
        }
        out
    }

    /// The request `spec` describes, from [`ShardRequest::to_bytes`]'s bytes; a length that does not match says so.
    pub fn from_bytes(spec: ShardSpec, bytes: &[u8]) -> Result<Self, String> {
        let [c, h, w] = cut_shape(spec.mode.cut());
        let per_image = if spec.pixels { PIXELS } else { 4 * c * h * w };
        let images = spec.images();
        let expected = 4 * spec.params + 4 * images + per_image * images;
        if bytes.len() != expected {
            return Err(format!("a share of {} bytes, expected {expected}", bytes.len()));
        }
        let (params, rest) = bytes.split_at(4 * spec.params);
        let (labels, input) = rest.split_at(4 * images);
        let labels: Vec<u32> = labels
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= spec.num_classes) {
            return Err(format!("label {bad} is out of range for {} classes", spec.num_classes));
        }
        let input = if spec.pixels {
            ShardInput::Pixels(input.to_vec())
        } else {
            ShardInput::Activations(from_le_bytes(input))
        };
        Ok(Self {
            params: from_le_bytes(params),
            labels,
            input,
            spec,
        })
    }
}

/// `n` items split into `parts` contiguous ranges whose sizes differ by at most one.
#[cfg(feature = "ml")]
pub(crate) fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts).map(|i| i * n / parts..(i + 1) * n / parts).collect()
}
