//! The process-wide budget for observation buffers: bytes the decoders hold
//! while they wait for the rest of a frame. Each direction may hold up to
//! `relay.max_observed_frame`; without a total, N connections that each send a
//! partial frame and stall hold N × that (issue 10). When a direction would go
//! over the budget it is relayed unobserved instead; relaying never stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Default total for all connections: 64 MiB.
pub const DEFAULT_BUDGET: usize = 64 << 20;

/// The shared total.
#[derive(Debug)]
pub struct ObserveBudget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

/// The budget would be exceeded: stop observing this direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("observation memory budget of {limit} bytes exhausted")]
pub struct Exhausted {
    pub limit: usize,
}

impl ObserveBudget {
    pub fn new(limit: usize) -> Arc<ObserveBudget> {
        Arc::new(ObserveBudget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
        })
    }

    /// The daemon's budget (one per process; `relay.observe_budget` sets its
    /// limit at start-up and on reload).
    pub fn global() -> &'static Arc<ObserveBudget> {
        static GLOBAL: OnceLock<Arc<ObserveBudget>> = OnceLock::new();
        GLOBAL.get_or_init(|| ObserveBudget::new(DEFAULT_BUDGET))
    }

    /// A new limit; shares already held stay, growth is judged against it.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Bytes held by all decoders now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
}

/// One decoder's share of the budget; released when dropped.
#[derive(Debug)]
pub struct Share {
    budget: Arc<ObserveBudget>,
    held: usize,
}

impl Share {
    pub fn new(budget: &Arc<ObserveBudget>) -> Share {
        Share {
            budget: Arc::clone(budget),
            held: 0,
        }
    }

    /// Bytes this share holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The decoder will hold `bytes` (call it before feeding with what it holds
    /// plus the new bytes, and after with what it holds). Growing past the
    /// budget is refused and nothing changes; shrinking always succeeds.
    pub fn set(&mut self, bytes: usize) -> Result<(), Exhausted> {
        let limit = self.budget.limit();
        if bytes > self.held {
            let more = bytes - self.held;
            let grown =
                self.budget
                    .used
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                        used.checked_add(more).filter(|&n| n <= limit)
                    });
            if grown.is_err() {
                return Err(Exhausted { limit });
            }
        } else {
            self.budget
                .used
                .fetch_sub(self.held - bytes, Ordering::AcqRel);
        }
        self.held = bytes;
        Ok(())
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_are_refused_past_the_limit() {
        let b = ObserveBudget::new(1000);
        let mut a = Share::new(&b);
        let mut c = Share::new(&b);
        a.set(600).unwrap();
        assert_eq!(c.set(500), Err(Exhausted { limit: 1000 }));
        assert_eq!(c.held(), 0, "a refused growth changes nothing");
        c.set(400).unwrap();
        assert_eq!(b.used(), 1000);
        a.set(100).unwrap();
        assert_eq!(b.used(), 500);
        drop(c);
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn concurrent_shares_never_exceed_the_limit() {
        let b = ObserveBudget::new(10_000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    let mut s = Share::new(&b);
                    for i in 0..10_000usize {
                        let _ = s.set((i * 37) % 3000);
                        assert!(b.used() <= 10_000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(b.used(), 0);
    }
}
