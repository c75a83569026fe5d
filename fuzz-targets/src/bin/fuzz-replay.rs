//! `fuzz-replay TARGET FILE...`: runs saved inputs through a target; for one that
//! panics, prints the message and a minimized input as hex (for a regression test).

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), files) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: fuzz-replay TARGET FILE...");
        std::process::exit(2);
    };
    let Some(target) = fedproxy_fuzz_targets::target(&name) else {
        eprintln!("unknown target {name}");
        std::process::exit(2);
    };
    let mut failed = false;
    for f in files {
        let input = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        match fedproxy_fuzz_targets::runner::run_one(target, &input) {
            Ok(()) => println!("{f}: ok"),
            Err(m) => {
                failed = true;
                let min = fedproxy_fuzz_targets::runner::minimize(target, &input);
                let hex: String = min.iter().map(|b| format!("{b:02x}")).collect();
                println!("{f}: PANIC {m}\n  minimized ({} bytes): {hex}", min.len());
            }
        }
    }
    std::process::exit(failed as i32);
}
