//! "What the pretrained model sees": ImageNet top-k from read-back logits, computed on the CPU
//! (WebGPU has no sort/top-k kernel).

const CLASSES: &str = include_str!("../../public/models/imagenet_classes.txt");

/// Name of ImageNet class `index` (0-based), if it exists.
pub fn class_name(index: usize) -> Option<&'static str> {
    CLASSES.lines().nth(index)
}

/// Softmax over one row of logits (max-subtracted, so large logits do not overflow).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `k` most probable classes of one row of logits: (index, probability), best first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    order.into_iter().take(k).map(|i| (i, probs[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_top_k() {
        assert_eq!(CLASSES.lines().count(), 1000);
        assert!(class_name(285).unwrap().contains("Egyptian"));
        assert_eq!(class_name(1000), None);
        let top = top_k(&[0.0, 3.0, 1.0, 2.0], 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!((softmax(&[1.0, 1.0]).iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
