//! The deep trainer's state at the end of an epoch as bytes, and a trainer continued from them: a run cut
//! short (the page reloaded) goes on from its last epoch exactly as if it had not stopped.
//!
//! Saved: the trainable tensors (adapters or tail convs, and the classifier) with their parameter ids, the best
//! epoch's trainable tensors, both optimizers' moments (`FlatAdamW::to_bytes`, in the same tensor order), the epoch log, the step count, the shuffling generator's state, the options and a fingerprint of the
//! data. Not saved: the cut activations, which are recomputed (they are a function of the images and options).
//!
//! Layout: `AJCKPT01`, a little-endian u32 length and that many bytes of JSON ([`Header`]), then the f32 values
//! (little-endian) of the current and then the best trainable tensors, then the two optimizers' bytes.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData, Transaction};
use serde::{Deserialize, Serialize};

use super::{DeepTrainer, State};
use crate::finetune::step::TrainData;
use crate::floats::{from_le_bytes, to_le_bytes};
use crate::head::EpochMetrics;
use crate::head::epoch_log::EpochLog;
use crate::options::TrainOptions;
use crate::rng::Rng;

const MAGIC: &[u8; 8] = b"AJCKPT02";

#[derive(Serialize, Deserialize)]
struct Header {
    options: TrainOptions,
    fingerprint: u64,
    /// The generator's state before the next epoch's shuffle.
    rng: u64,
    step_count: usize,
    history: Vec<EpochMetrics>,
    best: Option<EpochMetrics>,
    stop_reason: Option<String>,
    /// Ids of the trainable tensors, tail first, then the classifier, in the modules' visiting order.
    ids: Vec<u64>,
    /// f32 values per trainable tensor.
    sizes: Vec<usize>,
    opt_head: usize,
    opt_backbone: usize,
}

/// A fingerprint of the images, labels and split: a checkpoint only continues on the data it was made on.
pub fn fingerprint(data: &TrainData) -> u64 {
    // FNV-1a over every byte, 8 bytes at a time.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&(data.num_classes as u64).to_le_bytes());
    // By pixel key, so that images kept out of memory need not be read in.
    for (i, label) in data.labels.iter().enumerate() {
        eat(&(*label as u64).to_le_bytes());
        eat(&data.key(i).to_le_bytes());
    }
    for ids in [&data.train, &data.val] {
        eat(&(ids.len() as u64).to_le_bytes());
        ids.iter().for_each(|&i| eat(&(i as u64).to_le_bytes()));
    }
    h
}

/// Which of a module's float tensors train (in visiting order).
struct Trainable(Vec<bool>);

impl ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().is_require_grad());
    }
}

/// The tensors under `mask`, flattened, with their ids.
struct Collect<'a> {
    mask: &'a [bool],
    at: usize,
    out: Vec<(u64, Tensor<1>)>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.mask[self.at] {
            let value = param.val();
            let n = value.shape().num_elements();
            self.out.push((param.id.val(), value.reshape([n])));
        }
        self.at += 1;
    }
}

/// Puts saved values (and, with `ids`, saved ids) into the tensors under `mask`, keeping each one's device and
/// whether it trains.
struct Restore<'a> {
    mask: &'a [bool],
    at: usize,
    values: std::vec::IntoIter<(u64, Vec<f32>)>,
    keep_ids: bool,
    error: Option<String>,
}

impl ModuleMapper for Restore<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let trainable = self.mask.get(self.at).copied().unwrap_or(false);
        self.at += 1;
        if !trainable {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let Some((saved_id, values)) = self.values.next() else {
            self.error
                .get_or_insert_with(|| "fewer saved tensors than the model has".into());
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.shape();
        if values.len() != shape.num_elements() {
            self.error.get_or_insert_with(|| {
                format!(
                    "a saved tensor has {} values where {shape:?} needs {}",
                    values.len(),
                    shape.num_elements()
                )
            });
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let grad = tensor.is_require_grad();
        let restored = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device()).set_require_grad(grad);
        let id = if self.keep_ids { ParamId::from(saved_id) } else { id };
        Param::from_mapped_value(id, restored, mapper)
    }
}

fn mask<M: Module>(module: &M) -> Vec<bool> {
    let mut v = Trainable(Vec::new());
    module.visit(&mut v);
    v.0
}

fn collect<M: Module>(module: &M, mask: &[bool], out: &mut Vec<(u64, Tensor<1>)>) {
    let mut c = Collect {
        mask,
        at: 0,
        out: Vec::new(),
    };
    module.visit(&mut c);
    out.extend(c.out);
}

fn restore<M: Module>(module: M, mask: &[bool], values: Vec<(u64, Vec<f32>)>, keep_ids: bool) -> Result<M, String> {
    let mut r = Restore {
        mask,
        at: 0,
        values: values.into_iter(),
        keep_ids,
        error: None,
    };
    let module = module.map(&mut r);
    match r.error {
        Some(e) => Err(e),
        None => Ok(module),
    }
}

async fn read_all(tensors: Vec<Tensor<1>>) -> Result<Vec<Vec<f32>>, String> {
    let mut t = Transaction::default();
    for x in tensors {
        t = t.register(x);
    }
    t.execute_async()
        .await
        .map_err(|e| format!("reading the trained tensors: {e:?}"))?
        .into_iter()
        .map(|d| {
            d.convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| format!("reading the trained tensors: {e:?}"))
        })
        .collect()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the checkpoint is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl DeepTrainer {
    /// The state after the last finished epoch, as bytes for [`DeepTrainer::resume`]. Only between epochs
    /// (after a step that reported `epoch_metrics`).
    pub async fn checkpoint(&self) -> Result<Vec<u8>, String> {
        let at_boundary = match &self.state {
            State::Training { next, .. } => *next == 0,
            State::Done => true,
            _ => false,
        };
        if !at_boundary || self.log.history().is_empty() {
            return Err("a checkpoint is only taken between epochs".into());
        }
        let (tail_mask, head_mask) = (mask(&self.tail), mask(&self.classifier));
        let mut tensors = Vec::new();
        collect(&self.tail.valid(), &tail_mask, &mut tensors);
        collect(&self.classifier.valid(), &head_mask, &mut tensors);
        let ids: Vec<u64> = tensors.iter().map(|(id, _)| *id).collect();
        let n_current = tensors.len();
        if let Some(((tail, classifier), _)) = self.log.best() {
            collect(tail, &tail_mask, &mut tensors);
            collect(classifier, &head_mask, &mut tensors);
        }
        let values = read_all(tensors.into_iter().map(|(_, t)| t).collect()).await?;
        let (opt_head, opt_backbone) = (self.opt_head.to_bytes().await?, self.opt_backbone.to_bytes().await?);
        let header = Header {
            options: self.options.clone(),
            fingerprint: self.fingerprint,
            rng: self.epoch_rng.state(),
            step_count: self.step_count,
            history: self.log.history().to_vec(),
            best: self.log.best().map(|(_, m)| m.clone()),
            stop_reason: self.log.stop_reason_if_done().map(String::from),
            ids,
            sizes: values[..n_current].iter().map(Vec::len).collect(),
            opt_head: opt_head.len(),
            opt_backbone: opt_backbone.len(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| format!("writing the checkpoint: {e}"))?;
        let floats: usize = values.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(12 + json.len() + 4 * floats + opt_head.len() + opt_backbone.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for v in &values {
            out.extend(to_le_bytes(v));
        }
        out.extend_from_slice(&opt_head);
        out.extend_from_slice(&opt_backbone);
        Ok(out)
    }

    /// Continues the run saved in `bytes` (from [`DeepTrainer::checkpoint`]) on `data`, which must be what the run
    /// trained on (same images, labels and split) and with the same options: it then goes on exactly as the
    /// uninterrupted run would. `self` is a new trainer built with the same arguments, before its first step.
    pub fn resume(mut self, bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        if r.take(8)? != MAGIC {
            return Err("this is not a training checkpoint of this version".into());
        }
        let len = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes")) as usize;
        let header: Header =
            serde_json::from_slice(r.take(len)?).map_err(|e| format!("the checkpoint is damaged: {e}"))?;
        if header.fingerprint != self.fingerprint {
            return Err(
                "the images changed since this training was saved (added, removed, renamed or moved \
                        between classes): it cannot be resumed; train again"
                    .into(),
            );
        }
        if header.options != self.options {
            return Err("the training options changed since this training was saved: it cannot be resumed".into());
        }
        if header.ids.len() != header.sizes.len() {
            return Err("the checkpoint is damaged: tensor ids and sizes differ".into());
        }
        let mut take_floats = |n: usize| -> Result<Vec<f32>, String> { Ok(from_le_bytes(r.take(4 * n)?)) };
        let mut current = Vec::new();
        for (&id, &n) in header.ids.iter().zip(&header.sizes) {
            current.push((id, take_floats(n)?));
        }
        let mut best = Vec::new();
        if header.best.is_some() {
            for (&id, &n) in header.ids.iter().zip(&header.sizes) {
                best.push((id, take_floats(n)?));
            }
        }
        let opt_head = r.take(header.opt_head)?.to_vec();
        let opt_backbone = r.take(header.opt_backbone)?.to_vec();
        if !r.0.is_empty() {
            return Err("the checkpoint has trailing bytes".into());
        }

        let (tail_mask, head_mask) = (mask(&self.tail), mask(&self.classifier));
        let n_tail = tail_mask.iter().filter(|&&t| t).count();
        if n_tail > current.len() {
            return Err("the checkpoint holds fewer tensors than this model trains".into());
        }
        let head_current = current.split_off(n_tail);
        let values = |c: &[(u64, Vec<f32>)]| c.iter().map(|(_, v)| v.len()).sum::<usize>();
        let (tail_values, head_values) = (values(&current), values(&head_current));
        let tail = restore(self.tail.clone(), &tail_mask, current, true)?;
        let classifier = restore(self.classifier.clone(), &head_mask, head_current, true)?;
        let best = match header.best.clone() {
            Some(metrics) => {
                let head_best = best.split_off(n_tail);
                let best_tail = restore(tail.clone(), &tail_mask, best, false)?.valid();
                let best_head = restore(classifier.clone(), &head_mask, head_best, false)?.valid();
                Some(((best_tail, best_head), metrics))
            }
            None => None,
        };
        self.opt_head = self.opt_head.from_bytes(&opt_head, head_values, &self.device)?;
        self.opt_backbone = self.opt_backbone.from_bytes(&opt_backbone, tail_values, &self.device)?;
        self.tail = tail;
        self.classifier = classifier;
        self.step_count = header.step_count;
        self.log = EpochLog::restored(
            self.options.epochs * self.rounds,
            self.options.patience,
            header.history,
            best,
            header.stop_reason,
        )
        .counting(super::rounds::unit(self.rounds));
        self.epoch_rng = Rng::from_state(header.rng);
        self.rng = Rng::from_state(header.rng);
        // The pass under way is shuffled again from its generator.
        self.pass_order.clear();
        if self.log.is_done() {
            self.state = State::Done;
        } else if matches!(self.state, State::Training { .. }) {
            // Nothing to cache: the first epoch was already shuffled with the new generator; redo it.
            self.state = self.start_epoch();
        }
        Ok(self)
    }
}
