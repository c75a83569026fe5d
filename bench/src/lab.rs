//! The real lab: an sbatch storm on a federated cluster, without and with
//! fedproxy (`--lab`; needs scripts/lab).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::Args;
use crate::stats::{median, r};

/// The real lab: `lab_jobs` sbatch submissions on alpha (a federated cluster),
/// without and with fedproxy; wall time of each storm.
pub fn lab_storm(a: &Args) -> Value {
    let lab = Path::new("scripts/lab");
    if !lab.exists() {
        return json!({"skipped": "scripts/lab not found"});
    }
    let storm = format!(
        "for i in $(seq {}); do sbatch --parsable -o /dev/null -e /dev/null --wrap true >/dev/null || exit 1; done",
        a.lab_jobs
    );
    let mut runs = Vec::new();
    for rep in 0..a.lab_reps {
        for mode in ["no-proxy", "proxy"] {
            let mut up = Command::new(lab);
            up.arg("up");
            if mode == "no-proxy" {
                up.arg("--no-proxy");
            }
            let res = (|| -> Result<f64> {
                run_ok(&mut up)?;
                run_ok(Command::new(lab).args(["wait-fed", "180"]))?;
                let t = Instant::now();
                run_ok(Command::new(lab).args(["on", "alpha", "bash", "-c", &storm]))?;
                let s = t.elapsed().as_secs_f64();
                let _ = Command::new(lab)
                    .args(["on", "alpha", "scancel", "--user=root"])
                    .status();
                Ok(s)
            })();
            match res {
                Ok(s) => {
                    eprintln!("lab rep {rep} {mode}: {} sbatch in {s:.2} s", a.lab_jobs);
                    runs.push(json!({"rep": rep, "mode": mode, "seconds": r(s, 3)}));
                }
                Err(e) => {
                    eprintln!("lab rep {rep} {mode}: failed: {e:#}");
                    runs.push(json!({"rep": rep, "mode": mode, "error": format!("{e:#}")}));
                }
            }
        }
    }
    let secs = |m: &str| -> Vec<f64> {
        runs.iter()
            .filter(|v| v["mode"] == m)
            .filter_map(|v| v["seconds"].as_f64())
            .collect()
    };
    let (d, f) = (median(&secs("no-proxy")), median(&secs("proxy")));
    json!({
        "jobs": a.lab_jobs,
        "runs": runs,
        "direct_seconds": r(d, 3),
        "fedproxy_seconds": r(f, 3),
        "throughput_ratio_to_direct": r(d / f, 3),
    })
}

fn run_ok(c: &mut Command) -> Result<()> {
    let out = c.output().with_context(|| format!("{c:?}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "{c:?} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}
