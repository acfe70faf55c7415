//! A history checker in the spirit of Jepsen's, for DNS answers fed by etcd.
//!
//! The writer records every change it makes to a name as a [`Version`]: the value the name has
//! afterwards and the interval in which the change took effect (from the first attempt's
//! sending to etcd's acknowledgement; a wipe is a version too). The recorder records every
//! answer with the interval of its query. An answer is **correct within a bound B** when it
//! equals some version that was current at some instant in `[query sent − B, answer received]`;
//! its **staleness** is how long before the query was sent the next version had already been
//! acknowledged (0 when the answer was current). Versions of one name are totally ordered
//! (one writer, one request at a time), so the latest matching version gives the least
//! staleness.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a name answers: its addresses, sorted; empty when it does not exist.
pub type Value = Vec<String>;

/// One state of a name: its value once a change took effect somewhere in `[sent, acked]`.
#[derive(Clone, Debug)]
pub struct Version {
    /// The value from then on.
    pub value: Value,
    /// When the change was first sent.
    pub sent: Instant,
    /// When etcd acknowledged it.
    pub acked: Instant,
}

/// What a query got.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// NOERROR with these addresses, or NXDOMAIN (empty).
    Answer(Value),
    /// SERVFAIL: the server would not vouch for its table.
    Servfail,
    /// No reply in time.
    Timeout,
}

/// One query and what it got.
#[derive(Clone, Debug)]
pub struct Observation {
    /// Which server was asked.
    pub replica: usize,
    /// The name asked.
    pub name: String,
    /// When the query was sent.
    pub sent: Instant,
    /// When the reply arrived (or the wait ended).
    pub received: Instant,
    /// What came back.
    pub outcome: Outcome,
}

/// The checker's findings over some observations.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Answers checked.
    pub answers: usize,
    /// The largest staleness of an answer that matched some version.
    pub max_staleness: Duration,
    /// Answers matching no version current within the bound, described.
    pub wrong: Vec<String>,
    /// Absent answers for names that were registered throughout.
    pub misses: usize,
    /// SERVFAIL replies.
    pub servfail: usize,
    /// Queries without a reply.
    pub timeouts: usize,
}

/// The staleness of answer `value` to a query sent at `sent`, answered at `received`, given
/// the name's `versions` (ordered); `None` when no version ever had that value by then. Before
/// its first version a name is absent.
pub fn staleness(
    versions: &[Version],
    value: &Value,
    sent: Instant,
    received: Instant,
) -> Option<Duration> {
    let stale_after = |next: Option<&Version>| match next {
        Some(next) if next.acked < sent => sent - next.acked,
        _ => Duration::ZERO,
    };
    // Versions that could have taken effect before the answer was received.
    let possible = versions.partition_point(|v| v.sent <= received);
    for k in (0..possible).rev() {
        if versions[k].value == *value {
            return Some(stale_after(versions.get(k + 1)));
        }
    }
    value.is_empty().then(|| stale_after(versions.first()))
}

/// Checks `observations` against every name's `versions` with staleness bound `bound`; names
/// in `steady` were registered throughout (an absent answer for one is a miss).
pub fn check(
    versions: &BTreeMap<String, Vec<Version>>,
    observations: &[Observation],
    bound: Duration,
    steady: &[String],
) -> Verdict {
    let mut verdict = Verdict::default();
    let none = Vec::new();
    for seen in observations {
        let value = match &seen.outcome {
            Outcome::Answer(value) => value,
            Outcome::Servfail => {
                verdict.servfail += 1;
                continue;
            }
            Outcome::Timeout => {
                verdict.timeouts += 1;
                continue;
            }
        };
        verdict.answers += 1;
        if value.is_empty() && steady.contains(&seen.name) {
            verdict.misses += 1;
        }
        let history = versions.get(&seen.name).unwrap_or(&none);
        match staleness(history, value, seen.sent, seen.received) {
            Some(stale) if stale <= bound => {
                verdict.max_staleness = verdict.max_staleness.max(stale);
            }
            found => {
                if let Some(stale) = found {
                    verdict.max_staleness = verdict.max_staleness.max(stale);
                }
                verdict.wrong.push(format!(
                    "replica {} answered {} = {value:?} ({}): {}",
                    seen.replica,
                    seen.name,
                    found.map_or("no such version".to_string(), |s| format!("{s:?} stale")),
                    describe(history, seen.sent),
                ));
            }
        }
    }
    verdict
}

/// The versions around `at`, for a wrong answer's description.
fn describe(versions: &[Version], at: Instant) -> String {
    let near: Vec<String> = versions
        .iter()
        .filter(|v| v.acked + Duration::from_secs(5) > at && v.sent < at + Duration::from_secs(1))
        .map(|v| {
            let offset = |t: Instant| {
                if t >= at {
                    format!("+{}ms", (t - at).as_millis())
                } else {
                    format!("-{}ms", (at - t).as_millis())
                }
            };
            format!(
                "{:?} sent {} acked {}",
                v.value,
                offset(v.sent),
                offset(v.acked)
            )
        })
        .collect();
    format!("versions near the query: [{}]", near.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn version(base: Instant, value: &[&str], sent: u64, acked: u64) -> Version {
        Version {
            value: value.iter().map(|s| s.to_string()).collect(),
            sent: at(base, sent),
            acked: at(base, acked),
        }
    }

    fn seen(base: Instant, name: &str, value: &[&str], sent: u64) -> Observation {
        Observation {
            replica: 0,
            name: name.into(),
            sent: at(base, sent),
            received: at(base, sent + 1),
            outcome: Outcome::Answer(value.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn answers_are_judged_by_the_versions_current_within_the_bound() {
        let base = Instant::now();
        let mut versions = BTreeMap::new();
        // a: 10.0.0.1 from ~100 ms, 10.0.0.2 from ~1,000 ms, deleted at ~2,000 ms.
        versions.insert(
            "a".to_string(),
            vec![
                version(base, &["10.0.0.1"], 100, 110),
                version(base, &["10.0.0.2"], 1_000, 1_010),
                version(base, &[], 2_000, 2_010),
            ],
        );
        let bound = Duration::from_millis(500);
        let observations = vec![
            // Current answers.
            seen(base, "a", &["10.0.0.1"], 500),
            seen(base, "a", &["10.0.0.2"], 1_500),
            seen(base, "a", &[], 2_600),
            // In flight: either value is right while the change is being made.
            seen(base, "a", &["10.0.0.1"], 1_005),
            // 390 ms stale: within the bound.
            seen(base, "a", &["10.0.0.1"], 1_400),
            // 790 ms stale, and a value it never had, and absent before it was deleted.
            seen(base, "a", &["10.0.0.1"], 1_800),
            seen(base, "a", &["10.9.9.9"], 1_500),
            seen(base, "a", &[], 1_500),
            // Absent before its first version: fine; a name never written is absent.
            seen(base, "a", &[], 50),
            seen(base, "b", &[], 50),
        ];
        let verdict = check(&versions, &observations, bound, &["a".to_string()]);
        assert_eq!(verdict.answers, 10);
        assert_eq!(verdict.wrong.len(), 3, "{:#?}", verdict.wrong);
        assert!(verdict.wrong[0].contains("10.0.0.1"));
        assert!(verdict.wrong[1].contains("no such version"));
        assert_eq!(verdict.max_staleness, Duration::from_millis(1_390));
        assert_eq!(verdict.misses, 3);
    }

    #[test]
    fn the_latest_matching_version_gives_the_least_staleness() {
        let base = Instant::now();
        // The same value twice: an answer after the second is current, not stale.
        let versions = vec![
            version(base, &["10.0.0.1"], 0, 10),
            version(base, &[], 100, 110),
            version(base, &["10.0.0.1"], 200, 210),
        ];
        let value = vec!["10.0.0.1".to_string()];
        let now = at(base, 5_000);
        assert_eq!(staleness(&versions, &value, now, now), Some(Duration::ZERO));
        // Before the second one, the first was 50 ms stale at 160 ms.
        let then = at(base, 160);
        assert_eq!(
            staleness(&versions, &value, then, then),
            Some(Duration::from_millis(50))
        );
    }

    #[test]
    fn servfail_and_timeouts_are_counted_not_judged() {
        let base = Instant::now();
        let mut observation = seen(base, "a", &[], 10);
        observation.outcome = Outcome::Servfail;
        let mut timeout = observation.clone();
        timeout.outcome = Outcome::Timeout;
        let verdict = check(
            &BTreeMap::new(),
            &[observation, timeout],
            Duration::ZERO,
            &[],
        );
        assert_eq!(
            (verdict.answers, verdict.servfail, verdict.timeouts),
            (0, 1, 1)
        );
        assert!(verdict.wrong.is_empty());
    }
}
