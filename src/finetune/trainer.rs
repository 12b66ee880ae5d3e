//! The deep fine-tuning loop, one mini-batch per call: caching cut activations, AdamW steps with separate
//! learning rates for the classifier and the backbone part, cosine decay with warm-up, validation after every
//! epoch, early stopping and the best epoch's trainable parameters kept.

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::Device;

use super::cache::ActivationCache;
use super::optim::FlatAdamW;
use super::shard::{Helpers, NoHelpers};
use super::step::{Augment, PendingLoss, Phase, StepReport, Sums, TrainData, read_loss};
use super::tail::Tail;
use crate::head::epoch_log::EpochLog;
use crate::model::embed::input_tensor;
use crate::model::{Classifier, EfficientNetLite0};
use crate::options::{FinetuneMode, TrainOptions};
use crate::rng::Rng;

mod bank;
mod batch;
mod checkpoint;
mod kept;
mod results;
mod rounds;
mod setup;
mod shares;
mod stream;

pub use checkpoint::fingerprint;

enum State {
    Caching {
        /// (image, view) pairs to run through the frozen prefix once.
        queue: Vec<(usize, usize)>,
        next: usize,
    },
    Training {
        order: Vec<usize>,
        next: usize,
        sums: Sums,
        /// The previous step's loss, read back during this step (`PendingLoss::read_during`).
        pending: Option<Box<PendingLoss>>,
    },
    Validating {
        /// The epoch's model in inference mode (boxed: the other states are small).
        model: Box<(Tail, Classifier)>,
        next: usize,
        train: Sums,
        sums: Sums,
    },
    Done,
}

pub struct DeepTrainer {
    base: EfficientNetLite0,
    device: Device,
    autodiff: Device,
    data: TrainData,
    options: TrainOptions,
    /// What trains (`options`' deep mode).
    mode: FinetuneMode,
    tail: Tail,
    classifier: Classifier,
    opt_head: FlatAdamW,
    opt_backbone: FlatAdamW,
    augment: Option<Augment>,
    rng: Rng,
    /// The generator as it was before the current epoch's shuffle (what a checkpoint saves).
    epoch_rng: Rng,
    /// Of the data (`checkpoint::fingerprint`): a checkpoint resumes only on the same data.
    fingerprint: u64,
    cache: ActivationCache,
    /// Augmented views per training image cycled across epochs (0: a new view every epoch).
    views: usize,
    state: State,
    step_count: usize,
    /// Steps the schedule runs to (cut when the time budget holds fewer, `rounds.rs`).
    total_steps: usize,
    /// Validations per pass over the training images: 1 (an epoch) on small sets, more on large ones.
    rounds: usize,
    /// The pass under way's shuffled training images, a round's share at a time.
    pass_order: Vec<usize>,
    /// Validation images before `rounds::validation_subset`.
    val_images: usize,
    /// Steps done at the end of each round of this session (a resumed run's earlier ones are computed).
    round_steps: Vec<usize>,
    /// The most threads a step was shared across (1: this one alone).
    threads: usize,
    /// Parts every batch is computed in, whatever the number of threads (`with_parts`; 1: whole batches).
    parts: usize,
    trainable_params: usize,
    /// Pixels of images kept out of memory, read in for the next step (`stream.rs`).
    loaded: HashMap<usize, Vec<u8>>,
    /// History, the best epoch's trainable part (tail and classifier, off autodiff), why the run ended.
    log: EpochLog<(Tail, Classifier)>,
}

impl DeepTrainer {
    /// Computes every batch in `parts` contiguous parts whose gradients are summed in order, on this thread or on
    /// helpers (`step_with`): the same model, bit for bit, on any number of threads up to `parts`. For the CPU,
    /// where a part costs about what its images cost; a GPU wants whole batches.
    pub fn with_parts(mut self, parts: usize) -> Self {
        self.parts = parts.max(1);
        self
    }

    /// The user pressed Stop: takes effect now; the best epoch so far is kept.
    pub fn request_stop(&mut self) {
        self.log.request_stop();
        self.state = State::Done;
    }

    /// Runs one step: a batch of caching, of training (forward, backward, AdamW) or of validation.
    pub async fn step(&mut self) -> Result<StepReport, String> {
        self.step_with(&NoHelpers).await
    }

    /// [`DeepTrainer::step`], the batch shared out with `helpers` when any is available (`finetune::shard`).
    pub async fn step_with(&mut self, helpers: &impl Helpers) -> Result<StepReport, String> {
        let shared = helpers.available() > 0 || self.parts > 1;
        if helpers.available() > 0 {
            self.threads = self.threads.max(helpers.available() + 1);
        }
        if let Some(&i) = self.wanted(0).first() {
            return Err(format!(
                "image {i} is not read in for this step (`DeepTrainer::wanted`)"
            ));
        }
        let report = self.advance(helpers, shared).await;
        self.release();
        report
    }

    async fn advance(&mut self, helpers: &impl Helpers, shared: bool) -> Result<StepReport, String> {
        let epoch = self.log.next_epoch();
        let bs = self.options.batch_size;
        let state = std::mem::replace(&mut self.state, State::Done);
        let (report, next) = match state {
            State::Done => {
                let report = StepReport {
                    phase: Phase::Done,
                    epoch,
                    step: 0,
                    steps: 0,
                    images: 0,
                    epoch_metrics: None,
                };
                return Ok(report);
            }
            State::Caching { queue, next } => {
                let ids = queue[next..(next + bs).min(queue.len())].to_vec();
                if shared && ids.len() > 1 {
                    self.cache_shared(&ids, helpers).await?;
                } else {
                    let pixels = self.views_pixels(&ids);
                    let refs: Vec<&[u8]> = pixels.iter().map(|p| p.as_ref()).collect();
                    let acts = self.prefix(input_tensor(&refs, &self.device));
                    let values = acts
                        .into_data_async()
                        .await
                        .map_err(|e| format!("reading cut activations: {e:?}"))?
                        .try_to_vec::<f32>()
                        .map_err(|e| format!("reading cut activations: {e:?}"))?;
                    let per = self.cache.floats_per_image();
                    for (&(i, v), chunk) in ids.iter().zip(values.chunks_exact(per)) {
                        self.cache.insert(i, v, chunk);
                    }
                }
                let done = next + ids.len();
                let report = StepReport {
                    phase: Phase::Caching,
                    epoch,
                    step: done.div_ceil(bs),
                    steps: queue.len().div_ceil(bs),
                    images: ids.len(),
                    epoch_metrics: None,
                };
                let next = if done < queue.len() {
                    State::Caching { queue, next: done }
                } else {
                    self.start_epoch()
                };
                (report, next)
            }
            State::Training {
                order,
                next,
                mut sums,
                pending,
            } => {
                let batch = &order[next..(next + bs).min(order.len())];
                let (pending, images) = if shared && batch.len() > 1 {
                    if let Some(previous) = pending {
                        sums.add(previous.read().await?);
                    }
                    sums.add(self.train_shared(batch, epoch, helpers).await?);
                    (None, batch.len())
                } else {
                    // The previous step's loss is read back while this step is recorded.
                    let (previous, (this, images)) = PendingLoss::read_during(pending.map(|p| *p), || {
                        let (x, ids) = self.cut_input(batch, Some(epoch));
                        (self.train_batch(x, &ids), ids.len())
                    })
                    .await;
                    if let Some(read) = previous {
                        sums.add(read?);
                    }
                    (Some(this), images)
                };
                let done = next + images;
                let pending = match pending {
                    Some(this) if done < order.len() => Some(Box::new(this)),
                    Some(this) => {
                        sums.add(this.read().await?);
                        None
                    }
                    None => None,
                };
                let report = StepReport {
                    phase: Phase::Training,
                    epoch,
                    step: done.div_ceil(bs),
                    steps: order.len().div_ceil(bs),
                    images,
                    epoch_metrics: None,
                };
                let next = if done < order.len() {
                    State::Training {
                        order,
                        next: done,
                        sums,
                        pending,
                    }
                } else if self.data.val.is_empty() {
                    let metrics = self.end_epoch(sums, sums);
                    return Ok(StepReport {
                        epoch_metrics: Some(metrics),
                        ..report
                    });
                } else {
                    State::Validating {
                        model: Box::new((self.tail.valid(), self.classifier.valid())),
                        next: 0,
                        train: sums,
                        sums: Sums::default(),
                    }
                };
                (report, next)
            }
            State::Validating {
                model,
                next,
                train,
                mut sums,
            } => {
                let val = self.data.val.clone();
                let batch = &val[next..(next + bs).min(val.len())];
                let images = if shared && batch.len() > 1 {
                    sums.add(self.validate_shared(batch, helpers).await?);
                    batch.len()
                } else {
                    let (x, ids) = self.cut_input(batch, None);
                    let logits = model.1.forward(model.0.forward(x));
                    sums.add(read_loss(logits, self.labels(&ids, &self.device), &self.device).await?);
                    ids.len()
                };
                let done = next + images;
                let mut report = StepReport {
                    phase: Phase::Validating,
                    epoch,
                    step: done.div_ceil(bs),
                    steps: val.len().div_ceil(bs),
                    images,
                    epoch_metrics: None,
                };
                if done < val.len() {
                    (
                        report,
                        State::Validating {
                            model,
                            next: done,
                            train,
                            sums,
                        },
                    )
                } else {
                    report.epoch_metrics = Some(self.end_epoch(train, sums));
                    return Ok(report);
                }
            }
        };
        self.state = next;
        Ok(report)
    }
}
