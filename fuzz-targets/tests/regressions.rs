//! Inputs the fuzzers found that once panicked a target, kept so they never come
//! back. Each names the target, what was wrong, and the fix.

use fedproxy_fuzz_targets::{runner, target};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn passes(name: &str, hex: &str) {
    let t = target(name).expect("known target");
    if let Err(m) = runner::run_one(t, &unhex(hex)) {
        panic!("{name}: {m}");
    }
}

/// conn_beginning: after a decode error made a direction opaque, its bytes did
/// not advance the stream offset, so frames found after a capture gap carried
/// offsets short by every opaque byte (codec: `Connection::feed`).
#[test]
fn opaque_bytes_advance_the_stream_offset() {
    passes(
        "conn_beginning",
        "00 00 0006 4d0000000000 \
         00 001e 000000000000000000000000000000000000000000000000000000000000 \
         02 0013 00000000000000000000000000000000000000 \
         00 0004 00000006 00 0006 057900000000",
    );
}

/// The stable runner really catches a panicking target (the fuzz test is not
/// blind): a target that panics on one byte is found from an empty seed.
#[test]
fn the_runner_reports_a_panic_with_its_input() {
    fn panics_on_0x42(data: &[u8]) {
        assert!(!data.contains(&0x42), "found it");
    }
    let t = fedproxy_fuzz_targets::Target {
        name: "self_test",
        run: panics_on_0x42,
        seeds: fedproxy_fuzz_targets::seeds::SeedKind::Config,
    };
    let report = runner::run(&t, &[vec![0; 8]], std::time::Duration::from_secs(2), 7);
    let f = report.findings.first().expect("the runner finds the panic");
    assert!(f.message.contains("found it"), "{}", f.message);
    assert!(f.input.contains(&0x42));
}
