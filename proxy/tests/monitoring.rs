//! The shipped monitoring: Prometheus alert rules (`promtool check rules` and
//! `promtool test rules`, a firing and a silent test for every alert) and the
//! Grafana dashboard (every PromQL expression parsed by promtool as a recording
//! rule; every metric it or the alerts name is in README.md's metrics tables).
//! promtool comes from Debian's `prometheus` package (scripts/install-build-deps);
//! without it the test is skipped, except under CI=true where it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool() -> Option<PathBuf> {
    let p = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if p.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "promtool not installed (Debian package prometheus; scripts/install-build-deps)"
            );
        }
        eprintln!("SKIP: promtool not installed");
    }
    p
}

fn run_promtool(tool: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let o = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Metric names in README.md's tables (rows starting with "| `fedproxy_").
fn documented_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `fedproxy_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("fedproxy_{n}"))
        .collect()
}

/// `fedproxy_*` names in a text; histogram series names map to their family.
fn metric_names(text: &str, documented: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("fedproxy_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| documented.contains(*f))
            .unwrap_or(name);
        out.insert(family.to_string());
        rest = &tail[end..];
    }
    out
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

/// Grafana's variables replaced by values promtool can parse.
fn concrete(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$instance", ".*")
}

/// A rules file with one recording rule per expression.
fn as_recording_rules(exprs: &[String]) -> String {
    let mut s = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        s.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    s
}

#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    let Some(tool) = promtool() else { return };
    let dir = repo().join("deploy/prometheus");
    let (ok, out) = run_promtool(&tool, &["check", "rules", "fedproxy-alerts.yml"], &dir);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = run_promtool(&tool, &["test", "rules", "fedproxy-alerts.test.yml"], &dir);
    assert!(ok, "promtool test rules:\n{out}");
}

#[test]
fn every_alert_has_a_firing_and_a_silent_test() {
    let dir = repo().join("deploy/prometheus");
    let rules = std::fs::read_to_string(dir.join("fedproxy-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("fedproxy-alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7, "{alerts:?}");
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for a in alerts {
        let mut firing = false;
        let mut silent = false;
        for (i, l) in lines.iter().enumerate() {
            if *l == format!("alertname: {a}") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => silent = true,
                    Some(&"exp_alerts:") => firing = true,
                    other => panic!("{a}: unexpected line after alertname: {other:?}"),
                }
            }
        }
        assert!(
            firing && silent,
            "{a}: firing test {firing}, silent test {silent}"
        );
    }
}

#[test]
fn alerts_name_only_documented_metrics() {
    let documented = documented_metrics();
    assert!(documented.len() > 15, "{documented:?}");
    let rules =
        std::fs::read_to_string(repo().join("deploy/prometheus/fedproxy-alerts.yml")).unwrap();
    let exprs: String = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.contains("description:"))
        .collect::<Vec<_>>()
        .join("\n");
    for m in metric_names(&exprs, &documented) {
        assert!(
            documented.contains(&m),
            "alert rules name {m}, not in README's metrics tables"
        );
    }
}

#[test]
fn dashboard_expressions_parse_and_name_documented_metrics() {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/fedproxy.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 15, "only {} expressions found", exprs.len());
    let documented = documented_metrics();
    let mut named = BTreeSet::new();
    for e in &exprs {
        named.extend(metric_names(e, &documented));
    }
    named.extend(metric_names(&text, &documented));
    for m in &named {
        assert!(
            documented.contains(m),
            "dashboard names {m}, not in README's metrics tables"
        );
    }
    // the panels the operations issue asks for
    for m in [
        "fedproxy_messages_total",
        "fedproxy_federation_peer_connected",
        "fedproxy_sib_messages_total",
        "fedproxy_decode_errors_total",
        "fedproxy_rpc_duration_seconds",
        "fedproxy_bytes_total",
        "fedproxy_connections_active",
        "fedproxy_legacy_translations_total",
    ] {
        assert!(named.contains(m), "no panel uses {m}");
    }

    let Some(tool) = promtool() else { return };
    let dir = std::env::temp_dir().join(format!("fedproxy-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let concrete: Vec<String> = exprs.iter().map(|e| concrete(e)).collect();
    std::fs::write(dir.join("dashboard.yml"), as_recording_rules(&concrete)).unwrap();
    let (ok, out) = run_promtool(&tool, &["check", "rules", "dashboard.yml"], &dir);
    assert!(
        ok,
        "promtool check rules on the dashboard's expressions:\n{out}"
    );
    assert!(
        out.contains(&format!("{} rules found", exprs.len())),
        "{out}"
    );
    // the check can fail: a broken expression is refused
    std::fs::write(
        dir.join("broken.yml"),
        as_recording_rules(&["sum by (le (rate(fedproxy_bytes_total[5m]))".to_string()]),
    )
    .unwrap();
    let (ok, _) = run_promtool(&tool, &["check", "rules", "broken.yml"], &dir);
    assert!(!ok, "promtool accepted a broken expression");
    let _ = std::fs::remove_dir_all(&dir);
}
