//! The `fedproxy run` binary as a child process: SIGTERM drains (stops
//! accepting, /ready 503, lets open connections finish, exits 0), the drain
//! timeout bounds the wait, and bad configurations or busy addresses fail with
//! messages that name the key.

mod daemon_support;
mod run_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_support::Daemon;
use run_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, text: &str) -> TempFile {
        let p =
            std::env::temp_dir().join(format!("fedproxy-test-{}-{tag}.toml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_connections_then_exits_zero() {
    let up = echo_server().await;
    let mut d = Daemon::spawn(
        "drain",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{up}\"\n\
             [relay]\ndrain_timeout_ms = 20000\n"
        ),
    );
    let route = d.listener_addr("r");
    let admin = d.admin_addr();
    assert_eq!(http_get(admin, "/ready").await.unwrap().status, 200);

    let mut open = TcpStream::connect(route).await.unwrap();
    run_support::echo_round_trip(&mut open, b"before SIGTERM").await;

    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    d.wait_message("shutting down", Some(("signal", "SIGTERM")));
    // /ready says 503 and new connections are refused...
    wait_until(Duration::from_secs(10), "/ready 503", || async {
        http_get(admin, "/ready")
            .await
            .map(|r| r.status == 503)
            .unwrap_or(false)
    })
    .await;
    wait_until(Duration::from_secs(10), "route refuses connections", || async {
        matches!(TcpStream::connect(route).await, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    // ...while the open connection keeps working, and the process waits for it.
    run_support::echo_round_trip(&mut open, b"during the drain").await;
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "exited before its connection finished"
    );

    open.shutdown().await.unwrap();
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let status = d.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "exited on the drain timeout, not when the connection ended"
    );
    d.wait_message("drained; exiting", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_a_stuck_connection_exits_zero_after_the_drain_timeout() {
    let up = echo_server().await;
    let mut d = Daemon::spawn(
        "timeout",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{up}\"\n\
             [relay]\ndrain_timeout_ms = 300\n"
        ),
    );
    let route = d.listener_addr("r");
    let mut stuck = TcpStream::connect(route).await.unwrap();
    run_support::echo_round_trip(&mut stuck, b"idle from now on").await;
    let t0 = Instant::now();
    d.signal(libc::SIGINT);
    let status = d.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "did not wait for the drain timeout"
    );
    d.wait_message(
        "drain timeout reached; closing the remaining connections",
        None,
    );
    // The stuck connection was closed when the process exited.
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(5), stuck.read(&mut buf))
        .await
        .expect("closed");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_and_busy_address_fail_clearly() {
    // Unknown key: exit 2, the message names it.
    let mut d = Daemon::spawn(
        "bad",
        "[inbound]\nlisten = \"127.0.0.1:0\"\nupstrem = \"127.0.0.1:6817\"\n",
    );
    let status = d.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2));
    let v = d.messages_until_exit();
    assert!(v.contains("upstrem") && v.contains("unknown field"), "{v}");

    // Address in use: exit 1, the message names the key and the address.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let mut d = Daemon::spawn(
        "busy",
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nlisten = \"{addr}\"\nupstream = \"127.0.0.1:6817\"\n"),
    );
    let status = d.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(1));
    let v = d.messages_until_exit();
    assert!(
        v.contains(&format!("route[0].listen = {addr}")) && v.contains("in use"),
        "{v}"
    );

    // --check-config: 0 for a good file, 2 for a bad one, and nothing is bound.
    let good = TempFile::new(
        "check",
        "[[route]]\nlisten = \"127.0.0.1:1\"\nupstream = \"127.0.0.1:6817\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fedproxy"))
        .args(["run", "--check-config", "-c"])
        .arg(&good.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let bad = TempFile::new("checkbad", "[relay]\ndrain_timeout = 5\n");
    let out = Command::new(env!("CARGO_BIN_EXE_fedproxy"))
        .args(["run", "--check-config", "-c"])
        .arg(&bad.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
