//! "None of these": below a confidence threshold the answer is no class at all, for an image unlike any the model
//! was trained on. Nothing in training shows such images, so the threshold comes from the images the model does
//! know: the validation images it answers rightly. The suggestion keeps [`KEEP`] of those right answers (its top
//! probability is the 5th percentile of theirs); every answer below it, right or wrong, becomes "none of these".
//! The person can move it: higher catches more strangers and more of the model's own mistakes, and refuses more
//! right answers. What a threshold does on the validation images is said beside it ([`Effect`]).

use serde::{Deserialize, Serialize};

use crate::head::metrics::ImagePrediction;

/// The share of right validation answers the suggested threshold keeps.
pub const KEEP: f32 = 0.95;

/// What a threshold does on the validation images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// Right answers kept (at or above the threshold), of all right answers.
    pub right_kept: usize,
    pub right: usize,
    /// Wrong answers turned into "none of these", of all wrong answers.
    pub wrong_caught: usize,
    pub wrong: usize,
}

/// The threshold keeping [`KEEP`] of the right answers among `predictions` (the lowest confidence among the
/// highest 95 %), rounded down to a whole percent; 0 (never "none of these") when none is right.
pub fn suggest(predictions: &[ImagePrediction]) -> f32 {
    let mut right: Vec<f32> = predictions
        .iter()
        .filter(|p| p.truth == p.predicted)
        .map(|p| p.confidence)
        .collect();
    if right.is_empty() {
        return 0.0;
    }
    right.sort_by(|a, b| b.total_cmp(a));
    let kept = ((right.len() as f32 * KEEP).ceil() as usize).clamp(1, right.len());
    // A whole percent, as the page shows it (the small margin keeps 0.52 from reading as 0.51999).
    (right[kept - 1] * 100.0 + 1e-3).floor() / 100.0
}

/// What `threshold` does on `predictions`.
pub fn effect(predictions: &[ImagePrediction], threshold: f32) -> Effect {
    let mut effect = Effect {
        right_kept: 0,
        right: 0,
        wrong_caught: 0,
        wrong: 0,
    };
    for p in predictions {
        let kept = p.confidence >= threshold;
        if p.truth == p.predicted {
            effect.right += 1;
            effect.right_kept += usize::from(kept);
        } else {
            effect.wrong += 1;
            effect.wrong_caught += usize::from(!kept);
        }
    }
    effect
}

impl Effect {
    /// In words, for the page and the model card.
    pub fn describe(&self) -> String {
        format!(
            "on the validation images it keeps {} of {} right answers and turns {} of {} wrong ones into \"none of \
             these\"",
            self.right_kept, self.right, self.wrong_caught, self.wrong
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(truth: usize, predicted: usize, confidence: f32) -> ImagePrediction {
        ImagePrediction {
            key: 0,
            truth,
            predicted,
            confidence,
        }
    }

    #[test]
    fn keeps_95_percent_of_the_right_answers() {
        // 20 right answers at 0.50, 0.52, …, 0.88: the 19 highest are kept, the lowest (0.50) is not.
        let mut all: Vec<_> = (0..20).map(|i| p(1, 1, 0.50 + 0.02 * i as f32)).collect();
        all.push(p(0, 1, 0.40));
        all.push(p(0, 1, 0.90));
        let t = suggest(&all);
        assert!((t - 0.52).abs() < 1e-6, "{t}");
        let e = effect(&all, t);
        assert_eq!((e.right_kept, e.right, e.wrong_caught, e.wrong), (19, 20, 1, 2));
    }

    #[test]
    fn no_right_answer_means_no_threshold() {
        assert_eq!(suggest(&[p(0, 1, 0.9)]), 0.0);
        assert_eq!(suggest(&[]), 0.0);
        assert_eq!(effect(&[p(0, 1, 0.9)], 0.0).wrong_caught, 0);
    }
}
