//! The byte relay through a static route: exact bytes both ways however they are
//! chunked, half-close, upstream down, connect timeout, backpressure.

mod run_support;

use std::time::Duration;

use run_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Writes `data` in random chunks (random flush points) and returns.
async fn write_chunked(w: &mut (impl AsyncWriteExt + Unpin), data: &[u8], rng: &mut Rng) {
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(3000)).min(data.len() - at);
        w.write_all(&data[at..at + n]).await.unwrap();
        at += n;
        if rng.below(4) == 0 {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_payloads_random_chunks_both_ways_are_byte_exact() {
    // Upstream: reads the client's whole stream (until its half-close) while
    // sending its own random stream back, then half-closes.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let proxy = start_route(up_addr, "").await;
    let route = proxy.listener_addr("r").unwrap();

    let mut total = [0u64; 2];
    for round in 0..12u64 {
        let mut rng = Rng::new(0x5eed + round);
        let up_len = [0, 1, 7, 4096, 65_536, 300_000, 1 << 20][rng.below(7)];
        let down_len = [0, 3, 16_384, 100_000, 1 << 20][rng.below(5)];
        let to_server = rng.bytes(up_len);
        let to_client = rng.bytes(down_len);

        let server = {
            let to_client = to_client.clone();
            let mut rng = Rng::new(round * 31 + 7);
            let accept = upstream.accept();
            async move {
                let (s, _) = accept.await.unwrap();
                let (mut r, mut w) = s.into_split();
                let reader = tokio::spawn(async move {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).await.unwrap();
                    got
                });
                write_chunked(&mut w, &to_client, &mut rng).await;
                w.shutdown().await.unwrap();
                reader.await.unwrap()
            }
        };
        let client = {
            let to_server = to_server.clone();
            let mut rng = Rng::new(round * 17 + 3);
            async move {
                let s = TcpStream::connect(route).await.unwrap();
                let (mut r, mut w) = s.into_split();
                let reader = tokio::spawn(async move {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).await.unwrap();
                    got
                });
                write_chunked(&mut w, &to_server, &mut rng).await;
                w.shutdown().await.unwrap();
                reader.await.unwrap()
            }
        };
        let (server_got, client_got) = tokio::join!(server, client);
        assert!(
            server_got == to_server,
            "round {round}: c2s differs ({} vs {} bytes)",
            server_got.len(),
            to_server.len()
        );
        assert!(
            client_got == to_client,
            "round {round}: s2c differs ({} vs {} bytes)",
            client_got.len(),
            to_client.len()
        );
        total[0] += up_len as u64;
        total[1] += down_len as u64;
    }
    let text = wait_closed(&proxy, 12).await;
    assert_eq!(
        metric(
            &text,
            "fedproxy_bytes_total",
            &[("listener", "r"), ("direction", "c2s")]
        ),
        total[0] as f64
    );
    assert_eq!(
        metric(
            &text,
            "fedproxy_bytes_total",
            &[("listener", "r"), ("direction", "s2c")]
        ),
        total[1] as f64
    );
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_accepted_total",
            &[("listener", "r")]
        ),
        12.0
    );
    assert_eq!(
        metric(&text, "fedproxy_connections_active", &[("listener", "r")]),
        0.0
    );
    // The task that counted the close finishes just after: give it a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while proxy.open_connections() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(proxy.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_still_delivers_the_reply() {
    // The server answers only after it has seen the client's EOF.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(upstream.local_addr().unwrap(), "").await;
    let server = tokio::spawn(async move {
        let (mut s, _) = upstream.accept().await.unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap(); // returns only on the half-close
        let mut reply = b"reply to: ".to_vec();
        reply.extend_from_slice(&req);
        s.write_all(&reply).await.unwrap();
        s.shutdown().await.unwrap();
        req
    });
    let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    c.write_all(b"request").await.unwrap();
    c.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut reply))
        .await
        .expect("reply arrives")
        .unwrap();
    assert_eq!(reply, b"reply to: request");
    assert_eq!(server.await.unwrap(), b"request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refused_closes_the_client_and_counts() {
    let proxy = start_route(dead_addr(), "").await;
    // The handshake is already done when the upstream refuses: the client gets
    // a clean end of stream after its request, never a reset (listener::end_cleanly).
    let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    c.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("client connection is closed");
    assert_eq!(
        r.map_err(|e| e.kind()),
        Ok(0),
        "a refused upstream reads as a clean end of stream"
    );
    let text = wait_metrics(
        &proxy,
        Duration::from_secs(5),
        "connect failure counted",
        |t| {
            metric(
                t,
                "fedproxy_upstream_connect_failures_total",
                &[("listener", "r"), ("reason", "refused")],
            ) == 1.0
        },
    )
    .await;
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_closed_total",
            &[("listener", "r")]
        ),
        0.0
    );
    assert_eq!(
        metric(&text, "fedproxy_connections_active", &[("listener", "r")]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_never_answers_times_out() {
    // A listener whose accept queue is full: Linux drops further SYNs, so a
    // connect to it hangs — a local stand-in for a black-holed sibling.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = sock.listen(1).unwrap();
    let addr = full.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break, // this one hung: the queue is full
        }
    }
    let proxy = start_route(addr, "[relay]\nconnect_timeout_ms = 300\n").await;
    let mut c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("closed after the connect timeout");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    wait_metrics(&proxy, Duration::from_secs(5), "timeout counted", |t| {
        metric(
            t,
            "fedproxy_upstream_connect_failures_total",
            &[("listener", "r"), ("reason", "timeout")],
        ) == 1.0
    })
    .await;
    drop(full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_backpressures_the_writer() {
    // The upstream accepts and reads nothing. The client's writes must stall
    // once the kernel buffers on the way are full: the proxy holds at most one
    // read buffer per direction, so what it forwarded tracks what it accepted.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = start_route(upstream.local_addr().unwrap(), "").await;
    let c = TcpStream::connect(proxy.listener_addr("r").unwrap())
        .await
        .unwrap();
    let (mut server, _) = upstream.accept().await.unwrap();

    let chunk = vec![0xA5u8; 64 * 1024];
    let (mut cr, mut cw) = c.into_split();
    let mut written = 0usize;
    let cap = 256 << 20; // far more than any socket buffers on the way
    while written < cap {
        match tokio::time::timeout(Duration::from_millis(500), cw.write(&chunk)).await {
            Ok(Ok(n)) => written += n,
            Ok(Err(e)) => panic!("write failed: {e}"),
            Err(_) => break, // blocked: backpressure reached the client
        }
    }
    assert!(
        written < cap,
        "the client was never blocked after {written} bytes"
    );
    let text = metrics(&proxy).await;
    let forwarded = metric(
        &text,
        "fedproxy_bytes_total",
        &[("listener", "r"), ("direction", "c2s")],
    ) as usize;
    // Everything forwarded was accepted from the client; what the proxy took in
    // but did not pass on is at most one buffer (16 KiB), the rest sits in the
    // kernel (client send buffer, proxy receive buffer).
    assert!(
        forwarded <= written,
        "forwarded {forwarded} > written {written}"
    );
    assert!(written > 0 && forwarded > 0);
    // Bytes accepted from the client but not yet forwarded fit in the client's
    // send buffer plus the proxy's receive buffer (kernel maxima) plus the one
    // relay buffer: the proxy itself did not queue them.
    let max_of = |path: &str| -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(6 << 20)
    };
    let in_kernel = max_of("/proc/sys/net/ipv4/tcp_wmem") + max_of("/proc/sys/net/ipv4/tcp_rmem");
    assert!(
        written - forwarded <= in_kernel + 16 * 1024,
        "{} bytes held between client and upstream, more than the kernel buffers ({in_kernel}) + one relay buffer",
        written - forwarded
    );

    // Now drain: every byte arrives, in order, nothing lost.
    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                return got;
            }
            assert!(buf[..n].iter().all(|&b| b == 0xA5));
            got += n;
        }
    });
    cw.shutdown().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("drained")
        .unwrap();
    assert_eq!(got, written);
    drop(cr.read(&mut [0u8; 1]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections_stay_separate() {
    let proxy = start_route(echo_server().await, "").await;
    let route = proxy.listener_addr("r").unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(i + 1000);
            let len = 1 + rng.below(50_000);
            let data = rng.bytes(len);
            let s = TcpStream::connect(route).await.unwrap();
            let (mut r, mut w) = s.into_split();
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            });
            write_chunked(&mut w, &data, &mut rng).await;
            w.shutdown().await.unwrap();
            assert!(
                reader.await.unwrap() == data,
                "connection {i} got other bytes"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    wait_metrics(&proxy, Duration::from_secs(10), "64 closed", |t| {
        metric(t, "fedproxy_connections_closed_total", &[("listener", "r")]) == 64.0
            && metric(t, "fedproxy_connections_active", &[("listener", "r")]) == 0.0
    })
    .await;
}
