//! The thread-per-core relay (issue 13): every relay listener is one socket per
//! worker thread on the same address (SO_REUSEPORT). A port another socket
//! listens on must still be refused at start, connections spread over several
//! workers are relayed byte for byte, and draining closes every worker's socket.

mod run_support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use fedproxy::run::{BindError, Config, Proxy, StartError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn route_config(listen: &str, upstream: std::net::SocketAddr, extra: &str) -> Config {
    Config::from_toml(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\nlisten = \"{listen}\"\n\
         upstream = \"{upstream}\"\n{extra}"
    ))
    .expect("test config")
}

#[tokio::test]
async fn a_port_another_socket_listens_on_is_refused_despite_so_reuseport() {
    let upstream = run_support::echo_server().await;
    // A plain listener (no SO_REUSEPORT).
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = plain.local_addr().unwrap();
    match Proxy::start(route_config(&taken.to_string(), upstream, "")).await {
        Err(StartError::Bind(BindError::InUse { key, .. })) => assert_eq!(key, "route[0].listen"),
        Err(e) => panic!("expected address in use, got {e}"),
        Ok(_) => panic!("bound a port another socket listens on"),
    }
    drop(plain);

    // Another proxy (whose sockets do have SO_REUSEPORT) on the same port.
    let first = Proxy::start(route_config(
        "127.0.0.1:0",
        upstream,
        "[relay]\nworker_threads = 2\n",
    ))
    .await
    .expect("first proxy starts");
    let addr = first.listener_addr("r").unwrap();
    match Proxy::start(route_config(&addr.to_string(), upstream, "")).await {
        Err(StartError::Bind(BindError::InUse { .. })) => {}
        Err(e) => panic!("expected address in use, got {e}"),
        Ok(_) => panic!("a second proxy shared the first one's port"),
    }
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_relay_every_connection_then_drain_closes_all_sockets() {
    let upstream = run_support::echo_server().await;
    let proxy = Proxy::start(route_config(
        "127.0.0.1:0",
        upstream,
        "[relay]\nworker_threads = 4\n",
    ))
    .await
    .expect("proxy starts");
    let addr = proxy.listener_addr("r").unwrap();
    // Enough concurrent connections that the kernel hands some to every socket.
    let clients: Vec<_> = (0..64u32)
        .map(|i| {
            tokio::spawn(async move {
                let data = run_support::Rng::new(u64::from(i) + 1).bytes(20_000 + i as usize * 97);
                let mut s = TcpStream::connect(addr).await.expect("connect");
                let (mut r, mut w) = s.split();
                let mut got = Vec::new();
                let write = async {
                    w.write_all(&data).await.unwrap();
                    w.shutdown().await.unwrap();
                };
                let read = async { r.read_to_end(&mut got).await.unwrap() };
                tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(write, read) })
                    .await
                    .expect("echo within 20 s");
                assert!(got == data, "connection {i}: bytes relayed exactly");
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client task");
    }
    let text = run_support::wait_closed(&proxy, 64).await;
    assert_eq!(
        run_support::metric(
            &text,
            "fedproxy_connections_accepted_total",
            &[("listener", "r")]
        ),
        64.0
    );

    // Draining closes every worker's socket: connects are refused (not
    // accepted by a socket some worker still holds).
    proxy.start_drain();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut refused = 0;
        for _ in 0..16 {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => refused += 1,
                _ => {}
            }
        }
        if refused == 16 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "some worker kept its socket open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(proxy.shutdown().await, "drained");
}
