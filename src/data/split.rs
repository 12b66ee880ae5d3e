//! Stratified, seeded train/validation split: every class keeps the same share in both parts.

use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

/// Per class, shuffle (seeded) and hold out `round(n × fraction)` images for validation: at least one when
/// the class has two or more images and the fraction is above 0, and never the last training image.
pub fn stratified_split(labels: &[usize], val_fraction: f32, seed: u64) -> Split {
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut rng = Rng::new(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        let n = members.len();
        let mut n_val = (n as f32 * val_fraction.clamp(0.0, 1.0)).round() as usize;
        if val_fraction > 0.0 && n >= 2 {
            n_val = n_val.clamp(1, n - 1);
        } else if n < 2 {
            n_val = 0;
        }
        val.extend_from_slice(&members[..n_val]);
        train.extend_from_slice(&members[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Split { train, val }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_disjoint_covering_and_seeded() {
        let labels: Vec<usize> = (0..100)
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 90 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let s = stratified_split(&labels, 0.2, 7);
        let count = |idx: &[usize], c| idx.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!((count(&s.val, 0), count(&s.val, 1), count(&s.val, 2)), (12, 6, 2));
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(s, stratified_split(&labels, 0.2, 7));
        assert_ne!(s, stratified_split(&labels, 0.2, 8));
        // Two images: one each way. One image: training only. Fraction 0: no validation.
        let tiny = stratified_split(&[0, 0, 1], 0.2, 0);
        assert_eq!((tiny.train.len(), tiny.val.len()), (2, 1));
        assert!(stratified_split(&labels, 0.0, 0).val.is_empty());
    }

    #[test]
    fn extreme_fractions_keep_a_training_image_per_class() {
        let labels = [0, 0, 0, 1, 1];
        let all = stratified_split(&labels, 1.0, 3);
        assert_eq!(
            (all.train.len(), all.val.len()),
            (2, 3),
            "one training image per class stays"
        );
        let tiny = stratified_split(&labels, 0.01, 3);
        assert_eq!(
            tiny.val.len(),
            2,
            "at least one validation image per class of two or more"
        );
        assert!(stratified_split(&labels, f32::NAN, 3).val.is_empty());
        assert!(stratified_split(&[], 0.2, 3).train.is_empty());
    }
}
