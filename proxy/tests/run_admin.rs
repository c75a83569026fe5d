//! The admin server: /live, /ready (and 503 while draining), /metrics content
//! type, 404/405, and non-loopback clients refused unless `allow_remote = true`.
//!
//! The remote check needs a client address that is not loopback. 127.0.0.2 is
//! still loopback (127/8), so the test makes a private network namespace and
//! gives its `lo` the TEST-NET-2 address 198.51.100.1: a connection from that
//! address to the admin port is a real non-loopback peer, and no packet leaves
//! the namespace.

mod run_support;

use std::net::SocketAddr;
use std::time::Duration;

use run_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ready_metrics_and_not_found() {
    let proxy = start_route(dead_addr(), "").await;
    let a = proxy.admin_addr();
    assert!(a.ip().is_loopback());

    let live = http_get(a, "/live").await.unwrap();
    assert_eq!((live.status, live.body.as_str()), (200, "live\n"));
    let ready = http_get(a, "/ready").await.unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));

    let m = http_get(a, "/metrics").await.unwrap();
    assert_eq!(m.status, 200);
    assert!(
        m.headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{:?}",
        m.headers
    );
    // Families with labels appear once they have a series; these are pre-registered.
    assert!(m.body.contains("# TYPE fedproxy_bytes_total counter"));
    assert!(m
        .body
        .contains("# TYPE fedproxy_decode_errors_total counter"));
    assert!(m
        .body
        .contains("# TYPE fedproxy_loop_guard_refusals_total counter"));
    assert_eq!(metric(&m.body, "fedproxy_ready", &[]), 1.0);
    assert_eq!(
        metric(
            &m.body,
            "fedproxy_connections_accepted_total",
            &[("listener", "r")]
        ),
        0.0
    );

    assert_eq!(http_get(a, "/").await.unwrap().status, 404);
    assert_eq!(http_get(a, "/metricsx").await.unwrap().status, 404);
    let mut s = TcpStream::connect(a).await.unwrap();
    s.write_all(
        b"POST /ready HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");

    // Draining: /ready says 503, /live still 200, /metrics still served.
    proxy.start_drain();
    let ready = http_get(a, "/ready").await.unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (503, "draining\n"));
    assert_eq!(http_get(a, "/live").await.unwrap().status, 200);
    assert_eq!(metric(&metrics(&proxy).await, "fedproxy_ready", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_admin_connection_serves_several_requests() {
    let proxy = start_route(dead_addr(), "").await;
    let mut s = TcpStream::connect(proxy.admin_addr()).await.unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(b"live\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
    }
}

/// Connects from `from` to `to` and sends a GET; returns the response text, or
/// None when the server closed the connection without answering.
async fn get_from(from: SocketAddr, to: SocketAddr, path: &str) -> Option<String> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(from).unwrap();
    let mut s = sock.connect(to).await.unwrap();
    let _ = s
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    let mut raw = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("server answers or closes")
    {
        Ok(_) if raw.is_empty() => None,
        Ok(_) => Some(String::from_utf8(raw).unwrap()),
        Err(_) => None, // reset: closed without answering
    }
}

#[test]
fn non_loopback_admin_clients_are_refused_by_default() {
    let ran = in_netns(&["ip addr add 198.51.100.1/32 dev lo"], || async {
        let remote: SocketAddr = "198.51.100.1:0".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();

        // Admin bound wide, allow_remote left at its default (false).
        let proxy = start(&format!(
            "[admin]\nlisten = \"0.0.0.0:0\"\n[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\n",
            dead_addr()
        ))
        .await;
        let port = proxy.admin_addr().port();
        let via_remote = SocketAddr::new("198.51.100.1".parse().unwrap(), port);
        let via_lo = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
        assert_eq!(
            get_from(remote, via_remote, "/metrics").await,
            None,
            "remote client must get no answer"
        );
        let ok = get_from(local, via_lo, "/metrics")
            .await
            .expect("loopback client is served");
        assert!(ok.starts_with("HTTP/1.1 200"));
        let body = ok.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(
            metric(body, "fedproxy_admin_refused_total", &[]),
            1.0,
            "{ok}"
        );
        // A loopback client reaching the admin port through the non-loopback
        // address is judged by its own address (loopback here: served).
        let ok = get_from(local, via_remote, "/live").await.expect("served");
        assert!(ok.starts_with("HTTP/1.1 200"));

        // allow_remote = true: served.
        let open = start(&format!(
            "[admin]\nlisten = \"0.0.0.0:0\"\nallow_remote = true\n[[route]]\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\n",
            dead_addr()
        ))
        .await;
        let to = SocketAddr::new("198.51.100.1".parse().unwrap(), open.admin_addr().port());
        let r = get_from(remote, to, "/live")
            .await
            .expect("remote client served when allowed");
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    });
    if ran.is_none() {
        not_run(
            "non_loopback_admin_clients_are_refused_by_default",
            "network namespaces",
        );
    }
}

#[test]
fn a_test_that_cannot_run_fails_under_ci() {
    assert!(skip_verdict(Some("true"), "t", "namespaces").is_err());
    assert!(skip_verdict(None, "t", "namespaces").is_ok());
    assert!(skip_verdict(Some("false"), "t", "namespaces").is_ok());
}
