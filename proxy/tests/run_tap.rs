//! The live tap (`GET /tap`, `fedproxy tap`): every bundled capture played through
//! a running proxy (as `replay --live` does) while a subscriber reads `/tap`; the
//! stream must equal the offline decode message for message. A subscriber that
//! never reads must not change what is relayed.

use std::collections::BTreeMap;
use std::path::Path;

use fedproxy::replay::live::{self, TapClient};
use fedproxy::replay::replay_connections;
use fedproxy_replay::json::frame_json;
use fedproxy_replay::ReplayedConnection;
use serde_json::Value;
use tcpflow::{read_capture, Capture};

fn captures() -> Vec<(Capture, Vec<ReplayedConnection>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut out = Vec::new();
    for dir in ["slurm-22.05", "legacy-flurm", "spec-lab"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
            .collect();
        files.sort();
        for f in files {
            let mut cap = read_capture(&f).unwrap();
            let conns = replay_connections(&mut cap);
            out.push((cap, conns));
        }
    }
    out
}

/// The fields that describe the message itself (not where or when it was seen).
fn message_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "file", "conn", "ts", "client", "server", "summary", "from", "to", "auth_len",
        ] {
            o.remove(k);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tap_streams_what_the_offline_decode_finds() {
    let caps = captures();
    let pairs: Vec<_> = caps
        .iter()
        .flat_map(|(cap, conns)| cap.connections.iter().zip(conns.iter()))
        .collect();
    let (report, lines) = live::play_tapped(&pairs, Some(TapClient::Reading))
        .await
        .unwrap();
    assert!(report.ok(), "{:#?}", report.mismatches);

    let objects: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        objects.iter().all(|o| o.get("dropped").is_none()),
        "a reading subscriber lost messages"
    );
    // The proxy numbers connections in accept order = play order.
    let mut live_by_conn: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for o in &objects {
        live_by_conn
            .entry(o["conn"].as_u64().unwrap())
            .or_default()
            .push(o);
        assert!(o["summary"].as_str().is_some_and(|s| !s.is_empty()));
        let auth = o.get("auth").and_then(Value::as_str).unwrap_or("");
        assert!(!auth.contains("MUNGE:"), "credential leaked: {o}");
    }
    let offline: Vec<Vec<Value>> = pairs
        .iter()
        .map(|(_, r)| r.frames.iter().map(|f| frame_json("x", r, f)).collect())
        .filter(|v: &Vec<Value>| !v.is_empty())
        .collect();
    assert_eq!(
        live_by_conn.len(),
        offline.len(),
        "connections with messages"
    );
    let mut compared = 0;
    for (want, got) in offline.iter().zip(live_by_conn.values()) {
        for dir in ["c2s", "s2c"] {
            let w: Vec<Value> = want
                .iter()
                .filter(|o| o["dir"] == dir)
                .map(message_fields)
                .collect();
            let g: Vec<Value> = got
                .iter()
                .filter(|o| o["dir"] == dir)
                .map(|o| message_fields(o))
                .collect();
            assert_eq!(g.len(), w.len(), "{dir} message count");
            for (g, w) in g.iter().zip(&w) {
                assert_eq!(g, w);
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 521);
    let persist = objects
        .iter()
        .find(|o| o["msg_name"] == "REQUEST_CTLD_MULT_MSG" && o["from"] == "alpha(fed persist)");
    assert!(
        persist.is_some_and(|o| o["summary"]
            .as_str()
            .unwrap()
            .starts_with("CTLD_MULT_MSG [SIB_MSG")),
        "no conversation line for alpha's federation connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_changes_nothing_relayed() {
    let caps = captures();
    let pairs: Vec<_> = caps
        .iter()
        .flat_map(|(cap, conns)| cap.connections.iter().zip(conns.iter()))
        .collect();
    let (report, queued) = live::play_tapped(&pairs, Some(TapClient::Stalled))
        .await
        .unwrap();
    // Every byte arrived unchanged on both sides, every message counted.
    assert!(report.mismatches.is_empty(), "{:#?}", report.mismatches);
    assert_eq!(report.proxy_counts, report.offline_counts);
    assert_eq!(report.bytes, live::play(&pairs).await.unwrap().bytes);
    // What it finds afterwards is the start of the stream (and any drop notice).
    assert!(!queued.is_empty());
}
