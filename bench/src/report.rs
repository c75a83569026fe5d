//! The JSON report (bench/results.json): medians per workload and path, ratios to
//! direct and to haproxy, idle-connection memory, the lab storm, the targets.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::cli::Args;
use crate::frames::Frames;
use crate::machine::machine;
use crate::paths::PathKind;
use crate::runner::Measurements;
use crate::stats::{median, r, spread};
use crate::workload::{Trial, Workload};

fn ratio(a: f64, b: f64) -> f64 {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        r(a / b, 3)
    } else {
        f64::NAN
    }
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// The report of one run, `a` as the run left it (idle connections capped,
/// other processes' load measured).
pub fn build(a: &Args, frames: &Frames, command: &str, m: &Measurements) -> Value {
    let Measurements {
        active,
        notes,
        results,
        idle,
        lab,
        versions,
        metrics,
        load_before,
        load_after,
        took,
        ..
    } = m;
    let mut workloads = serde_json::Map::new();
    // Medians per workload and path: (rate, mb_s, p50, p99).
    let mut med: BTreeMap<(Workload, PathKind), [f64; 4]> = BTreeMap::new();
    // Added p50 over direct: median of the per-repetition differences.
    let mut added: BTreeMap<(Workload, PathKind), f64> = BTreeMap::new();
    for (&w, per) in results {
        let mut wp = serde_json::Map::new();
        for (&p, trials) in per {
            let col = |f: fn(&Trial) -> f64| trials.iter().map(f).collect::<Vec<f64>>();
            let m = [
                median(&col(|t| t.rate)),
                median(&col(|t| t.mb_s)),
                median(&col(|t| t.p50_us)),
                median(&col(|t| t.p99_us)),
            ];
            med.insert((w, p), m);
            if p != PathKind::Direct {
                if let Some(d) = per.get(&PathKind::Direct) {
                    let diffs: Vec<f64> = trials
                        .iter()
                        .filter_map(|t| {
                            d.iter()
                                .find(|x| x.rep == t.rep)
                                .map(|x| t.p50_us - x.p50_us)
                        })
                        .collect();
                    added.insert((w, p), median(&diffs));
                }
            }
            let (rlo, rhi) = spread(&col(|t| t.rate));
            wp.insert(
                p.name().into(),
                json!({
                    "ops_per_s": num(r(m[0], 0)),
                    "mb_per_s": num(r(m[1], 2)),
                    "p50_us": num(r(m[2], 1)),
                    "p99_us": num(r(m[3], 1)),
                    "ops_per_s_min_max": [num(r(rlo, 0)), num(r(rhi, 0))],
                    "added_p50_us": num(r(added.get(&(w, p)).copied().unwrap_or(f64::NAN), 1)),
                    "proxy_cpu_ms_per_1000_ops": num(r(median(&col(|t| t.proxy_cpu_ms_per_kop)), 3)),
                    "errors": trials.iter().map(|t| t.errors).sum::<u64>(),
                    "trials": trials.iter().map(|t| json!({
                        "rep": t.rep, "ops": t.ops, "errors": t.errors, "seconds": r(t.elapsed_s, 3),
                        "ops_per_s": r(t.rate, 0), "mb_per_s": r(t.mb_s, 2),
                        "p50_us": num(r(t.p50_us, 1)), "p99_us": num(r(t.p99_us, 1)),
                        "proxy_cpu_ms_per_1000_ops": num(r(t.proxy_cpu_ms_per_kop, 3)),
                    })).collect::<Vec<_>>(),
                }),
            );
        }
        // Ratios: to direct and to haproxy, for each figure.
        let mut ratios = serde_json::Map::new();
        for &p in active {
            if let Some(m) = med.get(&(w, p)) {
                let d = med
                    .get(&(w, PathKind::Direct))
                    .copied()
                    .unwrap_or([f64::NAN; 4]);
                let h = med
                    .get(&(w, PathKind::Haproxy))
                    .copied()
                    .unwrap_or([f64::NAN; 4]);
                ratios.insert(
                    p.name().into(),
                    json!({
                        "ops_per_s_vs_direct": num(ratio(m[0], d[0])),
                        "ops_per_s_vs_haproxy": num(ratio(m[0], h[0])),
                        "mb_per_s_vs_direct": num(ratio(m[1], d[1])),
                        "mb_per_s_vs_haproxy": num(ratio(m[1], h[1])),
                        "p50_vs_direct": num(ratio(m[2], d[2])),
                        "p50_vs_haproxy": num(ratio(m[2], h[2])),
                        "p99_vs_direct": num(ratio(m[3], d[3])),
                        "p99_vs_haproxy": num(ratio(m[3], h[3])),
                    }),
                );
            }
        }
        workloads.insert(
            w.key(a),
            json!({"title": w.title(a), "paths": wp, "ratios": ratios}),
        );
    }

    let mut idle_j = serde_json::Map::new();
    let mut idle_med: BTreeMap<PathKind, f64> = BTreeMap::new();
    for (&p, v) in idle {
        let per: Vec<f64> = v
            .iter()
            .filter_map(|x| x["bytes_per_connection"].as_f64())
            .collect();
        let m = median(&per);
        idle_med.insert(p, m);
        idle_j.insert(
            p.name().into(),
            json!({"bytes_per_connection": num(r(m, 0)), "kib_per_connection": num(r(m / 1024.0, 2)), "trials": v}),
        );
    }

    // Targets (reported, not asserted).
    let f = PathKind::Fedproxy;
    let h = PathKind::Haproxy;
    let d = PathKind::Direct;
    let get =
        |w: Workload, p: PathKind, i: usize| med.get(&(w, p)).map(|m| m[i]).unwrap_or(f64::NAN);
    let add = |w: Workload, p: PathKind| added.get(&(w, p)).copied().unwrap_or(f64::NAN);
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => json!("met"),
        Some(false) => json!("missed"),
        None => json!("not measured"),
    };
    let cmp = |x: f64, y: f64, le: bool| -> Option<bool> {
        (x.is_finite() && y.is_finite()).then_some(if le { x <= y } else { x >= y })
    };
    let lab_ratio = lab
        .as_ref()
        .and_then(|l| l["throughput_ratio_to_direct"].as_f64())
        .unwrap_or(f64::NAN);
    let targets = vec![
        json!({"target": "one-shot, 1 client: fedproxy added p50 <= haproxy added p50 (aim: half)",
               "fedproxy_added_p50_us": num(r(add(Workload::Oneshot1, f), 1)), "haproxy_added_p50_us": num(r(add(Workload::Oneshot1, h), 1)),
               "ratio": num(ratio(add(Workload::Oneshot1, f), add(Workload::Oneshot1, h))),
               "verdict": verdict(cmp(add(Workload::Oneshot1, f), add(Workload::Oneshot1, h), true)),
               "aim_half": verdict(cmp(add(Workload::Oneshot1, f), 0.5 * add(Workload::Oneshot1, h), true))}),
        json!({"target": format!("one-shot, {} clients: fedproxy RPCs/s >= haproxy", a.clients),
               "fedproxy": num(r(get(Workload::OneshotN, f, 0), 0)), "haproxy": num(r(get(Workload::OneshotN, h, 0), 0)),
               "ratio": num(ratio(get(Workload::OneshotN, f, 0), get(Workload::OneshotN, h, 0))),
               "verdict": verdict(cmp(get(Workload::OneshotN, f, 0), get(Workload::OneshotN, h, 0), false))}),
        json!({"target": "persistent ping-pong: fedproxy msgs/s >= haproxy",
               "fedproxy": num(r(get(Workload::PingPong, f, 0), 0)), "haproxy": num(r(get(Workload::PingPong, h, 0), 0)),
               "ratio": num(ratio(get(Workload::PingPong, f, 0), get(Workload::PingPong, h, 0))),
               "verdict": verdict(cmp(get(Workload::PingPong, f, 0), get(Workload::PingPong, h, 0), false))}),
        json!({"target": format!("persistent pipelined ({} in flight): fedproxy MB/s >= 0.9 x direct", a.window),
               "fedproxy": num(r(get(Workload::Pipelined, f, 1), 2)), "direct": num(r(get(Workload::Pipelined, d, 1), 2)),
               "ratio": num(ratio(get(Workload::Pipelined, f, 1), get(Workload::Pipelined, d, 1))),
               "verdict": verdict(cmp(get(Workload::Pipelined, f, 1), 0.9 * get(Workload::Pipelined, d, 1), false))}),
        json!({"target": "idle connections: fedproxy <= 10 KiB per connection",
               "fedproxy_kib": num(r(idle_med.get(&f).copied().unwrap_or(f64::NAN) / 1024.0, 2)),
               "haproxy_kib": num(r(idle_med.get(&h).copied().unwrap_or(f64::NAN) / 1024.0, 2)),
               "verdict": verdict(cmp(idle_med.get(&f).copied().unwrap_or(f64::NAN), 10240.0, true))}),
        json!({"target": "real lab: sbatch storm through fedproxy >= 0.98 x direct throughput",
               "ratio": num(lab_ratio), "verdict": verdict(cmp(lab_ratio, 0.98, false))}),
    ];

    let mut paths_j = serde_json::Map::new();
    for p in PathKind::ALL {
        paths_j.insert(
            p.name().into(),
            json!({
                "measured": active.contains(&p),
                "note": notes.get(p.name()).cloned(),
                "how": match p {
                    PathKind::Direct => "client -> synthetic peer",
                    PathKind::Fedproxy => "client -> fedproxy run ([[route]] on loopback, [relay] observe = true, admin/metrics on) -> peer",
                    PathKind::Haproxy => "client -> haproxy -db (mode tcp, one frontend/backend, nbthread default) -> peer",
                    PathKind::FedproxyTap => "as fedproxy, with one `GET /tap` subscriber reading every message (JSON lines)",
                },
            }),
        );
    }

    let mut mach = machine(load_before, load_after);
    mach["other_processes_cores"] = num(r(a.other_load_cores, 2));
    json!({
        "schema": 1,
        "generated_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "command": command,
        "took_seconds": r(took.as_secs_f64(), 1),
        "machine": mach,
        "versions": versions,
        "settings": {
            "trial_ms": a.trial_ms, "reps": a.reps, "clients": a.clients, "window": a.window,
            "idle_conns": a.idle_conns, "idle_conns_requested": a.idle_requested, "rlimit_nofile": a.nofile, "idle_reps": a.idle_reps, "peer_workers": a.peer_workers,
            "order": "each repetition runs every workload on every path; the path order rotates every repetition and workload; figures are medians over repetitions; added p50 = median over repetitions of (path p50 - direct p50 of the same repetition)",
        },
        "frames": {
            "rpc": {"name": frames.rpc.name, "request_bytes": frames.rpc.request.len(), "reply_bytes": frames.rpc.reply.len()},
            "persist_init": {"name": frames.persist_init.name, "request_bytes": frames.persist_init.request.len(), "reply_bytes": frames.persist_init.reply.len()},
            "persist_msgs": frames.persist_msgs.iter().map(|e| json!({"name": e.name, "request_bytes": e.request.len(), "reply_bytes": e.reply.len()})).collect::<Vec<_>>(),
            "mb_per_s_counts": "request + reply bytes (length prefixes included), 1 MB = 10^6 bytes",
        },
        "paths": paths_j,
        "workloads": workloads,
        "idle_connections": idle_j,
        "lab": lab,
        "targets": targets,
        "fedproxy_metrics_sample": metrics,
    })
}
