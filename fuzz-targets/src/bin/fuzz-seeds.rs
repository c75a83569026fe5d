//! Writes the cargo-fuzz corpora: `fuzz-seeds DIR` creates `DIR/<target>/seed-*`
//! from the repository's captures and fixtures (see `seeds`).

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: fuzz-seeds CORPUS_DIR");
        std::process::exit(2);
    };
    let seeds = fedproxy_fuzz_targets::seeds::Seeds::load();
    match seeds.write_corpora(dir.as_ref()) {
        Ok(n) => println!("{n} seed files written"),
        Err(e) => {
            eprintln!("fuzz-seeds: {e}");
            std::process::exit(1);
        }
    }
}
