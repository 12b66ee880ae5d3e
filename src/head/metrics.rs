//! Loss, accuracy and the confusion matrix, computed the same way for training and validation.

use serde::{Deserialize, Serialize};

use super::layers::{Head, argmax};

/// One row of the training history (what the charts draw). Loss is plain cross-entropy (no label smoothing),
/// measured with the head in inference mode after the epoch, for training and validation alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 0-based.
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: f32,
    pub val_accuracy: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub k: usize,
    /// Row-major `[true class, predicted class]`.
    pub counts: Vec<usize>,
}

impl ConfusionMatrix {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            counts: vec![0; k * k],
        }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth * self.k + predicted] += 1;
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn accuracy(&self) -> f32 {
        let hits: usize = (0..self.k).map(|i| self.counts[i * self.k + i]).sum();
        hits as f32 / self.total().max(1) as f32
    }

    /// Recall per class (0 for a class with no examples).
    pub fn per_class_accuracy(&self) -> Vec<f32> {
        (0..self.k)
            .map(|i| {
                let row = &self.counts[i * self.k..(i + 1) * self.k];
                row[i] as f32 / row.iter().sum::<usize>().max(1) as f32
            })
            .collect()
    }
}

/// One held-out image as the kept model sees it: what the mistakes gallery shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePrediction {
    /// The image's pixel key (`data::Sample::key`): finds it in the dataset through renames and moves.
    pub key: u64,
    /// Class indices into the report's labels.
    pub truth: usize,
    pub predicted: usize,
    /// Softmax probability of the predicted class.
    pub confidence: f32,
}

/// Softmax of one row of logits (max-subtracted).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The prediction of each row of `logits` [n, K], with the true class and pixel key of that row.
pub fn image_predictions(logits: &[f32], k: usize, truth: &[usize], keys: &[u64]) -> Vec<ImagePrediction> {
    logits
        .chunks_exact(k)
        .zip(truth.iter().zip(keys))
        .map(|(row, (&truth, &key))| {
            let predicted = argmax(row);
            ImagePrediction {
                key,
                truth,
                predicted,
                confidence: softmax(row)[predicted],
            }
        })
        .collect()
}

/// Mean softmax cross-entropy of logits rows against (optionally smoothed) targets; max-subtracted so large
/// logits cannot overflow. Also returns the gradient w.r.t. the logits when `grad` is given.
pub fn cross_entropy(logits: &[f32], labels: &[usize], k: usize, smoothing: f32, mut grad: Option<&mut [f32]>) -> f32 {
    let n = labels.len();
    let mut total = 0.0f64;
    for (row_i, (row, &label)) in logits.chunks_exact(k).zip(labels).enumerate() {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&z| (z - max).exp()).sum();
        let log_sum = sum.ln() + max;
        let mut loss = 0.0f32;
        for (j, &z) in row.iter().enumerate() {
            let target = smoothing / k as f32 + if j == label { 1.0 - smoothing } else { 0.0 };
            loss -= target * (z - log_sum);
            if let Some(g) = grad.as_deref_mut() {
                g[row_i * k + j] = ((z - log_sum).exp() - target) / n as f32;
            }
        }
        total += loss as f64;
    }
    (total / n.max(1) as f64) as f32
}

/// Loss (plain cross-entropy), accuracy and confusion matrix of `head` on the rows `idx` of `features`.
pub fn evaluate(head: &Head, features: &[f32], labels: &[usize], idx: &[usize]) -> (f32, f32, ConfusionMatrix) {
    let d = head.d_in();
    let k = head.num_classes();
    let mut matrix = ConfusionMatrix::new(k);
    if idx.is_empty() {
        return (f32::NAN, f32::NAN, matrix);
    }
    let x: Vec<f32> = idx
        .iter()
        .flat_map(|&i| features[i * d..(i + 1) * d].iter().copied())
        .collect();
    let y: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
    let logits = head.forward(&x, idx.len());
    let loss = cross_entropy(&logits, &y, k, 0.0, None);
    for (row, &truth) in logits.chunks_exact(k).zip(&y) {
        matrix.add(truth, argmax(row));
    }
    (loss, matrix.accuracy(), matrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_k() {
        let loss = cross_entropy(&[0.0; 6], &[0, 2], 3, 0.0, None);
        assert!((loss - 3f32.ln()).abs() < 1e-6);
        // Smoothing does not change the loss of uniform predictions.
        assert!((cross_entropy(&[0.0; 6], &[0, 2], 3, 0.1, None) - 3f32.ln()).abs() < 1e-6);
        // Huge logits stay finite.
        assert!(cross_entropy(&[1e30, 0.0], &[1], 2, 0.0, None).is_finite());
    }

    #[test]
    fn image_predictions_pick_the_largest_logit() {
        let p = image_predictions(&[0.0, 2.0, 1.0, -1.0], 2, &[0, 0], &[7, 9]);
        assert_eq!((p[0].key, p[0].truth, p[0].predicted), (7, 0, 1));
        assert!((p[0].confidence - 1.0 / (1.0 + (-2f32).exp())).abs() < 1e-6);
        assert_eq!((p[1].key, p[1].predicted), (9, 0));
        assert!(p[1].confidence > 0.5);
    }

    #[test]
    fn confusion_matrix_counts() {
        let mut m = ConfusionMatrix::new(2);
        m.add(0, 0);
        m.add(0, 1);
        m.add(1, 1);
        assert_eq!(m.counts, vec![1, 1, 0, 1]);
        assert!((m.accuracy() - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(m.per_class_accuracy(), vec![0.5, 1.0]);
    }
}
