//! The stable driver: runs a target for a bounded time on mutations of its
//! seeds, catching panics. A panic is a finding: its input is saved under
//! `target/fuzz-findings/<target>/` for a regression test.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::mutate::{mutate, Rng};
use crate::Target;

/// One panic the runner caught.
#[derive(Clone, Debug)]
pub struct Finding {
    pub message: String,
    pub input: Vec<u8>,
    /// Where the input was saved.
    pub saved: Option<PathBuf>,
}

/// What one bounded run did.
#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub execs: u64,
    pub seeds: usize,
    pub elapsed: Duration,
    /// The slowest single execution (a hang or a quadratic path shows here).
    pub slowest: Duration,
    pub findings: Vec<Finding>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {:<18} {:>9} execs in {:>5.1} s ({:>7.0}/s), {:>5} seeds, slowest {:>6.1} ms, {} finding(s)",
            self.target,
            self.execs,
            self.elapsed.as_secs_f64(),
            self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.seeds,
            self.slowest.as_secs_f64() * 1000.0,
            self.findings.len()
        )
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics inside a fuzz run are recorded, not printed (other threads' panics
/// still print).
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let fuzzing = LAST_PANIC.with(|p| p.borrow().is_some());
            if fuzzing {
                let msg = match info.location() {
                    Some(l) => format!("{info} ({}:{})", l.file(), l.line()),
                    None => info.to_string(),
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `target.run` on one input; `Err(message)` if it panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    quiet_panics();
    LAST_PANIC.with(|p| *p.borrow_mut() = Some(String::new()));
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let msg = LAST_PANIC.with(|p| p.borrow_mut().take());
    result.map_err(|_| msg.unwrap_or_default())
}

/// Runs every seed once, then mutations until `budget` is spent.
pub fn run(target: &Target, seeds: &[Vec<u8>], budget: Duration, rng_seed: u64) -> Report {
    let start = Instant::now();
    let mut rng = Rng::new(rng_seed);
    let mut report = Report {
        target: target.name,
        execs: 0,
        seeds: seeds.len(),
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
        findings: Vec::new(),
    };
    let max_len = seeds.iter().map(Vec::len).max().unwrap_or(0).max(4096) * 2;
    // Recent mutants are mutated further (deeper changes than one round allows).
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let empty = [Vec::new()];
    let seeds = if seeds.is_empty() { &empty[..] } else { seeds };
    let mut i = 0usize;
    loop {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            let base = if !pool.is_empty() && rng.chance(4) {
                &pool[rng.below(pool.len())]
            } else {
                &seeds[rng.below(seeds.len())]
            };
            let mut m = base.clone();
            let other = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, &mut m, other, max_len);
            m
        };
        i += 1;
        let t0 = Instant::now();
        let outcome = run_one(target, &input);
        report.slowest = report.slowest.max(t0.elapsed());
        report.execs += 1;
        if let Err(message) = outcome {
            if report.findings.len() < 20 && !report.findings.iter().any(|f| f.message == message) {
                let saved = save(target.name, &input);
                report.findings.push(Finding {
                    message,
                    input,
                    saved,
                });
            }
        } else if i > seeds.len() {
            if pool.len() < 256 {
                pool.push(input);
            } else {
                let at = rng.below(pool.len());
                pool[at] = input;
            }
        }
        if i >= seeds.len() && start.elapsed() >= budget {
            break;
        }
    }
    report.elapsed = start.elapsed();
    report
}

fn save(target: &str, input: &[u8]) -> Option<PathBuf> {
    let dir = crate::seeds::repo_root()
        .join("target/fuzz-findings")
        .join(target);
    std::fs::create_dir_all(&dir).ok()?;
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("crash-{hash:016x}"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// Shrinks an input that panics to a smaller one that panics at the same place
/// (chunk removal, then byte simplification), for a readable regression test.
pub fn minimize(target: &Target, input: &[u8]) -> Vec<u8> {
    let Err(first) = run_one(target, input) else {
        return input.to_vec();
    };
    let place = |m: &str| m.rsplit('(').next().unwrap_or("").to_string();
    let want = place(&first);
    let still = |c: &[u8]| matches!(run_one(target, c), Err(m) if place(&m) == want);
    let mut cur = input.to_vec();
    let mut chunk = cur.len().next_power_of_two();
    while chunk >= 1 {
        let mut at = 0;
        while at < cur.len() {
            let end = (at + chunk).min(cur.len());
            let mut c = cur.clone();
            c.drain(at..end);
            if still(&c) {
                cur = c;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    for i in 0..cur.len() {
        if cur[i] != 0 {
            let mut c = cur.clone();
            c[i] = 0;
            if still(&c) {
                cur = c;
            }
        }
    }
    cur
}
