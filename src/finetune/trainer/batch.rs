//! What one batch goes through: its activations at the cut (cached, or through the frozen prefix), its labels,
//! and a training step on it.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::DeepTrainer;
use crate::finetune::step::PendingLoss;
use crate::model::embed::input_tensor;

impl DeepTrainer {
    /// Activations at the cut for `ids` (on the plain device), in the order of the returned ids: cached ones
    /// first, then the rest through the frozen prefix. `epoch`: the training epoch (its views), `None` for
    /// validation (the images themselves).
    pub(super) fn cut_input(&self, ids: &[usize], epoch: Option<usize>) -> (Tensor<4>, Vec<usize>) {
        let [c, h, w] = self.cache.shape();
        let (mut cached, mut cached_ids, mut fresh_views, mut fresh_ids) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &i in ids {
            let view = epoch.map_or(0, |e| self.view(i, e));
            match self.cache.get(i, view) {
                Some(a) => {
                    cached.extend_from_slice(a);
                    cached_ids.push(i);
                }
                None => {
                    fresh_views.push((i, view));
                    fresh_ids.push(i);
                }
            }
        }
        let fresh = self.views_pixels(&fresh_views);
        let mut parts = Vec::new();
        if !cached_ids.is_empty() {
            let data = TensorData::new(cached, [cached_ids.len(), c, h, w]);
            parts.push(Tensor::from_data(data, &self.device));
        }
        if !fresh.is_empty() {
            let refs: Vec<&[u8]> = fresh.iter().map(|p| p.as_ref()).collect();
            parts.push(self.prefix(input_tensor(&refs, &self.device)));
        }
        cached_ids.extend(fresh_ids);
        let x = match parts.len() {
            1 => parts.pop().unwrap(),
            _ => Tensor::cat(parts, 0),
        };
        (x, cached_ids)
    }

    pub(super) fn prefix(&self, input: Tensor<4>) -> Tensor<4> {
        self.base.blocks(self.base.stem(input), 0, self.mode.cut())
    }

    pub(super) fn labels(&self, ids: &[usize], device: &Device) -> Tensor<1, Int> {
        let y: Vec<i64> = ids.iter().map(|&i| self.data.labels[i] as i64).collect();
        Tensor::from_data(TensorData::new(y, [ids.len()]), device)
    }

    /// One AdamW step per parameter group, at the schedule's learning rates.
    pub(super) fn optimizer_step(&mut self, g_head: GradientsParams, g_backbone: GradientsParams) {
        let factor = self.options.deep.lr_factor(self.step_count, self.total_steps) as f64;
        self.step_count += 1;
        let head_lr = self.options.learning_rate as f64 * factor;
        let backbone_lr = self.options.backbone_lr(self.mode) as f64 * factor;
        self.classifier = self.opt_head.step(head_lr, self.classifier.clone(), g_head);
        self.tail = self.opt_backbone.step(backbone_lr, self.tail.clone(), g_backbone);
    }

    /// Forward, backward and one AdamW step per parameter group; the batch's plain cross-entropy and correct
    /// predictions are left on the device.
    pub(super) fn train_batch(&mut self, x: Tensor<4>, ids: &[usize]) -> PendingLoss {
        let y = self.labels(ids, &self.autodiff);
        let logits = self.classifier.forward(self.tail.forward(x.autodiff()));
        let smoothing = (self.options.label_smoothing > 0.0).then_some(self.options.label_smoothing);
        let loss = CrossEntropyLossConfig::new()
            .with_smoothing(smoothing)
            .init(&self.autodiff)
            .forward(logits.clone(), y.clone());
        let mut grads = loss.backward();
        let g_head = GradientsParams::from_module(&mut grads, &self.classifier);
        let g_backbone = GradientsParams::from_module(&mut grads, &self.tail);
        self.optimizer_step(g_head, g_backbone);
        PendingLoss::new(logits.inner(), y.inner(), &self.device)
    }
}
