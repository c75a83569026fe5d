//! The inbound listener and every `[[route]]` follow their upstream (issue 10,
//! item 2): while the upstream refuses connects the listener is closed, so a
//! client's connect() is refused (ECONNREFUSED) and a Slurm client fails over to
//! its backup controller; once the upstream accepts again the listener is bound
//! again on the same address within 1 s.

mod run_support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn round_trip(addr: SocketAddr, data: &[u8]) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut got = Vec::new();
    let read = async { r.read_to_end(&mut got).await.unwrap() };
    tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(write, read) })
        .await
        .expect("echo within 10 s");
    assert!(
        got == data,
        "bytes relayed exactly ({} of {})",
        got.len(),
        data.len()
    );
}

fn following(text: &str, listener: &str) -> f64 {
    run_support::metric(
        text,
        "fedproxy_listener_following_upstream",
        &[("listener", listener)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_follows_its_upstream_and_others_are_unaffected() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let upstream = run_support::echo_on(up);
    let other = run_support::echo_server().await;
    let proxy = run_support::start(&format!(
        "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{up_addr}\"\n\
         [[route]]\nname = \"b\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{other}\"\n"
    ))
    .await;
    let a = proxy.listener_addr("a").unwrap();
    let b = proxy.listener_addr("b").unwrap();
    let data = run_support::Rng::new(10).bytes(200_000);
    round_trip(a, &data).await;

    // The upstream goes away: the first client is accepted and reset, then the
    // listener closes and connects are refused by the kernel.
    upstream.abort();
    let _ = upstream.await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(a).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("unexpected connect error {e}"),
            Ok(mut s) => {
                let mut b = [0u8; 1];
                let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
            }
        }
        assert!(Instant::now() < deadline, "the listener never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(following(&run_support::metrics(&proxy).await, "a"), 1.0);
    // Still refused a while later (the probe does not reopen it early).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let e = TcpStream::connect(a).await.expect_err("still closed");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);

    // Another route's upstream is up: it is not affected.
    round_trip(b, &data).await;
    let text = run_support::metrics(&proxy).await;
    assert_eq!(following(&text, "b"), 0.0);

    // The upstream is back: the listener accepts again within 1 s, on the same address.
    let back = Instant::now();
    let upstream = run_support::echo_on(TcpListener::bind(up_addr).await.unwrap());
    loop {
        match TcpStream::connect(a).await {
            Ok(_) => break,
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        }
        assert!(
            back.elapsed() < Duration::from_secs(1),
            "the listener did not reopen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    round_trip(a, &data).await;
    assert_eq!(following(&run_support::metrics(&proxy).await, "a"), 0.0);
    upstream.abort();
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_upstream_false_keeps_accepting() {
    let dead = run_support::dead_addr();
    let proxy = run_support::start_route(dead, "[relay]\nfollow_upstream = false\n").await;
    let a = proxy.listener_addr("r").unwrap();
    for _ in 0..5 {
        // Accepted, then a clean end of stream, never refused.
        match TcpStream::connect(a).await {
            Ok(mut s) => {
                let mut b = [0u8; 1];
                let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
            }
            Err(e) => assert_ne!(e.kind(), ErrorKind::ConnectionRefused, "still accepting"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(following(&run_support::metrics(&proxy).await, "r"), 0.0);
    proxy.shutdown().await;
}
