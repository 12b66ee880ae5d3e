//! The training loop, one epoch per call: shuffled mini-batches, hand-written backward pass, Adam, metrics
//! after each epoch, early stopping on validation loss, and the best epoch's head kept.

use super::epoch_log::EpochLog;
use super::layers::{Dense, Head, axpy};
use super::metrics::{ConfusionMatrix, EpochMetrics, ImagePrediction, cross_entropy, evaluate, image_predictions};
use super::optimizer::Adam;
use crate::options::TrainOptions;
use crate::rng::Rng;

pub struct Trainer {
    features: Vec<f32>,
    dim: usize,
    labels: Vec<usize>,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    options: TrainOptions,
    head: Head,
    adam: Adam,
    rng: Rng,
    log: EpochLog<Head>,
}

/// Gradients of one layer.
struct DenseGrad {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl DenseGrad {
    fn zeros(d: &Dense) -> Self {
        Self {
            weight: vec![0.0; d.weight.len()],
            bias: vec![0.0; d.bias.len()],
        }
    }

    /// dW += dyᵀ x, db += Σ dy; returns dx = dy W when asked.
    fn accumulate(&mut self, layer: &Dense, x: &[f32], dy: &[f32], n: usize, want_dx: bool) -> Vec<f32> {
        let mut dx = if want_dx { vec![0.0; n * layer.d_in] } else { Vec::new() };
        for b in 0..n {
            let xr = &x[b * layer.d_in..(b + 1) * layer.d_in];
            for o in 0..layer.d_out {
                let g = dy[b * layer.d_out + o];
                if g == 0.0 {
                    continue;
                }
                self.bias[o] += g;
                axpy(g, xr, &mut self.weight[o * layer.d_in..(o + 1) * layer.d_in]);
                if want_dx {
                    axpy(
                        g,
                        &layer.weight[o * layer.d_in..(o + 1) * layer.d_in],
                        &mut dx[b * layer.d_in..(b + 1) * layer.d_in],
                    );
                }
            }
        }
        dx
    }
}

impl Trainer {
    pub fn new(
        features: Vec<f32>,
        dim: usize,
        labels: Vec<usize>,
        train_idx: Vec<usize>,
        val_idx: Vec<usize>,
        num_classes: usize,
        options: TrainOptions,
    ) -> Result<Self, String> {
        options.validate()?;
        let n = labels.len();
        if dim == 0 || features.len() != n * dim {
            return Err(format!(
                "{} feature values do not make {n} rows of {dim}",
                features.len()
            ));
        }
        if num_classes < 2 {
            return Err(format!("training needs at least 2 classes (got {num_classes})"));
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= num_classes) {
            return Err(format!("label {bad} is out of range for {num_classes} classes"));
        }
        if train_idx.is_empty() {
            return Err("there are no training images".into());
        }
        if let Some(bad) = train_idx.iter().chain(&val_idx).find(|&&i| i >= n) {
            return Err(format!("sample index {bad} is out of range ({n} samples)"));
        }
        let mut rng = Rng::new(options.seed);
        let head = Head::new(
            dim,
            num_classes,
            options.head.hidden_units,
            options.head.dropout,
            &mut rng,
        );
        let sizes: Vec<usize> = layers(&head)
            .iter()
            .flat_map(|d| [d.weight.len(), d.bias.len()])
            .collect();
        let adam = Adam::new(
            &sizes,
            options.learning_rate,
            options.head.weight_decay,
            options.head.decoupled_weight_decay,
        );
        let log = EpochLog::new(options.epochs, options.patience);
        Ok(Self {
            features,
            dim,
            labels,
            train_idx,
            val_idx,
            options,
            head,
            adam,
            rng,
            log,
        })
    }

    /// Starts from `head` instead of a fresh one (continuing an earlier model): same input size and classes;
    /// its hidden layer and dropout replace the options'.
    pub fn start_from(&mut self, head: Head) -> Result<(), String> {
        let d_in = head.hidden.as_ref().unwrap_or(&head.out).d_in;
        if d_in != self.dim || head.num_classes() != self.head.num_classes() {
            return Err(format!(
                "the model's head takes {d_in} features to {} classes, not {} to {}",
                head.num_classes(),
                self.dim,
                self.head.num_classes()
            ));
        }
        if !self.log.history().is_empty() {
            return Err("training has already started".into());
        }
        self.options.head.hidden_units = head.hidden.as_ref().map_or(0, |h| h.d_out);
        self.options.head.dropout = head.dropout;
        let sizes: Vec<usize> = layers(&head)
            .iter()
            .flat_map(|d| [d.weight.len(), d.bias.len()])
            .collect();
        self.adam = Adam::new(
            &sizes,
            self.options.learning_rate,
            self.options.head.weight_decay,
            self.options.head.decoupled_weight_decay,
        );
        self.head = head;
        Ok(())
    }

    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    pub fn history(&self) -> &[EpochMetrics] {
        self.log.history()
    }

    pub fn is_done(&self) -> bool {
        self.log.is_done()
    }

    /// Why training ended ("" while it runs).
    pub fn stop_reason(&self) -> &str {
        self.log.stop_reason()
    }

    /// The user pressed Stop: the best head so far is kept.
    pub fn request_stop(&mut self) {
        self.log.request_stop();
    }

    /// The head of the epoch with the lowest validation loss (training loss without a validation split),
    /// and that epoch's metrics. Before any epoch: the initial head.
    pub fn best(&self) -> (&Head, &EpochMetrics) {
        static NONE: EpochMetrics = EpochMetrics {
            epoch: 0,
            train_loss: f32::NAN,
            train_accuracy: 0.0,
            val_loss: f32::NAN,
            val_accuracy: 0.0,
        };
        match self.log.best() {
            Some((head, metrics)) => (head, metrics),
            None => (&self.head, &NONE),
        }
    }

    /// The best head on the validation images (on the training images when there is no validation split):
    /// loss, accuracy and confusion matrix.
    pub fn evaluate_best(&self) -> (f32, f32, ConfusionMatrix) {
        evaluate(self.best().0, &self.features, &self.labels, self.eval_idx())
    }

    /// The best head's prediction for each image `evaluate_best` counts, in that order; `keys` holds one pixel
    /// key per sample.
    pub fn best_predictions(&self, keys: &[u64]) -> Vec<ImagePrediction> {
        let idx = self.eval_idx();
        let head = self.best().0;
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| &self.features[i * self.dim..(i + 1) * self.dim])
            .copied()
            .collect();
        let truth: Vec<usize> = idx.iter().map(|&i| self.labels[i]).collect();
        let keys: Vec<u64> = idx.iter().map(|&i| keys[i]).collect();
        image_predictions(&head.forward(&x, idx.len()), head.num_classes(), &truth, &keys)
    }

    fn eval_idx(&self) -> &[usize] {
        if self.val_idx.is_empty() {
            &self.train_idx
        } else {
            &self.val_idx
        }
    }

    /// Trains one epoch and returns its metrics.
    pub fn step_epoch(&mut self) -> EpochMetrics {
        let mut order = self.train_idx.clone();
        self.rng.shuffle(&mut order);
        for batch in order.chunks(self.options.batch_size) {
            self.train_batch(batch);
        }
        let epoch = self.log.next_epoch();
        let (train_loss, train_accuracy, _) = evaluate(&self.head, &self.features, &self.labels, &self.train_idx);
        let (val_loss, val_accuracy, _) = if self.val_idx.is_empty() {
            (train_loss, train_accuracy, None::<()>)
        } else {
            let (l, a, _) = evaluate(&self.head, &self.features, &self.labels, &self.val_idx);
            (l, a, None)
        };
        let metrics = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
        };
        let head = &self.head;
        self.log.record(metrics.clone(), || head.clone());
        metrics
    }

    fn train_batch(&mut self, batch: &[usize]) {
        let n = batch.len();
        let d = self.dim;
        let k = self.head.num_classes();
        let x: Vec<f32> = batch
            .iter()
            .flat_map(|&i| self.features[i * d..(i + 1) * d].iter().copied())
            .collect();
        let y: Vec<usize> = batch.iter().map(|&i| self.labels[i]).collect();

        // Forward, keeping what backward needs.
        let (h, mask) = match &self.head.hidden {
            Some(hidden) => {
                let mut h = hidden.forward(&x, n);
                let keep = 1.0 - self.head.dropout;
                // Inverted dropout: scale kept units by 1/keep so inference needs no rescaling.
                let mask: Vec<f32> = (0..h.len())
                    .map(|_| {
                        if self.rng.next_f32() < self.head.dropout {
                            0.0
                        } else {
                            1.0 / keep
                        }
                    })
                    .collect();
                for (v, m) in h.iter_mut().zip(&mask) {
                    *v = v.max(0.0) * m;
                }
                (Some(h), mask)
            }
            None => (None, Vec::new()),
        };
        let out_in = h.as_deref().unwrap_or(&x);
        let logits = self.head.out.forward(out_in, n);
        let mut dlogits = vec![0.0; n * k];
        cross_entropy(&logits, &y, k, self.options.label_smoothing, Some(&mut dlogits));

        // Backward.
        let mut g_out = DenseGrad::zeros(&self.head.out);
        let dh = g_out.accumulate(&self.head.out, out_in, &dlogits, n, h.is_some());
        let g_hidden = match (&self.head.hidden, &h) {
            (Some(hidden), Some(h)) => {
                // Through ReLU and dropout: zero where the unit was off or dropped.
                let dh: Vec<f32> = dh
                    .iter()
                    .zip(h)
                    .zip(&mask)
                    .map(|((g, hv), m)| if *hv > 0.0 { g * m } else { 0.0 })
                    .collect();
                let mut g = DenseGrad::zeros(hidden);
                g.accumulate(hidden, &x, &dh, n, false);
                Some(g)
            }
            _ => None,
        };

        // Update, in the order the optimizer's state was created (hidden first, then out).
        let mut grads: Vec<&[f32]> = Vec::new();
        if let Some(g) = &g_hidden {
            grads.extend([g.weight.as_slice(), g.bias.as_slice()]);
        }
        grads.extend([g_out.weight.as_slice(), g_out.bias.as_slice()]);
        let Head { hidden, out, .. } = &mut self.head;
        let mut params: Vec<&mut [f32]> = Vec::new();
        if let Some(hd) = hidden {
            params.extend([hd.weight.as_mut_slice(), hd.bias.as_mut_slice()]);
        }
        params.extend([out.weight.as_mut_slice(), out.bias.as_mut_slice()]);
        self.adam.step(&mut params, &grads);
    }
}

fn layers(head: &Head) -> Vec<&Dense> {
    head.hidden.iter().chain(std::iter::once(&head.out)).collect()
}

/// Analytic gradient of the mean loss w.r.t. every weight of a linear head (for the gradient check test).
#[cfg(test)]
pub(crate) fn linear_head_gradient(head: &Head, x: &[f32], y: &[usize], smoothing: f32) -> Vec<f32> {
    let n = y.len();
    let k = head.num_classes();
    let logits = head.out.forward(x, n);
    let mut dl = vec![0.0; n * k];
    cross_entropy(&logits, y, k, smoothing, Some(&mut dl));
    let mut g = DenseGrad::zeros(&head.out);
    g.accumulate(&head.out, x, &dl, n, false);
    g.weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(3);
        let head = Head::new(4, 3, 0, 0.0, &mut rng);
        let x: Vec<f32> = (0..8).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let y = vec![2, 0];
        let analytic = linear_head_gradient(&head, &x, &y, 0.1);
        let loss = |h: &Head| cross_entropy(&h.out.forward(&x, 2), &y, 3, 0.1, None) as f64;
        for (i, &grad) in analytic.iter().enumerate() {
            let eps = 1e-2f32;
            let (mut plus, mut minus) = (head.clone(), head.clone());
            plus.out.weight[i] += eps;
            minus.out.weight[i] -= eps;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps as f64);
            assert!(
                (numeric - grad as f64).abs() < 2e-3,
                "weight {i}: numeric {numeric} analytic {grad}"
            );
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        let opts = TrainOptions::default();
        assert!(Trainer::new(vec![0.0; 4], 2, vec![0, 1], vec![0], vec![1], 1, opts.clone()).is_err());
        assert!(Trainer::new(vec![0.0; 3], 2, vec![0, 1], vec![0], vec![1], 2, opts.clone()).is_err());
        assert!(Trainer::new(vec![0.0; 4], 2, vec![0, 5], vec![0], vec![1], 2, opts.clone()).is_err());
        assert!(Trainer::new(vec![0.0; 4], 2, vec![0, 1], vec![], vec![1], 2, opts.clone()).is_err());
        let bad = TrainOptions {
            learning_rate: -1.0,
            ..opts
        };
        assert!(Trainer::new(vec![0.0; 4], 2, vec![0, 1], vec![0], vec![1], 2, bad).is_err());
    }
}
