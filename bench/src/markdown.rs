//! The generated Markdown section of README.md (Performance), from the report.

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

fn fmt(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "–".into(),
    }
}

/// The generated Markdown section.
pub fn markdown(rep: &Value) -> String {
    let mut s = String::new();
    let m = &rep["machine"];
    s += &format!(
        "Measured by `{}` on {} cores ({}), {} GiB, Linux {}; load average {} before, {} after; other processes used {} cores on average during the run; {}; git {}.\n\n",
        rep["command"].as_str().unwrap_or(""),
        m["cores"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["loadavg_before"].as_str().unwrap_or("?"),
        m["loadavg_after"].as_str().unwrap_or("?"),
        fmt(&m["other_processes_cores"], 2),
        rep["versions"]["haproxy"].as_str().unwrap_or("haproxy ?"),
        rep["versions"]["git_commit"].as_str().unwrap_or("?"),
    );
    let st = &rep["settings"];
    s += &format!(
        "Synthetic Slurm peer answering captured frames; clients, peer and proxy share the machine's cores. \
         {} repetitions × {} ms trials, paths interleaved (order rotated every trial); medians. \
         Ratios: fedproxy or haproxy over direct (×direct) and fedproxy over haproxy (×haproxy); for latency lower is better, for rates higher is better.\n\n",
        st["reps"], st["trial_ms"]
    );
    for (p, v) in rep["paths"].as_object().unwrap() {
        if let Some(n) = v["note"].as_str() {
            s += &format!("**{p}**: {n}\n\n");
        }
    }
    s += "| workload | path | rate (/s) | MB/s | p50 µs | p99 µs | added p50 µs | rate ×direct | rate ×haproxy | p50 ×direct | p50 ×haproxy | proxy CPU ms/1000 ops |\n";
    s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (_, w) in rep["workloads"].as_object().unwrap() {
        for (p, v) in w["paths"].as_object().unwrap() {
            let ra = &w["ratios"][p];
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                w["title"].as_str().unwrap_or(""),
                p,
                fmt(&v["ops_per_s"], 0),
                fmt(&v["mb_per_s"], 2),
                fmt(&v["p50_us"], 1),
                fmt(&v["p99_us"], 1),
                fmt(&v["added_p50_us"], 1),
                fmt(&ra["ops_per_s_vs_direct"], 2),
                fmt(&ra["ops_per_s_vs_haproxy"], 2),
                fmt(&ra["p50_vs_direct"], 2),
                fmt(&ra["p50_vs_haproxy"], 2),
                fmt(&v["proxy_cpu_ms_per_1000_ops"], 2),
            );
        }
    }
    s += "\n";
    if let Some(idle) = rep["idle_connections"]
        .as_object()
        .filter(|o| !o.is_empty())
    {
        s += &format!("Idle connections ({} persistent federation connections, PERSIST_INIT → PERSIST_RC each, then idle; proxy VmRSS after − before, fresh proxy per trial):\n\n", st["idle_conns"]);
        if st["idle_conns"] != st["idle_conns_requested"] {
            s += &format!("({} requested; RLIMIT_NOFILE's hard limit here is {} and cannot be raised without CAP_SYS_RESOURCE, and a proxy holds 2 descriptors per connection.)\n\n", st["idle_conns_requested"], st["rlimit_nofile"]);
        }
        s += "| proxy | KiB per connection | RSS before → after (KiB), each trial |\n|---|---:|---|\n";
        for (p, v) in idle {
            let trials: Vec<String> = v["trials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{} → {}", t["rss_before_kib"], t["rss_after_kib"]))
                .collect();
            s += &format!(
                "| {p} | {} | {} |\n",
                fmt(&v["kib_per_connection"], 2),
                trials.join("; ")
            );
        }
        s += "\n";
    }
    if let Some(l) = rep["lab"].as_object() {
        if let Some(sk) = l.get("skipped") {
            s += &format!("Real lab: skipped ({sk}).\n\n");
        } else {
            s += &format!(
                "Real lab ({} federated `sbatch` on alpha): {} s direct, {} s through fedproxy: throughput ×{} of direct.\n\n",
                l["jobs"],
                fmt(&l["direct_seconds"], 2),
                fmt(&l["fedproxy_seconds"], 2),
                fmt(&l["throughput_ratio_to_direct"], 3)
            );
        }
    }
    s += "| target | fedproxy | reference | ratio | verdict |\n|---|---:|---:|---:|---|\n";
    for t in rep["targets"].as_array().unwrap() {
        let o = t.as_object().unwrap();
        let pick = |keys: &[&str]| -> String {
            keys.iter()
                .find_map(|k| {
                    o.get(*k)
                        .filter(|v| !v.is_null())
                        .map(|v| format!("{} ({})", fmt(v, 2), k))
                })
                .unwrap_or_else(|| "–".into())
        };
        let mut verdict = o["verdict"].as_str().unwrap_or("").to_string();
        if let Some(h) = o.get("aim_half").and_then(|v| v.as_str()) {
            verdict += &format!(" (aim ≤ half: {h})");
        }
        s += &format!(
            "| {} | {} | {} | {} | {} |\n",
            o["target"].as_str().unwrap_or(""),
            pick(&["fedproxy", "fedproxy_added_p50_us", "fedproxy_kib"]),
            pick(&["haproxy", "haproxy_added_p50_us", "direct", "haproxy_kib"]),
            o.get("ratio")
                .map(|v| fmt(v, 3))
                .unwrap_or_else(|| "–".into()),
            verdict
        );
    }
    s
}

const BEGIN: &str =
    "<!-- bench:begin (generated by fedproxy-bench; edits inside are overwritten) -->";
const END: &str = "<!-- bench:end -->";

/// Replaces the generated part of the Markdown file (creates the file when missing).
pub fn write_markdown(path: &Path, body: &str) -> Result<()> {
    let old = fs::read_to_string(path).unwrap_or_default();
    let gen = format!("{BEGIN}\n{body}{END}");
    let new = match (old.find("<!-- bench:begin"), old.find(END)) {
        (Some(b), Some(e)) if e > b => format!("{}{gen}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("## Performance\n\n{gen}\n"),
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ok();
    }
    fs::write(path, new)?;
    Ok(())
}
