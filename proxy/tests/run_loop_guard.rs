//! The outbound listener and the loop guard.
//!
//! * A connection made straight to the outbound port (not redirected) has the
//!   listener itself as original destination: refused as `self_target`.
//! * In a private network namespace with real iptables REDIRECT rules:
//!   SO_ORIGINAL_DST (IPv4) and IP6T_SO_ORIGINAL_DST (IPv6) recover the sibling
//!   address when the proxy's own traffic is exempted; without the exemption the
//!   proxy's upstream connection comes back into it and is refused as
//!   `own_upstream`, which ends the loop.
//!
//! TEST-NET addresses (198.51.100.0/24, 2001:db8::/32) are put on the namespace's
//! `lo`; nothing leaves the namespace. Skipped (with a note) where network
//! namespaces or iptables are missing.

mod run_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use run_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_connection_to_outbound_listener_is_refused() {
    let proxy = start("[outbound]\nlisten = \"127.0.0.1:0\"\n").await;
    let mut c = TcpStream::connect(proxy.listener_addr("outbound").unwrap())
        .await
        .unwrap();
    let _ = c.write_all(b"\x00\x00\x00\x10hello").await;
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("closed");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    let text = wait_metrics(&proxy, Duration::from_secs(5), "refusal counted", |t| {
        metric(
            t,
            "fedproxy_loop_guard_refusals_total",
            &[("listener", "outbound"), ("reason", "self_target")],
        ) == 1.0
    })
    .await;
    // Refused before any upstream connect.
    assert_eq!(
        metric(&text, "fedproxy_upstream_connect_failures_total", &[]),
        0.0
    );
    assert_eq!(metric(&text, "fedproxy_connections_closed_total", &[]), 0.0);
    assert_eq!(
        metric(
            &text,
            "fedproxy_connections_accepted_total",
            &[("listener", "outbound")]
        ),
        1.0
    );
}

/// An echo server on `addr` that counts the connections it accepts and records
/// their peers.
async fn counting_echo(
    addr: SocketAddr,
) -> (
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<SocketAddr>,
) {
    let l = TcpListener::bind(addr).await.unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let count = n.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = l.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(peer);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (n, rx)
}

async fn connect_from(from: SocketAddr, to: SocketAddr) -> TcpStream {
    let sock = if from.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .unwrap();
    sock.bind(from).unwrap();
    sock.connect(to).await.unwrap()
}

/// Redirected through the outbound listener with the proxy's own traffic
/// exempted (by source address here: the rules match only the "slurmctld"
/// client's address, the way `-m owner` would match only slurmctld's uid).
async fn redirected_round_trip(sibling: SocketAddr, slurmctld: SocketAddr, listen: &str) {
    let (accepted, mut peers) = counting_echo(sibling).await;
    let proxy = start(&format!("[outbound]\nlisten = \"{listen}\"\n")).await;
    let mut c = connect_from(slurmctld, sibling).await;
    c.write_all(b"through the proxy").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got))
        .await
        .expect("echo")
        .unwrap();
    assert_eq!(got, b"through the proxy");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The sibling saw the proxy's connection, not the client's.
    let peer = peers.recv().await.unwrap();
    assert_ne!(peer.ip(), slurmctld.ip());
    let text = wait_metrics(&proxy, Duration::from_secs(5), "closed", |t| {
        metric(
            t,
            "fedproxy_connections_closed_total",
            &[("listener", "outbound")],
        ) == 1.0
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "fedproxy_bytes_total",
            &[("listener", "outbound"), ("direction", "c2s")]
        ),
        17.0
    );
    assert_eq!(
        metric(
            &text,
            "fedproxy_bytes_total",
            &[("listener", "outbound"), ("direction", "s2c")]
        ),
        17.0
    );
    assert_eq!(
        metric(&text, "fedproxy_loop_guard_refusals_total", &[]),
        0.0
    );
}

#[test]
fn so_original_dst_ipv4() {
    let ran = in_netns(
        &[
            "ip addr add 198.51.100.7/32 dev lo",
            "ip addr add 198.51.100.2/32 dev lo",
            "iptables -w -t nat -A OUTPUT -p tcp -s 198.51.100.2 -d 198.51.100.7 --dport 6817 -j REDIRECT --to-ports 16818",
        ],
        || redirected_round_trip("198.51.100.7:6817".parse().unwrap(), "198.51.100.2:0".parse().unwrap(), "0.0.0.0:16818"),
    );
    if ran.is_none() {
        not_run(
            "so_original_dst_ipv4",
            "network namespaces and iptables (nat)",
        );
    }
}

#[test]
fn ip6t_so_original_dst_ipv6() {
    let ran = in_netns(
        &[
            "ip -6 addr add 2001:db8::7/128 dev lo nodad",
            "ip -6 addr add 2001:db8::2/128 dev lo nodad",
            "ip6tables -w -t nat -A OUTPUT -p tcp -s 2001:db8::2 -d 2001:db8::7 --dport 6817 -j REDIRECT --to-ports 16818",
        ],
        || redirected_round_trip("[2001:db8::7]:6817".parse().unwrap(), "[2001:db8::2]:0".parse().unwrap(), "[::]:16818"),
    );
    if ran.is_none() {
        not_run(
            "ip6t_so_original_dst_ipv6",
            "network namespaces and ip6tables (nat)",
        );
    }
}

#[test]
fn missing_owner_exemption_is_caught_by_the_loop_guard() {
    // Every connection to the sibling is redirected, the proxy's own included.
    let ran = in_netns(
        &[
            "ip addr add 198.51.100.7/32 dev lo",
            "iptables -w -t nat -A OUTPUT -p tcp -d 198.51.100.7 --dport 6817 -j REDIRECT --to-ports 16818",
        ],
        || async {
            let sibling: SocketAddr = "198.51.100.7:6817".parse().unwrap();
            let (accepted, _peers) = counting_echo(sibling).await;
            let proxy = start("[outbound]\nlisten = \"0.0.0.0:16818\"\n").await;
            let mut c = TcpStream::connect(sibling).await.unwrap();
            let _ = c.write_all(b"would loop").await;
            let mut buf = [0u8; 16];
            let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf)).await.expect("client closed");
            assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
            let text = wait_metrics(&proxy, Duration::from_secs(5), "own_upstream refusal", |t| {
                metric(t, "fedproxy_loop_guard_refusals_total", &[("listener", "outbound"), ("reason", "own_upstream")])
                    >= 1.0
                    && proxy.open_connections() == 0
            })
            .await;
            // The loop ended at once: at most a hop or two, never the sibling.
            let hops = metric(&text, "fedproxy_connections_accepted_total", &[("listener", "outbound")]);
            assert!((2.0..=4.0).contains(&hops), "{hops} connections accepted\n{text}");
            assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing may reach the sibling");
        },
    );
    if ran.is_none() {
        not_run(
            "missing_owner_exemption_is_caught_by_the_loop_guard",
            "network namespaces and iptables",
        );
    }
}

#[test]
fn a_refused_original_destination_ends_cleanly_never_with_a_reset() {
    // Nothing listens on the sibling's address: a direct connect would be refused.
    // Through the outbound listener the handshake is already done, so the client
    // gets a clean end of stream after its request, never a reset (slurmctld
    // 22.05 dies on a reset persistent connection: see listener::end_cleanly).
    let ran = in_netns(
        &[
            "ip addr add 198.51.100.7/32 dev lo",
            "ip addr add 198.51.100.2/32 dev lo",
            "iptables -w -t nat -A OUTPUT -p tcp -s 198.51.100.2 -d 198.51.100.7 --dport 6817 -j REDIRECT --to-ports 16818",
        ],
        || async {
            let sibling: SocketAddr = "198.51.100.7:6817".parse().unwrap();
            let _proxy = start("[outbound]\nlisten = \"0.0.0.0:16818\"\n").await;
            let mut c = connect_from("198.51.100.2:0".parse().unwrap(), sibling).await;
            c.write_all(b"a request the proxy cannot forward").await.unwrap();
            let mut buf = [0u8; 16];
            let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
                .await
                .expect("the proxy answers");
            assert_eq!(
                r.map_err(|e| e.kind()),
                Ok(0),
                "a refused upstream reads as a clean end of stream"
            );
        },
    );
    if ran.is_none() {
        not_run(
            "a_refused_original_destination_ends_cleanly_never_with_a_reset",
            "network namespaces and iptables (nat)",
        );
    }
}
