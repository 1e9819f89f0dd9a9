//! How long to wait before trying again, for everything that retries: the
//! outbox relay and the consumers after NATS or the database failed, a
//! redelivered event, a complaint filing the complaints service did not take.
//!
//! One shape for all: exponential from `first`, doubling per attempt, never
//! above `max`, with "equal jitter" (each delay is drawn from the upper half of
//! its step, so replicas that failed together do not retry together, and a
//! delay is never below half its step nor above `max`). The delays come from
//! `backon`'s exponential backoff.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// A loop that lost NATS or its database (the outbox relay, a consumer)
/// resumes after this: 0.1–0.2 s at first, at most 15 s.
pub const RESUME: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));

/// An exponential backoff with jitter: attempt `n` (from 1) waits between half
/// of `first · 2ⁿ⁻¹` (at most `max`) and all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// From `first`, doubling, up to `max` (`first` if it is smaller).
    pub const fn new(first: Duration, max: Duration) -> Self {
        let max = if max.as_nanos() < first.as_nanos() {
            first
        } else {
            max
        };
        Self { first, max }
    }

    /// The delays of attempts 1, 2, 3, …, without end.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        // backon adds a random part below the current delay: from half the
        // step it makes [step/2, step).
        ExponentialBuilder::new()
            .with_min_delay(self.first / 2)
            .with_max_delay(self.max / 2)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The delay before attempt `attempt` (1 for the first retry; 0 counts as 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let skip = attempt.saturating_sub(1).min(64) as usize;
        self.delays().nth(skip).unwrap_or(self.max)
    }

    /// The longest attempt `attempt` may wait: its whole step, `first ·
    /// 2ⁿ⁻¹`, at most `max`.
    pub fn at_most(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// A backoff in a loop: [`Retries::next_delay`] after each failure,
    /// [`Retries::reset`] after a success.
    pub fn retries(&self) -> Retries {
        Retries {
            backoff: *self,
            attempt: 0,
        }
    }
}

/// The failures in a row of one loop, and the delay they call for.
#[derive(Debug, Clone)]
pub struct Retries {
    backoff: Backoff,
    attempt: u32,
}

impl Retries {
    /// After a failure: how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        self.backoff.delay(self.attempt)
    }

    /// After a success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));

    #[test]
    fn each_delay_lies_in_the_upper_half_of_its_doubling_step() {
        for _ in 0..50 {
            for (attempt, step_ms) in [(1, 200), (2, 400), (3, 800), (6, 6400)] {
                let delay = BACKOFF.delay(attempt);
                let step = Duration::from_millis(step_ms);
                assert_eq!(BACKOFF.at_most(attempt), step);
                assert!(
                    delay >= step / 2 && delay <= step,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn delays_never_exceed_the_cap_and_never_end() {
        let delays: Vec<Duration> = BACKOFF.delays().take(100).collect();
        assert_eq!(delays.len(), 100);
        assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(15)));
        assert!(
            delays[99] >= Duration::from_millis(7500),
            "{:?}",
            delays[99]
        );
        assert!(BACKOFF.delay(u32::MAX) <= Duration::from_secs(15));
    }

    #[test]
    fn delays_are_jittered() {
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| BACKOFF.delay(4)).collect();
        assert!(delays.len() > 1, "20 draws gave one delay: {delays:?}");
    }

    #[test]
    fn a_loop_starts_again_from_the_shortest_after_a_success() {
        let mut retries = BACKOFF.retries();
        retries.next_delay();
        retries.next_delay();
        assert!(retries.next_delay() >= Duration::from_millis(400));
        retries.reset();
        assert!(retries.next_delay() <= Duration::from_millis(200));
    }

    #[test]
    fn a_cap_below_the_first_delay_is_the_first_delay() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert!(backoff.delay(3) <= Duration::from_secs(5));
    }
}
