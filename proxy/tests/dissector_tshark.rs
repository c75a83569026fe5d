//! The generated Wireshark dissector (`deploy/wireshark/slurm.lua`): the checked-in
//! file is what `fedproxy dissector` generates, and Debian's real tshark with it
//! reproduces, on every bundled capture (every `captures/*/*.pcap`), the message
//! counts of the capture's `decode.txt` and the fields of `fedproxy replay --json`
//! frame for frame, with no frame shown as malformed.
//!
//! tshark comes from `scripts/install-dissector-deps` (run by `make test`). Without
//! it the tshark test skips, except under CI=true, where it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fedproxy::dissector::{generate, CHECKED_IN};
use fedproxy_replay::json::frame_json;
use fedproxy_replay::replay_capture;
use serde_json::Value;
use tcpflow::read_capture;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn checked_in_dissector_is_freshly_generated() {
    let path = root().join(CHECKED_IN);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{CHECKED_IN}: {e}"));
    assert!(
        on_disk == generate("6817,6819"),
        "{CHECKED_IN} is stale: run `fedproxy dissector > {CHECKED_IN}`"
    );
}

/// Every bundled capture, whatever folder it is in.
fn all_captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in std::fs::read_dir(root().join("captures")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|x| x == "pcap") {
                v.push(f);
            }
        }
    }
    v.sort();
    v
}

/// What both sides must agree on for one message.
#[derive(Debug, PartialEq, Eq, Default, Clone)]
struct Seen {
    msg_type: String,
    msg_name: String,
    framing: String,
    version: Option<String>,
    body_length: Option<String>,
    auth: Option<String>,
    flags: Option<String>,
    job_ids: Vec<String>,
    sib_types: Vec<String>,
    fed_name: Option<String>,
    fed_cluster: Option<String>,
}

/// Connection (client port, server port) and direction.
type Key = (u16, u16, &'static str);

fn collect(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    match x {
                        Value::Array(a) => out.extend(a.iter().map(as_text)),
                        x => out.push(as_text(x)),
                    }
                } else {
                    collect(x, key, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, key, out)),
        _ => {}
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn first(v: &Value, key: &str) -> Option<String> {
    let mut out = Vec::new();
    collect(v, key, &mut out);
    out.into_iter().next()
}

/// `fedproxy replay --json` objects, per connection and direction.
fn from_replay(path: &Path) -> (BTreeMap<Key, Vec<Seen>>, Vec<u16>) {
    let mut by_key: BTreeMap<Key, Vec<Seen>> = BTreeMap::new();
    let mut ports = Vec::new();
    for c in replay_capture(read_capture(path).unwrap()) {
        ports.push(c.server.port());
        for f in &c.frames {
            let j = frame_json("x", &c, f);
            let body = j.get("body").cloned().unwrap_or(Value::Null);
            let mut sib_types = Vec::new();
            collect(&body, "sib_msg_type", &mut sib_types);
            let msg_type = j["msg_type"].as_u64().unwrap();
            let s = Seen {
                msg_type: msg_type.to_string(),
                msg_name: as_text(&j["msg_name"]),
                framing: as_text(&j["framing"]),
                version: j["version"].as_str().map(str::to_string),
                body_length: j.get("body_length").map(as_text),
                auth: j.get("auth").map(as_text),
                flags: j["flags"].as_str().map(str::to_string),
                job_ids: j
                    .get("job_ids")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(as_text).collect())
                    .unwrap_or_default(),
                sib_types,
                fed_name: (msg_type == 2050)
                    .then(|| body.pointer("/federation/name").and_then(Value::as_str))
                    .flatten()
                    .map(str::to_string),
                fed_cluster: (msg_type == 6500)
                    .then(|| body.pointer("/cluster_name").and_then(Value::as_str))
                    .flatten()
                    .map(str::to_string),
            };
            let dir = if f.dir.as_str() == "c2s" {
                "c2s"
            } else {
                "s2c"
            };
            by_key
                .entry((c.client.port(), c.server.port(), dir))
                .or_default()
                .push(s);
        }
    }
    ports.sort();
    ports.dedup();
    (by_key, ports)
}

struct TsharkRun {
    by_key: BTreeMap<Key, Vec<Seen>>,
    malformed: usize,
}

fn from_tshark(path: &Path, ports: &[u16], clients: &BTreeMap<(u16, u16), ()>) -> TsharkRun {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-X")
        .arg(format!("lua_script:{}", root().join(CHECKED_IN).display()))
        .arg("-o")
        .arg(format!("slurm.ports:{}", ports.join(",")))
        .arg("-r")
        .arg(path)
        .args(["-T", "json", "--no-duplicate-keys"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.to_lowercase().contains("lua: error"),
        "Lua error: {stderr}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let malformed = text.matches("_ws.malformed").count() + text.matches("_ws.lua.error").count();
    let packets: Value = serde_json::from_str(&text).unwrap();
    let mut by_key: BTreeMap<Key, Vec<Seen>> = BTreeMap::new();
    for p in packets.as_array().unwrap() {
        let layers = &p["_source"]["layers"];
        let Some(pdus) = layers.get("slurm") else {
            continue;
        };
        let sport: u16 = as_text(&layers["tcp"]["tcp.srcport"]).parse().unwrap();
        let dport: u16 = as_text(&layers["tcp"]["tcp.dstport"]).parse().unwrap();
        let key = if clients.contains_key(&(sport, dport)) {
            (sport, dport, "c2s")
        } else {
            (dport, sport, "s2c")
        };
        let pdus = match pdus {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        for pdu in pdus {
            let framing = first(&pdu, "slurm.framing").unwrap_or_default();
            let persist = framing != "normal" && first(&pdu, "slurm.body_length").is_none();
            let mut job_ids = Vec::new();
            collect(&pdu, "slurm.job_id", &mut job_ids);
            let mut sib_types = Vec::new();
            collect(&pdu, "slurm.sib.type", &mut sib_types);
            let s = Seen {
                msg_type: first(&pdu, "slurm.msg_type").unwrap_or_default(),
                msg_name: first(&pdu, "slurm.msg_name").unwrap_or_default(),
                framing,
                version: first(&pdu, "slurm.version"),
                body_length: first(&pdu, "slurm.body_length"),
                auth: first(&pdu, "slurm.auth.plugin"),
                flags: (!persist)
                    .then(|| first(&pdu, "slurm.flags.names"))
                    .flatten(),
                job_ids,
                sib_types,
                fed_name: first(&pdu, "slurm.fed.name"),
                fed_cluster: first(&pdu, "slurm.fed.cluster"),
            };
            by_key.entry(key).or_default().push(s);
        }
    }
    TsharkRun { by_key, malformed }
}

/// decode.txt's `msg_type counts (all frames, both directions)` block.
fn decode_txt_counts(path: &Path) -> Option<BTreeMap<String, usize>> {
    let text = std::fs::read_to_string(path.with_extension("decode.txt")).ok()?;
    let mut counts = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("== ") {
            inside = line.starts_with("== msg_type counts (all frames");
            continue;
        }
        if inside {
            let cols: Vec<&str> = line.split_whitespace().collect();
            counts.insert(cols[0].to_string(), cols[cols.len() - 1].parse().unwrap());
        }
    }
    Some(counts)
}

fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tshark missing under CI=true (scripts/install-dissector-deps installs it)"
        );
        eprintln!("SKIPPED: tshark not installed (scripts/install-dissector-deps)");
    }
    ok
}

#[test]
fn tshark_with_the_dissector_reproduces_replay_on_every_capture() {
    if !tshark_available() {
        return;
    }
    let captures = all_captures();
    assert!(captures.len() >= 16, "{} captures", captures.len());
    let mut frames = 0;
    let mut with_counts = 0;
    for path in &captures {
        let (want, ports) = from_replay(path);
        let clients: BTreeMap<(u16, u16), ()> =
            want.keys().map(|&(c, s, _)| ((c, s), ())).collect();
        let got = from_tshark(path, &ports, &clients);
        assert_eq!(got.malformed, 0, "{}: malformed frames", path.display());
        for (key, want_seq) in &want {
            let got_seq = got.by_key.get(key).cloned().unwrap_or_default();
            for (i, (w, g)) in want_seq.iter().zip(&got_seq).enumerate() {
                assert_eq!(g, w, "{} {key:?} message {i}", path.display());
            }
            assert_eq!(
                got_seq.len(),
                want_seq.len(),
                "{} {key:?}: message count",
                path.display()
            );
            frames += want_seq.len();
        }
        assert_eq!(
            got.by_key.len(),
            want.len(),
            "{}: connections with Slurm messages",
            path.display()
        );
        if let Some(counts) = decode_txt_counts(path) {
            let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
            for s in got.by_key.values().flatten() {
                *by_type.entry(s.msg_type.clone()).or_default() += 1;
            }
            assert_eq!(by_type, counts, "{}: counts vs decode.txt", path.display());
            with_counts += 1;
        }
    }
    assert!(frames > 500, "{frames} frames compared");
    assert!(with_counts >= 8, "{with_counts} captures with decode.txt");
}
