//! Real Slurm traffic through the proxy: every TCP connection of a capture is
//! replayed through a static route (client and upstream play their captured
//! parts, each waiting for what the other side sent before), and `/metrics` must
//! count the messages by type and connection kind, with no decode error. Garbage
//! is relayed unchanged and counted as a decode error, without affecting others.

mod run_support;

use std::path::PathBuf;
use std::time::Duration;

use run_support::*;
use slurm_codec::Direction;
use tcpflow::{read_capture, TcpConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../captures/slurm-22.05")
        .join(name)
}

/// One side of a replayed connection: writes its segments in capture order,
/// each only once it has received everything the other side sent before it.
async fn play(sock: TcpStream, conn: TcpConnection, me: Direction) -> Vec<u8> {
    let (mut r, mut w) = sock.into_split();
    let (tx, mut rx) = watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            tx.send_replace(got.len());
        }
    });
    let mut other_before = 0usize;
    for seg in &conn.segments {
        if seg.dir == me {
            let need = other_before;
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|&n| n >= need))
                .await
                .expect("peer's earlier bytes arrive")
                .ok();
            w.write_all(&seg.data).await.expect("write");
        } else {
            other_before += seg.data.len();
        }
    }
    w.shutdown().await.expect("half-close");
    reader.await.unwrap()
}

/// Replays every complete connection of `file` through `route`, checking that
/// each side received exactly the other side's captured stream. Returns the
/// number of connections replayed.
async fn replay(file: &str, route: std::net::SocketAddr, upstream: &TcpListener) -> usize {
    let cap = read_capture(&capture(file)).expect("capture reads");
    let mut n = 0;
    // Every connection without a hole. Those opened before the capture started
    // are replayed from their first captured byte: a persistent connection then
    // starts with persist frames, which the proxy's codec recognises.
    for conn in cap.connections.into_iter().filter(|c| c.gaps.is_empty()) {
        let c2s = conn.stream(Direction::ClientToServer);
        let s2c = conn.stream(Direction::ServerToClient);
        let client = TcpStream::connect(route).await.unwrap();
        let (server, _) = upstream.accept().await.unwrap();
        let (at_server, at_client) = tokio::join!(
            play(server, conn.clone(), Direction::ServerToClient),
            play(client, conn.clone(), Direction::ClientToServer),
        );
        assert!(
            at_server == c2s,
            "{file} #{}: upstream got other bytes than the client sent",
            conn.id
        );
        assert!(
            at_client == s2c,
            "{file} #{}: client got other bytes than the upstream sent",
            conn.id
        );
        n += 1;
    }
    n
}

fn messages(text: &str, dir: &str, t: &str, kind: &str) -> f64 {
    metric(
        text,
        "fedproxy_messages_total",
        &[("direction", dir), ("msg_type", t), ("conn_kind", kind)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_startup_capture_is_counted_by_type_and_kind() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(upstream.local_addr().unwrap(), "").await;
    let route = proxy.listener_addr("r").unwrap();
    let n = replay("fed_startup.pcap", route, &upstream).await;
    assert_eq!(
        n, 20,
        "fed_startup.pcap has 20 TCP connections, all replayable"
    );
    let text = wait_closed(&proxy, n).await;

    // Counts from captures/slurm-22.05/fed_startup.decode.txt (the lab's own decoder).
    assert_eq!(
        metric(&text, "fedproxy_decode_errors_total", &[]),
        0.0,
        "{text}"
    );
    assert_eq!(messages(&text, "c2s", "REQUEST_FED_INFO", "oneshot"), 8.0);
    assert_eq!(messages(&text, "s2c", "RESPONSE_FED_INFO", "oneshot"), 8.0);
    assert_eq!(
        messages(&text, "c2s", "REQUEST_PERSIST_INIT", "fed_persist"),
        2.0
    );
    assert_eq!(
        messages(&text, "c2s", "REQUEST_PERSIST_INIT", "dbd_persist"),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "fedproxy_messages_total",
            &[("msg_type", "PERSIST_RC")]
        ),
        5.0
    );
    assert_eq!(messages(&text, "s2c", "PERSIST_RC", "fed_persist"), 2.0);
    assert_eq!(
        messages(&text, "c2s", "REQUEST_CTLD_MULT_MSG", "fed_persist"),
        2.0
    );
    assert_eq!(
        messages(&text, "s2c", "RESPONSE_CTLD_MULT_MSG", "fed_persist"),
        2.0
    );
    assert_eq!(
        messages(&text, "c2s", "ACCOUNTING_UPDATE_MSG", "oneshot"),
        1.0
    );
    assert_eq!(
        messages(&text, "c2s", "DBD_REGISTER_CTLD", "dbd_persist"),
        1.0
    );
    assert_eq!(
        metric(&text, "fedproxy_messages_total", &[("msg_type", "UNKNOWN")]),
        0.0
    );
    // decode.txt lists 50 frames in all.
    assert_eq!(metric(&text, "fedproxy_messages_total", &[]), 50.0);

    // Connection kinds and federation peers (alpha and beta opened one FED
    // connection each; alpha's slurmctld also opened its DBD connection).
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_closed_total",
            &[("conn_kind", "fed_persist")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_closed_total",
            &[("conn_kind", "dbd_persist")]
        ),
        1.0
    );
    assert_eq!(metric(&text, "fedproxy_connections_active", &[]), 0.0);
    for cluster in ["alpha", "beta"] {
        let peer = samples(&text).into_iter().find(|(n, l, _)| {
            n == "fedproxy_federation_peer_connected"
                && l.get("cluster").map(String::as_str) == Some(cluster)
                && l.get("persist_type").map(String::as_str) == Some("FED")
        });
        let (_, labels, value) =
            peer.unwrap_or_else(|| panic!("no peer series for {cluster}\n{text}"));
        assert_eq!(value, 0.0, "connection closed: gauge back to 0");
        assert_eq!(labels["version"], "22.05");
        assert_eq!(labels["listener"], "r");
    }
    // One request → reply timing per one-shot RPC and per PERSIST_INIT.
    let rpcs = metric(
        &text,
        "fedproxy_rpc_duration_seconds_count",
        &[("msg_type", "REQUEST_FED_INFO")],
    );
    assert_eq!(rpcs, 8.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_submit_counts_sib_messages_inside_ctld_mult_msg() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(upstream.local_addr().unwrap(), "").await;
    let n = replay(
        "fed_submit.pcap",
        proxy.listener_addr("r").unwrap(),
        &upstream,
    )
    .await;
    let text = wait_closed(&proxy, n).await;
    // From captures/slurm-22.05/fed_submit.decode.txt.
    assert_eq!(
        metric(&text, "fedproxy_decode_errors_total", &[]),
        0.0,
        "{text}"
    );
    assert_eq!(
        messages(&text, "c2s", "REQUEST_CTLD_MULT_MSG", "fed_persist"),
        2.0,
        "{text}"
    );
    assert_eq!(
        messages(&text, "s2c", "RESPONSE_CTLD_MULT_MSG", "fed_persist"),
        2.0
    );
    assert_eq!(
        messages(&text, "c2s", "REQUEST_SUBMIT_BATCH_JOB", "oneshot"),
        1.0
    );
    assert_eq!(
        messages(&text, "c2s", "REQUEST_JOB_INFO_SINGLE", "oneshot"),
        14.0
    );
    let sib = |t: &str| {
        metric(
            &text,
            "fedproxy_sib_messages_total",
            &[("direction", "c2s"), ("sib_msg_type", t)],
        )
    };
    assert_eq!(sib("FED_JOB_SUBMIT_BATCH"), 1.0, "{text}");
    assert_eq!(sib("FED_JOB_COMPLETE"), 1.0);
    assert_eq!(metric(&text, "fedproxy_sib_messages_total", &[]), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_gauge_is_one_while_the_persistent_connection_is_open() {
    // Replays only the PERSIST_INIT/PERSIST_RC of alpha's fed connection and
    // keeps it open: the gauge reads 1, then 0 once it closes.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(upstream.local_addr().unwrap(), "").await;
    let cap = read_capture(&capture("fed_startup.pcap")).unwrap();
    let fed = cap
        .connections
        .iter()
        .find(|c| {
            let s = c.stream(Direction::ClientToServer);
            // version 0x2600, flags, msg_type 6500 (REQUEST_PERSIST_INIT)
            s.len() > 10 && s[8..10] == [0x19, 0x64] && s.windows(5).any(|w| w == b"alpha")
        })
        .expect("alpha's PERSIST_INIT connection");
    let init_len = 4 + u32::from_be_bytes(
        fed.stream(Direction::ClientToServer)[..4]
            .try_into()
            .unwrap(),
    ) as usize;
    let rc_len = 4 + u32::from_be_bytes(
        fed.stream(Direction::ServerToClient)[..4]
            .try_into()
            .unwrap(),
    ) as usize;
    let init = fed.stream(Direction::ClientToServer)[..init_len].to_vec();
    let rc = fed.stream(Direction::ServerToClient)[..rc_len].to_vec();

    let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    let (mut s, _) = upstream.accept().await.unwrap();
    c.write_all(&init).await.unwrap();
    let mut got = vec![0u8; init.len()];
    s.read_exact(&mut got).await.unwrap();
    s.write_all(&rc).await.unwrap();
    let mut got = vec![0u8; rc.len()];
    c.read_exact(&mut got).await.unwrap();
    let peer = [("cluster", "alpha"), ("persist_type", "FED")];
    let text = wait_metrics(&proxy, Duration::from_secs(5), "peer connected", |t| {
        metric(t, "fedproxy_federation_peer_connected", &peer) == 1.0
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_active",
            &[("conn_kind", "fed_persist")]
        ),
        1.0
    );
    drop(c);
    drop(s);
    wait_metrics(&proxy, Duration::from_secs(5), "peer disconnected", |t| {
        metric(t, "fedproxy_federation_peer_connected", &peer) == 0.0
            && metric(t, "fedproxy_connections_active", &[]) == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_relayed_unchanged_and_counted_without_hurting_others() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(upstream.local_addr().unwrap(), "").await;
    let route = proxy.listener_addr("r").unwrap();

    // A garbage connection stays open while real traffic flows next to it.
    let mut rng = Rng::new(42);
    let mut garbage = rng.bytes(200_000);
    garbage[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]); // length prefix over MAX_MSG_SIZE
    let mut g = TcpStream::connect(route).await.unwrap();
    let (mut gs, _) = upstream.accept().await.unwrap();
    g.write_all(&garbage[..100_000]).await.unwrap();
    let mut got = vec![0u8; 100_000];
    gs.read_exact(&mut got).await.unwrap();
    assert!(got == garbage[..100_000]);
    wait_metrics(
        &proxy,
        Duration::from_secs(5),
        "decode error counted",
        |t| {
            metric(
                t,
                "fedproxy_decode_errors_total",
                &[("direction", "c2s"), ("reason", "length_over_limit")],
            ) == 1.0
        },
    )
    .await;

    // Other connections decode normally meanwhile.
    let n = replay("fed_info.pcap", route, &upstream).await;
    assert!(n > 0);

    // The garbage connection still relays, both ways, byte for byte.
    g.write_all(&garbage[100_000..]).await.unwrap();
    let mut got = vec![0u8; 100_000];
    gs.read_exact(&mut got).await.unwrap();
    assert!(got == garbage[100_000..]);
    gs.write_all(&garbage).await.unwrap();
    let mut back = vec![0u8; garbage.len()];
    g.read_exact(&mut back).await.unwrap();
    assert!(back == garbage);
    drop(g);
    drop(gs);

    let text = wait_closed(&proxy, n + 1).await;
    // One error per direction that failed: the client's garbage, then the
    // upstream's garbage (its first frame starts with the same bad prefix).
    assert_eq!(
        metric(
            &text,
            "fedproxy_decode_errors_total",
            &[("direction", "c2s")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "fedproxy_decode_errors_total",
            &[("direction", "s2c")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "fedproxy_messages_total",
            &[("msg_type", "REQUEST_FED_INFO")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "fedproxy_messages_total",
            &[("msg_type", "RESPONSE_FED_INFO")]
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_relayed_and_counted() {
    // A REQUEST_FED_INFO-typed persist-framed... no: a normal frame whose body is
    // larger than max_observed_frame. Built from a captured REQUEST_FED_INFO by
    // growing its length prefix and body (the header's body_length is not
    // consulted before the frame is complete, so only the start is decoded).
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(
        upstream.local_addr().unwrap(),
        "[relay]\nmax_observed_frame = 4096\n",
    )
    .await;
    let cap = read_capture(&capture("fed_info.pcap")).unwrap();
    let req = cap
        .connections
        .iter()
        .map(|c| c.stream(Direction::ClientToServer))
        .find(|s| s.len() > 10 && s[8..10] == [0x08, 0x01]) // msg_type 2049 after version + flags
        .expect("a REQUEST_FED_INFO");
    let len = u32::from_be_bytes(req[..4].try_into().unwrap()) as usize;
    let mut big = req[..4 + len].to_vec();
    big.extend(std::iter::repeat_n(0u8, 100_000));
    let new_len = (big.len() - 4) as u32;
    big[..4].copy_from_slice(&new_len.to_be_bytes());

    let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    let (mut s, _) = upstream.accept().await.unwrap();
    c.write_all(&big).await.unwrap();
    let mut got = vec![0u8; big.len()];
    s.read_exact(&mut got).await.unwrap();
    assert!(got == big);
    wait_metrics(&proxy, Duration::from_secs(5), "oversized counted", |t| {
        metric(
            t,
            "fedproxy_oversized_frames_total",
            &[("direction", "c2s"), ("msg_type", "REQUEST_FED_INFO")],
        ) == 1.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_on_the_slurm_port_is_relayed_and_counted_as_http() {
    let proxy = start_route(echo_server().await, "").await;
    let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    let req = b"GET /openapi/v3 HTTP/1.1\r\nHost: ctld\r\n\r\n";
    c.write_all(req).await.unwrap();
    c.shutdown().await.unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, req);
    let text = wait_closed(&proxy, 1).await;
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_closed_total",
            &[("conn_kind", "http")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "fedproxy_messages_total", &[]), 0.0);
    // Counted as a (possible) legacy FLURM probe although no legacy peer is configured.
    assert_eq!(
        metric(
            &text,
            "fedproxy_legacy_http_probes_total",
            &[("peer", "unconfigured"), ("path", "other")]
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_flurm_health_probes_are_counted_by_path_without_any_legacy_config() {
    let proxy = start_route(echo_server().await, "").await;
    for path in ["/api/v1/health", "/api/v1/cluster/stats", "/api/v1/health"] {
        let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
            .await
            .unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:6817\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, req.as_bytes(), "passed through unchanged");
    }
    let text = wait_metrics(&proxy, Duration::from_secs(5), "probes", |t| {
        metric(t, "fedproxy_legacy_http_probes_total", &[]) == 3.0
    })
    .await;
    let probes = |path| {
        metric(
            &text,
            "fedproxy_legacy_http_probes_total",
            &[("peer", "unconfigured"), ("path", path)],
        )
    };
    assert_eq!(probes("/api/v1/health"), 2.0, "{text}");
    assert_eq!(probes("/api/v1/cluster/stats"), 1.0, "{text}");
}
