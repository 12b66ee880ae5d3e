//! The clock of a run: the rate measured once a few steps past the first have run, and the time left from that
//! rate (none before: "estimating…"); for a deeper run also its time budget, which the time left never passes.

/// Training steps timed before the rate is trusted.
const TIMED_STEPS: usize = 3;
/// Share of the time left that planning keeps spare.
const MARGIN: f64 = 0.15;

pub struct Budget {
    /// When the deeper run began (this session: a resumed run gets a fresh budget).
    started: f64,
    /// Seconds it may take (`None`: no limit).
    limit: Option<f64>,
    /// When the first training step of this session ended, and the steps done then.
    timed_from: Option<(f64, usize)>,
    /// When training began this session (the first training step's start), and the rounds done then.
    rounds_from: Option<(f64, usize)>,
    /// Seconds kept back for the kept model's final evaluation (`reserve`).
    reserved: f64,
}

impl Budget {
    /// `budget_seconds` 0: no limit.
    pub fn new(started: f64, budget_seconds: u32) -> Self {
        Self {
            started,
            limit: (budget_seconds > 0).then_some(budget_seconds as f64),
            timed_from: None,
            rounds_from: None,
            reserved: 0.0,
        }
    }

    /// Keeps `seconds` of the budget back for the final evaluation of the kept model (estimated from the last
    /// validation): training stops that much earlier.
    pub fn reserve(&mut self, seconds: f64) {
        self.reserved = seconds.max(0.0);
    }

    /// Seconds of the budget training may take (none without one).
    fn training_limit(&self) -> Option<f64> {
        self.limit.map(|l| (l - self.reserved).max(0.0))
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// A training step is about to start at `now`, with `rounds` done.
    pub fn training(&mut self, now: f64, rounds: usize) {
        self.rounds_from.get_or_insert((now, rounds));
    }

    /// A training step ended at `now`, `steps` done in all.
    pub fn stepped(&mut self, now: f64, steps: usize) {
        self.timed_from.get_or_insert((now, steps));
    }

    /// Whether the budget is spent at `now`.
    pub fn spent(&self, now: f64) -> bool {
        self.spent_share(now, 1.0)
    }

    /// Whether `share` of the budget left to training is spent at `now`.
    pub fn spent_share(&self, now: f64, share: f64) -> bool {
        self.training_limit().is_some_and(|l| now - self.started >= l * share)
    }

    /// Rounds that fit in what is left of the budget at `now`, at this session's measured seconds per round
    /// (`rounds` done in all); `None` without a limit or before a round was timed.
    pub fn rounds_that_fit(&self, now: f64, rounds: usize) -> Option<usize> {
        let limit = self.training_limit()?;
        let (t0, r0) = self.rounds_from?;
        let per_round = (now - t0) / rounds.checked_sub(r0).filter(|&r| r > 0)? as f64;
        // A margin for rounds slower than the last: a round cut by the budget before its validation is lost.
        let left = (limit - (now - self.started)) * (1.0 - MARGIN);
        Some(rounds + (left / per_round).max(0.0).floor() as usize)
    }

    /// Seconds left at `now` to reach `total` steps from `steps`, at the rate measured since the first training
    /// step (validation included once a round has passed), capped by the budget; `None` until
    /// [`TIMED_STEPS`] steps have been timed.
    pub fn seconds_left(&self, now: f64, steps: usize, total: usize) -> Option<f64> {
        let (t0, s0) = self.timed_from?;
        let timed = steps.checked_sub(s0).filter(|&s| s >= TIMED_STEPS)?;
        let rate = timed as f64 / (now - t0).max(1e-9);
        let left = total.saturating_sub(steps) as f64 / rate;
        Some(match self.training_limit() {
            Some(l) => left.min((l - (now - self.started)).max(0.0)) + self.reserved,
            None => left + self.reserved,
        })
    }
}

/// `seconds` as a person reads it: "40 s", "9 min 40 s", "10 min", "1 h 5 min".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_wait_for_timed_steps_and_stay_within_the_budget() {
        let mut b = Budget::new(0.0, 600);
        b.training(100.0, 0);
        b.stepped(101.0, 1);
        assert_eq!(
            b.seconds_left(102.0, 2, 1000),
            None,
            "estimating until 3 steps are timed"
        );
        // 3 steps in 3 s after the first: 1 step/s, 996 steps left, but only 496 s of budget.
        assert_eq!(b.seconds_left(104.0, 4, 1000), Some(496.0));
        assert_eq!(Budget::new(0.0, 0).limit(), None);
        let mut free = Budget::new(0.0, 0);
        free.stepped(1.0, 1);
        assert_eq!(free.seconds_left(4.0, 4, 10), Some(6.0));
        // 100 s kept back for the final evaluation: training may take 400 s of the 500 left, then 100 s.
        b.reserve(100.0);
        assert_eq!(b.seconds_left(104.0, 4, 1000), Some(496.0));
        assert_eq!(b.seconds_left(104.0, 4, 200), Some(296.0));
        assert!(!b.spent(499.0) && b.spent(500.0));
    }

    #[test]
    fn rounds_that_fit_use_the_measured_round_time() {
        let mut b = Budget::new(0.0, 600);
        assert_eq!(b.rounds_that_fit(50.0, 0), None);
        b.training(60.0, 0);
        assert_eq!(b.rounds_that_fit(60.0, 0), None, "no round timed yet");
        // One round in 90 s, 450 s left (382.5 s with the margin): 4 more.
        assert_eq!(b.rounds_that_fit(150.0, 1), Some(5));
        assert!(!b.spent(599.0) && b.spent(600.0));
        assert_eq!(Budget::new(0.0, 0).rounds_that_fit(10.0, 1), None);
    }

    #[test]
    fn durations_read_plainly() {
        assert_eq!(duration(40.2), "40 s");
        assert_eq!(duration(580.0), "9 min 40 s");
        assert_eq!(duration(600.0), "10 min");
        assert_eq!(duration(3900.0), "1 h 5 min");
    }
}
