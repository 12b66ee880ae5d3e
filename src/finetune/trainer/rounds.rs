//! Rounds: a deeper run validates after every round of at most [`ROUND_IMAGES`] training images, so a large set
//! is checked (and can stop early, or at the time budget, with its best kept) several times a pass; on a small
//! set a round is an epoch. Validation uses at most [`VALIDATION_IMAGES`] images, a fixed subset.

use burn::module::Module;

use super::{DeepTrainer, State};
use crate::finetune::step::Sums;
use crate::head::EpochMetrics;
use crate::head::epoch_log::EpochLog;

/// Most training images between two validations.
pub const ROUND_IMAGES: usize = 3200;
/// Most validation images checked after a round (the final report uses them all).
pub const VALIDATION_IMAGES: usize = 1000;

/// Rounds a pass over `train` images is cut into, each of at most `round_images`.
pub(super) fn rounds_per_pass(train: usize, round_images: usize) -> usize {
    train.div_ceil(round_images.max(1)).max(1)
}

/// What the history's entries are called: rounds where a pass holds several.
pub(super) fn unit(rounds: usize) -> &'static str {
    if rounds > 1 { "round" } else { "epoch" }
}

/// At most [`VALIDATION_IMAGES`] of `val`, evenly spaced (the split lists them class by class, so every class
/// keeps its share).
pub(super) fn validation_subset(val: &[usize]) -> Vec<usize> {
    if val.len() <= VALIDATION_IMAGES {
        return val.to_vec();
    }
    (0..VALIDATION_IMAGES)
        .map(|k| val[k * val.len() / VALIDATION_IMAGES])
        .collect()
}

impl DeepTrainer {
    /// Validates after every `images` training images (at most) instead of [`ROUND_IMAGES`]: a test's small
    /// rounds. Before the first step.
    pub fn with_round_images(mut self, images: usize) -> Self {
        self.rounds = rounds_per_pass(self.data.train.len(), images);
        self.log = EpochLog::new(self.options.epochs * self.rounds, self.options.patience).counting(unit(self.rounds));
        self.total_steps = self.steps_through(self.log.epochs());
        if matches!(self.state, State::Training { .. }) {
            self.rng = self.epoch_rng.clone();
            self.pass_order.clear();
            self.state = self.start_epoch();
        }
        self
    }

    /// The next round's training images: the next share of the pass's shuffle, shuffled anew at each pass (and
    /// after a resume, from the pass's saved generator).
    pub(super) fn start_epoch(&mut self) -> State {
        let round = self.log.next_epoch();
        if round.is_multiple_of(self.rounds) || self.pass_order.is_empty() {
            self.epoch_rng = self.rng.clone();
            self.pass_order = self.data.train.clone();
            self.rng.shuffle(&mut self.pass_order);
        }
        let share = self.round_range(round % self.rounds);
        State::Training {
            order: self.pass_order[share].to_vec(),
            next: 0,
            sums: Sums::default(),
            pending: None,
        }
    }

    fn round_range(&self, j: usize) -> std::ops::Range<usize> {
        let n = self.data.train.len();
        let share = n.div_ceil(self.rounds);
        (j * share).min(n)..((j + 1) * share).min(n)
    }

    /// Optimiser steps in the first `rounds` rounds.
    pub fn steps_through(&self, rounds: usize) -> usize {
        let bs = self.options.batch_size;
        let per_pass: usize = (0..self.rounds).map(|j| self.round_range(j).len().div_ceil(bs)).sum();
        let rest: usize = (0..rounds % self.rounds)
            .map(|j| self.round_range(j).len().div_ceil(bs))
            .sum();
        rounds / self.rounds * per_pass + rest
    }

    /// Validations per pass over the training images (1: every epoch).
    pub fn rounds_per_pass(&self) -> usize {
        self.rounds
    }

    /// Training images per round.
    pub fn round_images(&self) -> usize {
        self.round_range(0).len()
    }

    /// Validation images checked after each round, and all of them.
    pub fn validation_images(&self) -> (usize, usize) {
        (self.data.val.len(), self.val_images)
    }

    /// The most rounds the run goes to.
    pub fn planned_rounds(&self) -> usize {
        self.log.epochs()
    }

    /// Ends the run after `rounds` in all, when fewer than planned (what the time budget holds), with the
    /// learning-rate schedule shortened to end there; `reason` is then the stop reason.
    pub fn plan_rounds(&mut self, rounds: usize, reason: String) {
        if rounds < self.log.epochs() {
            self.log.limit(rounds, reason);
            self.total_steps = self.steps_through(self.log.epochs()).max(self.step_count);
        }
    }

    /// Ends the caching phase now (the time budget holds no more of it): views not cached are computed when a
    /// step needs them.
    pub fn end_caching(&mut self) {
        if matches!(self.state, State::Caching { .. }) {
            self.state = self.start_epoch();
        }
    }

    /// Ends the round under way after its next step (the time budget is spent before any round ended, and a run
    /// needs one validated round to keep).
    pub fn end_round(&mut self) {
        let bs = self.options.batch_size;
        if let State::Training { order, next, .. } = &mut self.state {
            order.truncate(*next + bs);
        }
    }

    /// Optimiser steps done when round `round` (0-based) ended.
    pub fn steps_at_round(&self, round: usize) -> usize {
        self.round_steps
            .get(round)
            .copied()
            .unwrap_or_else(|| self.steps_through(round + 1))
    }

    /// Stops now for `reason` (the time budget), keeping the best round so far.
    pub fn stop_for(&mut self, reason: String) {
        self.log.stop_with(reason);
        self.state = State::Done;
    }

    pub(super) fn end_epoch(&mut self, train: Sums, val: Sums) -> EpochMetrics {
        let epoch = self.log.next_epoch();
        let (train_loss, train_accuracy) = train.mean();
        let (val_loss, val_accuracy) = val.mean();
        let metrics = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
        };
        self.round_steps.resize(epoch, self.step_count);
        self.round_steps.push(self.step_count);
        let (tail, classifier) = (&self.tail, &self.classifier);
        self.log.record(metrics.clone(), || (tail.valid(), classifier.valid()));
        self.state = if self.log.is_done() {
            State::Done
        } else {
            self.start_epoch()
        };
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_sets_validate_in_rounds_on_an_even_subset() {
        assert_eq!(
            (
                rounds_per_pass(1, 3200),
                rounds_per_pass(3200, 3200),
                rounds_per_pass(8000, 3200)
            ),
            (1, 1, 3)
        );
        let small: Vec<usize> = (0..999).collect();
        assert_eq!(validation_subset(&small), small);
        let large: Vec<usize> = (0..2500).collect();
        let subset = validation_subset(&large);
        assert_eq!(subset.len(), VALIDATION_IMAGES);
        assert_eq!(
            (subset[0], subset[1], subset[2], subset[999]),
            (0, 2, 5, 2497),
            "evenly spread"
        );
    }
}
