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
use slurm_codec::msg::Message;
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
        // inferred_version: offline replay learns a persist connection's release
        // from the rest of the capture file; a live proxy meeting the same bytes
        // without their handshake cannot, and claims none.
        for k in [
            "file",
            "conn",
            "ts",
            "client",
            "server",
            "summary",
            "from",
            "to",
            "auth_len",
            "inferred_version",
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

/// `fedproxy tap` (the binary) follows a running proxy: a federation handshake
/// relayed through it appears as conversation lines naming the opening cluster.
/// A subscriber that never reads while far more messages pass than its queue
/// holds: relaying goes on at its own pace, every byte and count as without a
/// tap, and the messages that did not fit are dropped, counted and announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_overflowing_its_queue_loses_only_tap_lines() {
    let caps = captures();
    let once: Vec<_> = caps
        .iter()
        .flat_map(|(cap, conns)| cap.connections.iter().zip(conns.iter()))
        .collect();
    // Every capture 40 times: > 20,000 messages, far more than the queue (1,024)
    // and the loopback socket buffers (several MB of JSON lines) can hold.
    let pairs: Vec<_> = (0..40).flat_map(|_| once.iter().copied()).collect();
    let messages: usize = pairs.iter().map(|(_, r)| r.frames.len()).sum();
    assert!(messages > 20 * 1024, "{messages} messages");

    let untapped = live::play(&pairs).await.unwrap();
    // Relaying must not wait for the subscriber: were it to, this would not end
    // (every connection's bytes are awaited on the far side).
    let (stalled, queued) = live::play_tapped(&pairs, Some(TapClient::Stalled))
        .await
        .unwrap();
    assert!(stalled.mismatches.is_empty(), "{:#?}", stalled.mismatches);
    assert_eq!(stalled.bytes, untapped.bytes);
    assert_eq!(stalled.proxy_counts, stalled.offline_counts);
    assert_eq!(stalled.decode_errors, 0);
    // Read late, the stream holds the queued start and tells what was lost.
    let dropped: u64 = queued
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("dropped").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    let delivered = queued.iter().filter(|l| !l.contains("\"dropped\"")).count();
    assert!(dropped > 0, "no drop announced in {} lines", queued.len());
    assert!(
        delivered < messages,
        "{delivered} of {messages} delivered to a subscriber that never read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedproxy_tap_prints_the_live_conversation() {
    use bytes::Bytes;
    use slurm_codec::auth::AuthSection;
    use slurm_codec::frame::{Body, Frame, FrameHead};
    use slurm_codec::header::Header;
    use slurm_codec::msg::{PersistInit, PersistRc, PersistType};
    use slurm_codec::msg_type::{MsgType, Namespace};
    use slurm_codec::wire::PackStr;
    use slurm_codec::{HeaderFlags, ProtocolVersion};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = server.local_addr().unwrap();
    let cfg = fedproxy::run::config::Config::from_toml(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"t\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n"
    ))
    .unwrap();
    let proxy = fedproxy::run::Proxy::start(cfg).await.unwrap();
    let mut tap = tokio::process::Command::new(env!("CARGO_BIN_EXE_fedproxy"))
        .args(["tap", "--admin", &proxy.admin_addr().to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(tap.stdout.take().unwrap()).lines();
    let since = std::time::Instant::now();
    while proxy.tap_subscribers() == 0 {
        assert!(
            since.elapsed().as_secs() < 10,
            "fedproxy tap never subscribed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let v = ProtocolVersion::V22_05;
    let init = Message::PersistInit(PersistInit {
        version: v,
        cluster_name: PackStr::from_text("beta"),
        persist_type: PersistType::Fed,
        port: 7817,
    });
    let mut body = Vec::new();
    init.encode(&mut body, v);
    let request = Frame {
        head: FrameHead::Normal {
            header: Header::new(
                v,
                HeaderFlags(0),
                MsgType::REQUEST_PERSIST_INIT,
                body.len() as u32,
            ),
            auth: AuthSection::Absent,
        },
        body: Body::Msg(Box::new(init)),
        trailing: Bytes::new(),
        body_error: None,
        inferred_version: None,
    };
    let reply = Frame {
        head: FrameHead::Persist {
            msg_type: MsgType::PERSIST_RC,
            ns: Namespace::Slurm,
            version: None,
        },
        body: Body::Msg(Box::new(Message::PersistRc(PersistRc {
            comment: PackStr::NULL,
            flags: 0,
            rc: 0,
            ret_info: v.0,
        }))),
        trailing: Bytes::new(),
        body_error: None,
        inferred_version: None,
    };
    let front = proxy.listener_addr("t").unwrap();
    let mut client = tokio::net::TcpStream::connect(front).await.unwrap();
    let (mut peer, _) = server.accept().await.unwrap();
    let req = request.to_bytes();
    client.write_all(&req).await.unwrap();
    let mut got = vec![0u8; req.len()];
    peer.read_exact(&mut got).await.unwrap();
    peer.write_all(&reply.to_bytes()).await.unwrap();
    let mut got = vec![0u8; reply.to_bytes().len()];
    client.read_exact(&mut got).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..2 {
        let l = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .expect("a tap line")
            .unwrap()
            .unwrap();
        seen.push(l);
    }
    assert!(
        seen[0].contains("beta(fed persist) -> ")
            && seen[0].contains("PERSIST_INIT beta FED port 7817"),
        "{seen:?}"
    );
    assert!(
        seen[1].contains("-> beta(fed persist)  PERSIST_RC 0 v22.05"),
        "{seen:?}"
    );
    drop(client);
    drop(peer);
    proxy.shutdown().await;
}
