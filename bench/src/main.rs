//! `fedproxy-bench`: direct vs `fedproxy run` vs haproxy (TCP mode) on a
//! synthetic Slurm peer that answers captured requests with captured replies.
//! The three paths are measured in one run, interleaved (the order rotates
//! every repetition); every figure is the median over the repetitions.
//! Writes bench/results.json and the generated part of README.md (Performance).

use std::fs;

use anyhow::{bail, Context, Result};
use clap::Parser;
use fedproxy_bench::cli::Args;
use fedproxy_bench::frames::{default_capture_dir, Frames};
use fedproxy_bench::markdown::{markdown, write_markdown};
use fedproxy_bench::paths::PathKind;
use fedproxy_bench::workload::Workload;
use fedproxy_bench::{report, runner};

fn main() -> Result<()> {
    let mut a = Args::parse();
    a.apply_quick();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let want: Vec<PathKind> = a
        .paths
        .split(',')
        .map(|s| PathKind::parse(s.trim()).with_context(|| format!("unknown path {s:?}")))
        .collect::<Result<_>>()?;
    let workloads: Vec<Workload> = a
        .workloads
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Workload::parse(s.trim()).with_context(|| format!("unknown workload {s:?}")))
        .collect::<Result<_>>()?;
    if !want.contains(&PathKind::Direct) {
        bail!("the direct path is the baseline: keep it in --paths");
    }
    let frames = Frames::load(&a.captures.clone().unwrap_or_else(default_capture_dir))?;
    if a.peer_only {
        return runner::peer_only(&frames);
    }
    let m = runner::run(&mut a, &frames, &want, &workloads)?;
    let report = report::build(&a, &frames, &command, &m);
    if let Some(dir) = a.out.parent() {
        fs::create_dir_all(dir).ok();
    }
    fs::write(&a.out, serde_json::to_string_pretty(&report)? + "\n")?;
    write_markdown(&a.markdown, &markdown(&report))?;
    eprintln!(
        "fedproxy-bench: wrote {} and {}",
        a.out.display(),
        a.markdown.display()
    );
    if !a.keep_tmp {
        let _ = fs::remove_dir_all(&m.tmp);
    }
    Ok(())
}
