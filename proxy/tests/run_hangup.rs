//! SIGHUP reloads the configuration (issue 10, item 3), through the binary:
//! a connection opened before the reload keeps relaying after it, a route's new
//! upstream applies to new connections, a route added by the reload listens, a
//! removed one stops accepting (its open connections go on), a setting fixed at
//! start is logged as needing a restart, and an invalid file is refused, logged
//! and counted, keeping the running configuration.

mod daemon_support;
mod run_support;

use std::net::SocketAddr;
use std::time::Duration;

use daemon_support::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo upstream that greets each connection with `hello` first, so a test
/// can tell which upstream a route reached.
async fn greeting_echo_server(hello: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if s.write_all(hello).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn connect_greeted(addr: SocketAddr, hello: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut got = vec![0u8; hello.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("greeting")
        .unwrap();
    assert_eq!(
        got, hello,
        "reached the upstream that greets with {hello:?}"
    );
    s
}

fn route(name: &str, upstream: SocketAddr) -> String {
    format!("[[route]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n")
}

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_routes_and_keeps_open_connections() {
    let one = greeting_echo_server(b"one:").await;
    let two = greeting_echo_server(b"two:").await;
    let mut d = Daemon::spawn("hangup", &format!("{ADMIN}{}", route("r", one)));
    let r = d.listener_addr("r");
    let admin: SocketAddr = d.admin_addr();
    let mut open = connect_greeted(r, b"one:").await;
    run_support::echo_round_trip(&mut open, b"before SIGHUP").await;

    // r moves to upstream two, route `added` appears, worker_threads changes.
    let config = format!(
        "{ADMIN}{}{}[relay]\nworker_threads = 1\n",
        route("r", two),
        route("added", one)
    );
    std::fs::write(d.config_path(), config).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log(
        "SIGHUP: this setting changed but needs a restart; the running value stays",
        ("setting", "relay.worker_threads"),
    );
    let added = d.listener_addr("added");
    let v = d.wait_log("SIGHUP: configuration reloaded", ("level", "INFO"));
    assert!(v["added"].as_str().unwrap().contains("added"), "{v}");
    run_support::echo_round_trip(&mut open, b"after SIGHUP, still to upstream one").await;
    let mut fresh = connect_greeted(r, b"two:").await;
    run_support::echo_round_trip(&mut fresh, b"a new connection goes to the new upstream").await;
    let mut via_added = connect_greeted(added, b"one:").await;
    run_support::echo_round_trip(&mut via_added, b"the added route listens").await;

    // Removing `added`: it stops accepting, its open connection goes on.
    std::fs::write(d.config_path(), format!("{ADMIN}{}", route("r", two))).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log(
        "stopped listening (configuration reloaded)",
        ("listener", "added"),
    );
    d.wait_log("SIGHUP: configuration reloaded", ("level", "INFO"));
    let e = TcpStream::connect(added).await.expect_err("removed route");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    run_support::echo_round_trip(&mut via_added, b"a removed route's connection goes on").await;
    run_support::echo_round_trip(&mut open, b"and the first one too").await;

    // An invalid file changes nothing.
    std::fs::write(d.config_path(), "[relay]\nconnect_timeout_ms = 0\n").unwrap();
    d.signal(libc::SIGHUP);
    let v = d.wait_log(
        "SIGHUP: the configuration file is invalid; the running configuration stays",
        ("level", "ERROR"),
    );
    assert!(v["error"].as_str().unwrap().contains("no listener"), "{v}");
    run_support::echo_round_trip(&mut open, b"after a bad SIGHUP").await;
    let mut again = connect_greeted(r, b"two:").await;
    run_support::echo_round_trip(&mut again, b"new connections too").await;

    let text = run_support::http_get(admin, "/metrics").await.unwrap().body;
    let reloads = |result| {
        run_support::metric(
            &text,
            "fedproxy_config_reloads_total",
            &[("result", result)],
        )
    };
    assert_eq!(reloads("ok"), 2.0, "{text}");
    assert_eq!(reloads("invalid"), 1.0, "{text}");
    assert!(d.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_address_changed_is_rebound() {
    let one = greeting_echo_server(b"one:").await;
    let port = run_support::dead_addr();
    let mut d = Daemon::spawn("rebind", &format!("{ADMIN}{}", route("r", one)));
    let before = d.listener_addr("r");
    let mut open = connect_greeted(before, b"one:").await;
    let config =
        format!("{ADMIN}[[route]]\nname = \"r\"\nlisten = \"{port}\"\nupstream = \"{one}\"\n");
    std::fs::write(d.config_path(), config).unwrap();
    d.signal(libc::SIGHUP);
    assert_eq!(d.listener_addr("r"), port);
    let v = d.wait_log("SIGHUP: configuration reloaded", ("level", "INFO"));
    assert!(v["rebound"].as_str().unwrap().contains("\"r\""), "{v}");
    let e = TcpStream::connect(before)
        .await
        .expect_err("old address closed");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut moved = connect_greeted(port, b"one:").await;
    run_support::echo_round_trip(&mut moved, b"on the new address").await;
    run_support::echo_round_trip(&mut open, b"the connection from before goes on").await;
    assert!(d.is_running());
}
