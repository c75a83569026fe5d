//! Hostile input that used to go uncounted (issue 10, item 6): a TLS ClientHello
//! (`tls`), a frame cut off by the client closing (`truncated`), fewer than 6
//! bytes then EOF (`truncated`). Each is still relayed byte for byte.

mod run_support;

use std::time::Duration;

use run_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `bytes`, half-closes, reads the echo back (the relay is unaffected),
/// and returns the metrics once the connection has closed.
async fn send_and_close(bytes: &[u8]) -> String {
    let up = echo_server().await;
    let proxy = start_route(up, "").await;
    let mut s = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    s.write_all(bytes).await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut back))
        .await
        .expect("echo")
        .unwrap();
    assert_eq!(back, bytes, "relayed byte for byte");
    drop(s);
    wait_closed(&proxy, 1).await
}

fn decode_errors(text: &str, reason: &str) -> f64 {
    metric(
        text,
        "fedproxy_decode_errors_total",
        &[("direction", "c2s"), ("reason", reason)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_hello_is_counted_as_tls() {
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, 0xaa, 0xbb,
    ];
    let text = send_and_close(&hello).await;
    assert_eq!(decode_errors(&text, "tls"), 1.0, "{text}");
    assert_eq!(decode_errors(&text, "truncated"), 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_cut_off_by_eof_is_counted_as_truncated() {
    // A REQUEST_PING header announcing 24 bytes; only 12 are sent.
    let partial = [0, 0, 0, 24, 0x26, 0, 0, 0, 0x03, 0xf0, 0, 0];
    let text = send_and_close(&partial).await;
    assert_eq!(decode_errors(&text, "truncated"), 1.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_than_six_bytes_then_eof_is_counted_as_truncated() {
    let text = send_and_close(&[0, 0, 0]).await;
    assert_eq!(decode_errors(&text, "truncated"), 1.0, "{text}");
}
