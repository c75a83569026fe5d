//! Log lines are rate-limited per reason (issue 10, item 5): a flood of failed
//! upstream connects writes the first few lines, then one "N more like this"
//! summary, instead of one line per connection.

mod daemon_support;
mod run_support;

use std::time::Duration;

use daemon_support::Daemon;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_upstream_connects_is_summarised() {
    let dead = run_support::dead_addr();
    let d = Daemon::spawn(
        "loglimit",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\n\
             listen = \"127.0.0.1:0\"\nupstream = \"{dead}\"\n\
             [relay]\nfollow_upstream = false\n"
        ),
    );
    let route = d.listener_addr("r");
    const FLOOD: usize = 300;
    for _ in 0..FLOOD {
        // Each is accepted, then ended cleanly.
        let Ok(mut s) = TcpStream::connect(route).await else {
            continue;
        };
        let mut b = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
    }
    // The interval is 10 s: its summary comes within about 11 s of the first line.
    let lines = d.lines_for(Duration::from_secs(13));
    let failed = lines
        .iter()
        .filter(|v| v["message"] == "upstream connect failed; closing the client connection")
        .count();
    let suppressed: u64 = lines
        .iter()
        .filter(|v| v["reason"] == "upstream_connect_failed")
        .filter_map(|v| v["suppressed"].as_u64())
        .sum();
    assert_eq!(failed, 5, "the first 5 lines are written");
    assert_eq!(
        failed as u64 + suppressed,
        FLOOD as u64,
        "the rest are summarised: {lines:#?}"
    );
}
