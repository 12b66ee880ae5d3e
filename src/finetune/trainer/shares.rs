//! A step shared out between the trainer and its helpers (`finetune::shard`): the batch in contiguous shares,
//! the trainer's own first; a share whose helper fails is computed here.

use burn::tensor::{Tensor, TensorData};

use super::DeepTrainer;
use crate::finetune::Tail;
use crate::finetune::shard::{
    Helpers, ShardAnswer, ShardInput, ShardRequest, ShardSpec, ShardSums, ShardTask, grads_from_flat, share_gradients,
    split, trainable_values,
};
use crate::finetune::step::{BatchLoss, PendingLoss};
use crate::model::Classifier;
use crate::model::embed::input_tensor;

impl DeepTrainer {
    fn spec(&self, task: ShardTask, images: usize, params: usize, pixels: bool) -> ShardSpec {
        ShardSpec {
            task,
            mode: self.mode,
            num_classes: self.data.num_classes,
            images,
            params,
            pixels,
        }
    }

    /// The trainable values (the classifier's, then the tail's), read back.
    async fn trainable_flat(&self) -> Result<Vec<f32>, String> {
        let mut parts = trainable_values(&self.classifier);
        parts.extend(trainable_values(&self.tail));
        read(Tensor::cat(parts, 0)).await
    }

    /// A helper's share `ids` of a training (`epoch`) or validation (`None`) batch: their cut activations when
    /// all are cached, else their pixels (the helper runs the frozen prefix).
    fn request(&self, ids: &[usize], epoch: Option<usize>, task: ShardTask, params: &[f32]) -> ShardRequest {
        let views: Vec<(usize, usize)> = ids.iter().map(|&i| (i, epoch.map_or(0, |e| self.view(i, e)))).collect();
        let cached: Option<Vec<&[f32]>> = views.iter().map(|&(i, v)| self.cache.get(i, v)).collect();
        let input = match cached {
            Some(rows) => ShardInput::Activations(rows.concat()),
            None => ShardInput::Pixels(
                views
                    .iter()
                    .flat_map(|&(i, v)| self.view_pixels(i, v).into_owned())
                    .collect(),
            ),
        };
        let pixels = matches!(input, ShardInput::Pixels(_));
        ShardRequest {
            spec: self.spec(task, ids.len(), params.len(), pixels),
            params: params.to_vec(),
            labels: ids.iter().map(|&i| self.data.labels[i] as u32).collect(),
            input,
        }
    }

    async fn prefix_values(&self, pixels: &[Vec<u8>]) -> Result<Vec<f32>, String> {
        let refs: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
        read(self.prefix(input_tensor(&refs, &self.device)).flatten(0, 3)).await
    }

    fn label_values(&self, ids: &[usize]) -> Vec<i64> {
        ids.iter().map(|&i| self.data.labels[i] as i64).collect()
    }

    /// Fills the cache with the cut activations of the (image, view) pairs `ids`, shared out.
    pub(super) async fn cache_shared(&mut self, ids: &[(usize, usize)], helpers: &impl Helpers) -> Result<(), String> {
        let parts = split(ids.len(), helpers.available() + 1);
        let pixels: Vec<Vec<u8>> = ids.iter().map(|&(i, v)| self.view_pixels(i, v).into_owned()).collect();
        let requests = parts[1..]
            .iter()
            .map(|r| ShardRequest {
                spec: self.spec(ShardTask::Prefix, r.len(), 0, true),
                params: Vec::new(),
                labels: ids[r.clone()]
                    .iter()
                    .map(|&(i, _)| self.data.labels[i] as u32)
                    .collect(),
                input: ShardInput::Pixels(pixels[r.clone()].concat()),
            })
            .collect();
        let asked = helpers.ask(requests);
        let per = self.cache.floats_per_image();
        let own = self.prefix_values(&pixels[parts[0].clone()]).await?;
        let mut shares = vec![(parts[0].clone(), own)];
        for (r, answer) in parts[1..].iter().zip(asked.await) {
            let values = match answer {
                Ok(a) if a.values.len() == r.len() * per => a.values,
                _ => self.prefix_values(&pixels[r.clone()]).await?,
            };
            shares.push((r.clone(), values));
        }
        for (r, values) in shares {
            for (&(i, v), chunk) in ids[r].iter().zip(values.chunks_exact(per)) {
                self.cache.insert(i, v, chunk.to_vec());
            }
        }
        Ok(())
    }

    /// One training step on `batch` shared out: the gradients summed in the shares' order, one optimizer step.
    pub(super) async fn train_shared(
        &mut self,
        batch: &[usize],
        epoch: usize,
        helpers: &impl Helpers,
    ) -> Result<BatchLoss, String> {
        let parts = split(batch.len(), helpers.available() + 1);
        let params = self.trainable_flat().await?;
        let smoothing = (self.options.label_smoothing > 0.0).then_some(self.options.label_smoothing);
        let weight = |r: &std::ops::Range<usize>| r.len() as f32 / batch.len() as f32;
        let requests = parts[1..]
            .iter()
            .map(|r| {
                let task = ShardTask::Gradients {
                    weight: weight(r),
                    smoothing,
                };
                self.request(&batch[r.clone()], Some(epoch), task, &params)
            })
            .collect();
        let asked = helpers.ask(requests);
        let mut sums = ShardSums::default();
        let mut flat = self
            .local_gradients(&batch[parts[0].clone()], epoch, weight(&parts[0]), smoothing, &mut sums)
            .await?;
        for (r, answer) in parts[1..].iter().zip(asked.await) {
            flat = flat
                + match answer {
                    Ok(ShardAnswer { sums: s, values }) if values.len() == params.len() => {
                        add(&mut sums, s);
                        Tensor::from_data(TensorData::new(values, [params.len()]), &self.device)
                    }
                    _ => {
                        self.local_gradients(&batch[r.clone()], epoch, weight(r), smoothing, &mut sums)
                            .await?
                    }
                };
        }
        let (g_head, g_backbone) = grads_from_flat(&self.classifier, &self.tail, &flat);
        self.optimizer_step(g_head, g_backbone);
        Ok(mean(sums))
    }

    /// This trainer's gradients for a share of a training batch, its sums added to `sums`.
    async fn local_gradients(
        &self,
        share: &[usize],
        epoch: usize,
        weight: f32,
        smoothing: Option<f32>,
        sums: &mut ShardSums,
    ) -> Result<Tensor<1>, String> {
        let (x, ids) = self.cut_input(share, Some(epoch));
        let labels = self.label_values(&ids);
        let (grads, pending) = share_gradients(&self.classifier, &self.tail, x, &labels, weight, smoothing);
        add(sums, read_sums(pending).await?);
        Ok(grads)
    }

    /// The validation loss of `batch` on the epoch's model, shared out.
    pub(super) async fn validate_shared(
        &self,
        batch: &[usize],
        model: &(Tail, Classifier),
        helpers: &impl Helpers,
    ) -> Result<BatchLoss, String> {
        let parts = split(batch.len(), helpers.available() + 1);
        let params = self.trainable_flat().await?;
        let requests = parts[1..]
            .iter()
            .map(|r| self.request(&batch[r.clone()], None, ShardTask::Evaluate, &params))
            .collect();
        let asked = helpers.ask(requests);
        let mut sums = ShardSums::default();
        add(&mut sums, self.local_loss(&batch[parts[0].clone()], model).await?);
        for (r, answer) in parts[1..].iter().zip(asked.await) {
            match answer {
                Ok(a) if a.sums.images == r.len() => add(&mut sums, a.sums),
                _ => add(&mut sums, self.local_loss(&batch[r.clone()], model).await?),
            }
        }
        Ok(mean(sums))
    }
}

impl DeepTrainer {
    async fn local_loss(&self, share: &[usize], model: &(Tail, Classifier)) -> Result<ShardSums, String> {
        let (x, ids) = self.cut_input(share, None);
        let logits = model.1.forward(model.0.forward(x));
        read_sums(PendingLoss::new(logits, self.labels(&ids, &self.device), &self.device)).await
    }
}

fn add(sums: &mut ShardSums, more: ShardSums) {
    sums.loss += more.loss;
    sums.correct += more.correct;
    sums.images += more.images;
}

async fn read_sums(pending: PendingLoss) -> Result<ShardSums, String> {
    let loss = pending.read().await?;
    Ok(ShardSums {
        loss: loss.loss as f64 * loss.images as f64,
        correct: loss.correct,
        images: loss.images,
    })
}

fn mean(sums: ShardSums) -> BatchLoss {
    BatchLoss {
        loss: (sums.loss / sums.images.max(1) as f64) as f32,
        correct: sums.correct,
        images: sums.images,
    }
}

async fn read(t: Tensor<1>) -> Result<Vec<f32>, String> {
    t.into_data_async()
        .await
        .map_err(|e| format!("reading values: {e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading values: {e:?}"))
}
