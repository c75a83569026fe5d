//! Bounded fuzzing on the stable toolchain, part of `make test`: every target of
//! `fuzz/` runs for FUZZ_TEST_SECS (default 15) on mutations of its seeds. Any
//! panic fails the test and names the saved input (make it a regression test in
//! tests/regressions.rs, then fix it). FUZZ_SEED fixes the mutation sequence.

use std::sync::OnceLock;
use std::time::Duration;

use fedproxy_fuzz_targets::runner;
use fedproxy_fuzz_targets::seeds::Seeds;

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(Seeds::load)
}

fn budget() -> Duration {
    let secs = std::env::var("FUZZ_TEST_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(15.0);
    Duration::from_secs_f64(secs)
}

fn rng_seed(name: &str) -> u64 {
    let base = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    name.bytes().fold(base, |h, b| h.rotate_left(5) ^ b as u64)
}

fn fuzz(name: &str) {
    let target = fedproxy_fuzz_targets::target(name).expect("a known target");
    let seeds = seeds().get(target.seeds);
    assert!(
        !seeds.is_empty(),
        "{name}: no seeds found in the repository"
    );
    let seed = rng_seed(name);
    let report = runner::run(target, seeds, budget(), seed);
    println!("{report} (FUZZ_SEED base for this target: {seed})");
    assert!(
        report.execs as usize > seeds.len(),
        "{name}: no mutation ran"
    );
    assert!(
        report.slowest < Duration::from_secs(5),
        "{name}: one input took {:?}",
        report.slowest
    );
    if let Some(f) = report.findings.first() {
        panic!(
            "{name}: {} finding(s); first: {} — input saved at {:?}",
            report.findings.len(),
            f.message,
            f.saved
        );
    }
}

#[test]
fn conn_beginning() {
    fuzz("conn_beginning");
}

#[test]
fn conn_mid_stream() {
    fuzz("conn_mid_stream");
}

#[test]
fn conn_accepted() {
    fuzz("conn_accepted");
}

#[test]
fn conn_persist() {
    fuzz("conn_persist");
}

#[test]
fn frame_decode() {
    fuzz("frame_decode");
}

#[test]
fn typed_body() {
    fuzz("typed_body");
}

#[test]
fn capture_reader() {
    fuzz("capture_reader");
}

#[test]
fn legacy_translator() {
    fuzz("legacy_translator");
}

#[test]
fn config_parser() {
    fuzz("config_parser");
}

#[test]
fn every_target_has_a_test_here_and_a_cargo_fuzz_binary() {
    let here = include_str!("bounded_fuzz.rs");
    let root = fedproxy_fuzz_targets::seeds::repo_root();
    for t in fedproxy_fuzz_targets::TARGETS {
        assert!(
            here.contains(&format!("fn {}()", t.name)),
            "{} has no test",
            t.name
        );
        let bin = root
            .join("fuzz/fuzz_targets")
            .join(format!("{}.rs", t.name));
        assert!(bin.exists(), "{} has no cargo-fuzz target", bin.display());
    }
}
