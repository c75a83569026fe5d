//! Rate-limited logging per reason: the first `burst` lines of a reason in each
//! interval are written, the rest are counted and summarised once per interval
//! ("N more like this"), so a flood of garbage connections or failed upstream
//! connects cannot flood the journal.
//!
//! The limiter decides; the caller logs. Time is passed in, so it is tested
//! without sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What to do with one line of a reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write it.
    Log,
    /// Write it, after a summary of `suppressed` lines held back in the
    /// interval that just ended.
    LogAfterSummary { suppressed: u64 },
    /// Count it, do not write it.
    Suppress,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// One limiter for the whole process; reasons are a closed set of labels.
#[derive(Debug)]
pub struct LogLimiter {
    burst: u32,
    interval: Duration,
    windows: Mutex<HashMap<&'static str, Window>>,
}

impl LogLimiter {
    /// At most `burst` lines per reason per `interval`.
    pub fn new(burst: u32, interval: Duration) -> LogLimiter {
        LogLimiter {
            burst: burst.max(1),
            interval,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Decides about one line of `reason` at `now`.
    pub fn decide(&self, reason: &'static str, now: Instant) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.entry(reason).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut summary = 0;
        if now.duration_since(w.start) >= self.interval {
            summary = std::mem::take(&mut w.suppressed);
            w.start = now;
            w.logged = 0;
        }
        if w.logged < self.burst {
            w.logged += 1;
            if summary > 0 {
                Decision::LogAfterSummary {
                    suppressed: summary,
                }
            } else {
                Decision::Log
            }
        } else {
            w.suppressed += 1;
            Decision::Suppress
        }
    }

    /// Summaries of intervals that have ended with lines held back (call it
    /// periodically, so a flood that stops is still summarised): `(reason, n)`.
    pub fn flush(&self, now: Instant) -> Vec<(&'static str, u64)> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (reason, w) in windows.iter_mut() {
            if w.suppressed > 0 && now.duration_since(w.start) >= self.interval {
                out.push((*reason, std::mem::take(&mut w.suppressed)));
                w.start = now;
                w.logged = 0;
            }
        }
        windows.retain(|_, w| now.duration_since(w.start) < self.interval * 4);
        out.sort();
        out
    }
}

impl Default for LogLimiter {
    /// 5 lines per reason per 10 s.
    fn default() -> Self {
        LogLimiter::new(5, Duration::from_secs(10))
    }
}

/// The daemon's limiter (5 lines per reason per 10 s).
pub fn global() -> &'static LogLimiter {
    static GLOBAL: OnceLock<LogLimiter> = OnceLock::new();
    GLOBAL.get_or_init(LogLimiter::default)
}

/// Runs `log` (which writes one line of `reason`) if the limiter lets it, after
/// the summary of what was held back, if any.
pub fn limited(reason: &'static str, log: impl FnOnce()) {
    match global().decide(reason, Instant::now()) {
        Decision::Log => log(),
        Decision::LogAfterSummary { suppressed } => {
            summary(reason, suppressed);
            log();
        }
        Decision::Suppress => {}
    }
}

/// Writes the summaries of intervals that ended (the daemon calls it every second).
pub fn flush_summaries() {
    for (reason, suppressed) in global().flush(Instant::now()) {
        summary(reason, suppressed);
    }
}

fn summary(reason: &'static str, suppressed: u64) {
    tracing::warn!(
        reason,
        suppressed,
        "{suppressed} more like this (log lines of this reason are rate-limited)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_writes_the_burst_then_one_summary_per_interval() {
        let l = LogLimiter::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let decisions: Vec<_> = (0..5000).map(|_| l.decide("garbage", t0)).collect();
        assert_eq!(decisions.iter().filter(|d| **d == Decision::Log).count(), 3);
        assert_eq!(
            decisions
                .iter()
                .filter(|d| **d == Decision::Suppress)
                .count(),
            4997
        );
        // The next line after the interval carries the summary.
        assert_eq!(
            l.decide("garbage", t0 + Duration::from_secs(10)),
            Decision::LogAfterSummary { suppressed: 4997 }
        );
        assert_eq!(
            l.decide("garbage", t0 + Duration::from_secs(11)),
            Decision::Log
        );
    }

    #[test]
    fn reasons_are_limited_independently() {
        let l = LogLimiter::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.decide("connect_refused", t0), Decision::Log);
        assert_eq!(l.decide("connect_refused", t0), Decision::Suppress);
        assert_eq!(l.decide("decode_error", t0), Decision::Log);
    }

    #[test]
    fn flush_summarises_a_flood_that_stopped() {
        let l = LogLimiter::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..4 {
            l.decide("garbage", t0);
        }
        assert!(
            l.flush(t0 + Duration::from_secs(5)).is_empty(),
            "interval not over"
        );
        assert_eq!(l.flush(t0 + Duration::from_secs(10)), vec![("garbage", 3)]);
        assert!(
            l.flush(t0 + Duration::from_secs(30)).is_empty(),
            "said once"
        );
        // After the summary the burst is available again.
        assert_eq!(
            l.decide("garbage", t0 + Duration::from_secs(31)),
            Decision::Log
        );
    }
}
