//! A step shared out (`finetune::shard`): the batch in contiguous parts (`DeepTrainer::with_parts`, or one per
//! thread), the parts in contiguous groups: the first computed here, one per helper; a group whose helper fails is
//! computed here too. Every part goes through `answer_with`, and the parts' results are combined in their order.

use std::ops::Range;

use burn::tensor::{Tensor, TensorData};

use super::DeepTrainer;
use crate::finetune::shard::{
    Helpers, ShardAnswer, ShardInput, ShardRequest, ShardSpec, ShardSums, ShardTask, answer_with, grads_from_flat,
    split, trainable_values,
};
use crate::finetune::step::BatchLoss;

impl DeepTrainer {
    /// The trainable values (the classifier's, then the tail's), read back.
    async fn trainable_flat(&self) -> Result<Vec<f32>, String> {
        let mut parts = trainable_values(&self.classifier);
        parts.extend(trainable_values(&self.tail));
        read(Tensor::cat(parts, 0)).await
    }

    /// The request for (image, view) pairs `views` in parts of `parts` images: their cut activations when all are
    /// cached (not for `Prefix`), else their pixels.
    fn request(&self, views: &[(usize, usize)], parts: Vec<usize>, task: ShardTask, params: &[f32]) -> ShardRequest {
        let cached: Option<Vec<&[f32]>> = match task {
            ShardTask::Prefix => None,
            _ => views.iter().map(|&(i, v)| self.cache.get(i, v)).collect(),
        };
        let input = match cached {
            Some(rows) => ShardInput::Activations(rows.concat()),
            None => ShardInput::Pixels(self.views_pixels(views).concat()),
        };
        ShardRequest {
            spec: ShardSpec {
                task,
                mode: self.mode,
                num_classes: self.data.num_classes,
                parts,
                params: params.len(),
                pixels: matches!(input, ShardInput::Pixels(_)),
            },
            params: params.to_vec(),
            labels: views.iter().map(|&(i, _)| self.data.labels[i] as u32).collect(),
            input,
        }
    }

    /// Every part's answer for `views`, in the parts' order.
    async fn shared(
        &self,
        views: &[(usize, usize)],
        task: ShardTask,
        helpers: &impl Helpers,
    ) -> Result<ShardAnswer, String> {
        let parts = split(
            views.len(),
            if self.parts > 1 {
                self.parts
            } else {
                helpers.available() + 1
            },
        );
        let groups = split(parts.len(), helpers.available() + 1);
        let params = match (groups.len(), task) {
            (1, _) | (_, ShardTask::Prefix) => Vec::new(),
            _ => self.trainable_flat().await?,
        };
        let request = |g: &Range<usize>, params: &[f32]| {
            let images = parts[g.start].start..parts[g.end - 1].end;
            let sizes = parts[g.clone()].iter().map(|r| r.len()).collect();
            self.request(&views[images], sizes, task, params)
        };
        let asked = helpers.ask(groups[1..].iter().map(|g| request(g, &params)).collect());
        let model = (task != ShardTask::Prefix).then_some((&self.classifier, &self.tail));
        let mut answer = answer_with(&self.base, model, &request(&groups[0], &[])).await?;
        for (g, reply) in groups[1..].iter().zip(asked.await) {
            let images = parts[g.start].start..parts[g.end - 1].end;
            let values = match task {
                ShardTask::Prefix => images.len() * self.cache.floats_per_image(),
                ShardTask::Gradients { .. } => g.len() * params.len(),
                ShardTask::Evaluate => 0,
            };
            // Made again only when needed: a group's pixels may be augmented views, costly to redo.
            let reply = match reply {
                Ok(a) if a.sums.len() == g.len() && a.values.len() == values => a,
                _ => answer_with(&self.base, model, &request(g, &[])).await?,
            };
            answer.sums.extend(reply.sums);
            answer.values.extend(reply.values);
        }
        Ok(answer)
    }

    /// Fills the cache with the cut activations of the (image, view) pairs `ids`, shared out.
    pub(super) async fn cache_shared(&mut self, ids: &[(usize, usize)], helpers: &impl Helpers) -> Result<(), String> {
        let answer = self.shared(ids, ShardTask::Prefix, helpers).await?;
        let per = self.cache.floats_per_image();
        for (&(i, v), chunk) in ids.iter().zip(answer.values.chunks_exact(per)) {
            self.cache.insert(i, v, chunk);
        }
        Ok(())
    }

    /// One training step on `batch` shared out: the parts' gradients summed in their order, one optimizer step.
    pub(super) async fn train_shared(
        &mut self,
        batch: &[usize],
        epoch: usize,
        helpers: &impl Helpers,
    ) -> Result<BatchLoss, String> {
        let views: Vec<(usize, usize)> = batch.iter().map(|&i| (i, self.view(i, epoch))).collect();
        let smoothing = (self.options.label_smoothing > 0.0).then_some(self.options.label_smoothing);
        let task = ShardTask::Gradients {
            batch: batch.len(),
            smoothing,
        };
        let answer = self.shared(&views, task, helpers).await?;
        let n = answer.values.len() / answer.sums.len().max(1);
        let mut flat: Option<Tensor<1>> = None;
        for part in answer.values.chunks_exact(n.max(1)) {
            let grads = Tensor::from_data(TensorData::new(part.to_vec(), [n]), &self.device);
            flat = Some(match flat {
                Some(sum) => sum + grads,
                None => grads,
            });
        }
        let flat = flat.ok_or("a training step without gradients")?;
        let (g_head, g_backbone) = grads_from_flat(&self.classifier, &self.tail, &flat);
        self.optimizer_step(g_head, g_backbone);
        Ok(mean(&answer.sums))
    }

    /// The validation loss of `batch` on the epoch's model (this trainer's values), shared out.
    pub(super) async fn validate_shared(&self, batch: &[usize], helpers: &impl Helpers) -> Result<BatchLoss, String> {
        let views: Vec<(usize, usize)> = batch.iter().map(|&i| (i, 0)).collect();
        Ok(mean(&self.shared(&views, ShardTask::Evaluate, helpers).await?.sums))
    }
}

/// The batch's mean loss and its correct predictions from its parts' sums, added in the parts' order.
fn mean(parts: &[ShardSums]) -> BatchLoss {
    let (loss, correct, images) = parts
        .iter()
        .fold((0.0, 0, 0), |(l, c, n), s| (l + s.loss, c + s.correct, n + s.images));
    BatchLoss {
        loss: (loss / images.max(1) as f64) as f32,
        correct,
        images,
    }
}

async fn read(t: Tensor<1>) -> Result<Vec<f32>, String> {
    t.into_data_async()
        .await
        .map_err(|e| format!("reading values: {e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading values: {e:?}"))
}
