//! SIGHUP does not kill `fedproxy run` (issue 10, item 3, first part): the file
//! is checked, the result logged, the running configuration and every open
//! connection stay. Applying a changed file live is not implemented yet.

mod daemon_support;
mod run_support;

use std::time::Duration;

use daemon_support::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("echo")
        .unwrap();
    assert_eq!(got, msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_the_proxy_and_its_connections() {
    let up = run_support::echo_server().await;
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{up}\"\n"
    );
    let mut d = Daemon::spawn("hangup", &config);
    let route = d.listener_addr("r");
    let mut open = TcpStream::connect(route).await.unwrap();
    echo(&mut open, b"before SIGHUP").await;

    d.signal(libc::SIGHUP);
    let v = d.wait_log(
        "SIGHUP: the configuration file is valid, but live reload is not implemented yet; \
         the running configuration stays (restart fedproxy to apply it)",
        ("level", "WARN"),
    );
    assert!(v["config"].as_str().is_some());
    echo(&mut open, b"after SIGHUP").await;

    std::fs::write(d.config_path(), "[relay]\nconnect_timeout_ms = 0\n").unwrap();
    d.signal(libc::SIGHUP);
    let v = d.wait_log(
        "SIGHUP: the configuration file is invalid; the running configuration stays",
        ("level", "ERROR"),
    );
    assert!(v["error"].as_str().unwrap().contains("no listener"), "{v}");
    echo(&mut open, b"after a bad SIGHUP").await;
    let mut fresh = TcpStream::connect(route).await.unwrap();
    echo(&mut fresh, b"new connections too").await;
    assert!(d.is_running());
}
