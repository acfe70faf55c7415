//! Capped exponential backoff with full jitter, for everything that retries etcd, and the
//! summary of a run of failures: its first failure is logged at once, then one line per
//! [`SUMMARY_INTERVAL`], never one per attempt.

use std::time::{Duration, Instant};

use rand::Rng;

/// First retry delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Shortest time between two log lines about one run of failures.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(30);

/// Capped exponential backoff with full jitter.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay before the next attempt: uniformly between half and all of the current step,
    /// which then doubles up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let millis = step.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }

    /// Back to the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// What to log about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The first failure since the start or the last success: log it.
    First,
    /// A summary is due: `attempts` failures in the `over` since the run of failures began.
    Summary {
        /// Failed attempts in this run, this one included.
        attempts: u64,
        /// Time since the run's first failure.
        over: Duration,
    },
    /// Nothing to log now.
    Quiet,
}

impl Report {
    /// The line to log, if any: `first` for the first failure, else the summary ("etcd still
    /// unreachable: 12 attempts in 30 s").
    pub fn line(self, first: &str) -> Option<String> {
        match self {
            Report::First => Some(first.to_string()),
            Report::Summary { attempts, over } => Some(format!(
                "etcd still unreachable: {attempts} attempts in {} s",
                over.as_secs()
            )),
            Report::Quiet => None,
        }
    }
}

/// A run of failures that a success ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// Failed attempts.
    pub attempts: u64,
    /// From the first failure to the success.
    pub over: Duration,
}

/// The retry state of one loop: its backoff, the current run of failures (for summarised
/// logs) and whether any attempt ever succeeded (a permanent failure before that ends the
/// program; after it, retrying goes on).
#[derive(Debug, Default)]
pub struct Retry {
    backoff: Backoff,
    /// Failures since the last success.
    attempts: u64,
    /// When the current run of failures began.
    since: Option<Instant>,
    /// When a line about the current run was last logged.
    reported: Option<Instant>,
    /// True once an attempt succeeded.
    succeeded: bool,
}

impl Retry {
    /// Records a failed attempt: the delay before the next one, and what to log.
    pub fn failed(&mut self) -> (Duration, Report) {
        self.failed_at(Instant::now())
    }

    fn failed_at(&mut self, now: Instant) -> (Duration, Report) {
        self.attempts += 1;
        let since = *self.since.get_or_insert(now);
        let report = match self.reported {
            None => Report::First,
            Some(last) if now.duration_since(last) >= SUMMARY_INTERVAL => Report::Summary {
                attempts: self.attempts,
                over: now.duration_since(since),
            },
            Some(_) => Report::Quiet,
        };
        if report != Report::Quiet {
            self.reported = Some(now);
        }
        (self.backoff.next_delay(), report)
    }

    /// Records a success: back to the shortest delay; returns the run of failures it ended,
    /// if any.
    pub fn succeeded(&mut self) -> Option<Outage> {
        self.succeeded_at(Instant::now())
    }

    fn succeeded_at(&mut self, now: Instant) -> Option<Outage> {
        self.succeeded = true;
        self.backoff.reset();
        self.reported = None;
        let since = self.since.take()?;
        let attempts = std::mem::take(&mut self.attempts);
        Some(Outage {
            attempts,
            over: now.duration_since(since),
        })
    }

    /// How long the current run of failures has lasted (zero when there is none).
    pub fn outage(&self) -> Duration {
        self.since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// True once an attempt succeeded.
    pub fn has_succeeded(&self) -> bool {
        self.succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::default();
        let mut step = BACKOFF_MIN;
        for _ in 0..10 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
            step = (step * 2).min(BACKOFF_MAX);
        }
        assert!(backoff.next_delay() >= BACKOFF_MAX / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= BACKOFF_MIN);
    }

    #[test]
    fn a_run_of_failures_logs_its_first_then_a_summary_per_interval() {
        let mut retry = Retry::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(!retry.has_succeeded());
        assert_eq!(retry.failed_at(at(0)).1, Report::First);
        for s in 1..30 {
            assert_eq!(retry.failed_at(at(s)).1, Report::Quiet, "at {s} s");
        }
        let summary = Report::Summary {
            attempts: 31,
            over: Duration::from_secs(30),
        };
        assert_eq!(retry.failed_at(at(30)).1, summary);
        assert_eq!(
            summary.line("first").as_deref(),
            Some("etcd still unreachable: 31 attempts in 30 s")
        );
        assert_eq!(retry.failed_at(at(31)).1, Report::Quiet);
        let outage = Outage {
            attempts: 32,
            over: Duration::from_secs(40),
        };
        assert_eq!(retry.succeeded_at(at(40)), Some(outage));
        assert!(retry.has_succeeded());
        assert_eq!(retry.succeeded_at(at(41)), None, "no failure since");
        // A new run starts over, with the shortest delay again.
        let (delay, report) = retry.failed_at(at(42));
        assert_eq!(report, Report::First);
        assert!(delay <= BACKOFF_MIN);
    }
}
