//! A partial frame may wait only so long (issue 10, item 1, idle limit): past
//! `relay.partial_idle_secs` its direction is relayed unobserved (the buffer is
//! freed), counted as `decode_errors{reason="idle_partial"}`; relaying never stops.

mod run_support;

use std::time::{Duration, Instant};

use run_support::metric;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn idle_partial(text: &str) -> f64 {
    metric(
        text,
        "fedproxy_decode_errors_total",
        &[("direction", "c2s"), ("reason", "idle_partial")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_partial_frame_is_given_up_and_relaying_goes_on() {
    let up = run_support::echo_server().await;
    let proxy = run_support::start_route(up, "[relay]\npartial_idle_secs = 1\n").await;
    let mut s = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    // Three bytes of a frame's length: the decoder waits for the rest.
    let start = Instant::now();
    s.write_all(&[0, 0, 1]).await.unwrap();
    let mut got = [0u8; 3];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(idle_partial(&run_support::metrics(&proxy).await), 0.0);

    run_support::wait_metrics(&proxy, Duration::from_secs(5), "idle_partial", |t| {
        idle_partial(t) == 1.0
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "not before the limit: {:?}",
        start.elapsed()
    );
    // The echo upstream sent the same three bytes back: that direction gives up too.
    let s2c = |t: &str| {
        metric(
            t,
            "fedproxy_decode_errors_total",
            &[("direction", "s2c"), ("reason", "idle_partial")],
        )
    };
    run_support::wait_metrics(&proxy, Duration::from_secs(5), "s2c idle_partial", |t| {
        s2c(t) == 1.0
    })
    .await;

    // The rest still arrives exactly.
    let rest = run_support::Rng::new(3).bytes(100_000);
    s.write_all(&rest).await.unwrap();
    let mut back = vec![0u8; rest.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut back))
        .await
        .expect("relayed")
        .unwrap();
    assert!(back == rest, "bytes relayed exactly");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = run_support::metrics(&proxy).await;
    assert_eq!(idle_partial(&text), 1.0, "counted once per direction");
    assert_eq!(s2c(&text), 1.0, "counted once per direction");
    drop(s);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_limit_a_partial_frame_is_kept() {
    let up = run_support::echo_server().await;
    let proxy = run_support::start_route(up, "[relay]\npartial_idle_secs = 0\n").await;
    let mut s = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    s.write_all(&[0, 0, 1]).await.unwrap();
    let mut got = [0u8; 3];
    s.read_exact(&mut got).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(idle_partial(&run_support::metrics(&proxy).await), 0.0);
    drop(s);
    proxy.shutdown().await;
}
