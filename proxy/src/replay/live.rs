//! `fedproxy replay --live`: every captured TCP connection is played through a
//! running fedproxy on loopback. One local peer plays the captured client side,
//! another the server side, segment by segment in captured order; each side must
//! receive exactly the bytes the other sent in the capture, and the proxy's
//! `/metrics` must count exactly the messages the offline replay decodes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use slurm_codec::Direction;

use crate::run::config::Config;
use crate::run::Proxy;
use tcpflow::TcpConnection;

use fedproxy_replay::ReplayedConnection;

/// How long one side waits for bytes the other side sent.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What a live replay saw.
#[derive(Debug, Default)]
pub struct LiveReport {
    pub connections: usize,
    pub bytes: [u64; 2],
    /// Connections whose bytes arrived altered, short or late (with the reason).
    pub mismatches: Vec<String>,
    /// msg_type label → messages counted by the proxy's /metrics.
    pub proxy_counts: BTreeMap<String, u64>,
    /// msg_type label → messages the offline replay decoded.
    pub offline_counts: BTreeMap<String, u64>,
    pub decode_errors: u64,
    /// A few lines of the proxy's /metrics for display.
    pub metrics_excerpt: Vec<String>,
}

impl LiveReport {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
            && self.proxy_counts == self.offline_counts
            && self.decode_errors == 0
    }
}

/// Plays `conns` (oriented: client = requester) through a fedproxy started in
/// this process with one static route to a local server peer.
pub async fn play(conns: &[(&TcpConnection, &ReplayedConnection)]) -> Result<LiveReport, String> {
    let server = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("server peer: {e}"))?;
    let upstream = server.local_addr().map_err(|e| e.to_string())?;
    let cfg = Config::from_toml(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"live\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n"
    ))
    .map_err(|e| e.to_string())?;
    let proxy = Proxy::start(cfg).await?;
    let front = proxy.listener_addr("live").ok_or("route not bound")?;

    let mut report = LiveReport::default();
    for (cap, rep) in conns {
        report.connections += 1;
        if let Err(e) = play_one(cap, &server, front, &mut report.bytes).await {
            report.mismatches.push(format!(
                "conn {} ({} -> {}): {e}",
                cap.id, cap.client, cap.server
            ));
        }
        for f in &rep.frames {
            let t = f.frame.msg_type();
            let label = t
                .name_in(f.frame.namespace())
                .unwrap_or("UNKNOWN")
                .to_string();
            *report.offline_counts.entry(label).or_default() += 1;
        }
    }
    // The proxy counts a message when its last byte passes; the peers have seen
    // every byte, so give the observer a moment to settle before reading /metrics.
    let text = wait_for_metrics(proxy.admin_addr(), report.offline_counts.values().sum()).await?;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("fedproxy_messages_total{") {
            let (labels, value) = rest.split_once("} ").unwrap_or((rest, "0"));
            if let Some(t) = label(labels, "msg_type") {
                *report.proxy_counts.entry(t).or_default() +=
                    value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            }
        } else if let Some(rest) = line.strip_prefix("fedproxy_decode_errors_total{") {
            report.decode_errors += rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
        }
        if line.starts_with("fedproxy_messages_total")
            || line.starts_with("fedproxy_connections_accepted_total")
            || line.starts_with("fedproxy_decode_errors_total")
            || line.starts_with("fedproxy_bytes_total")
        {
            report.metrics_excerpt.push(line.to_string());
        }
    }
    proxy.shutdown().await;
    Ok(report)
}

/// One connection: connect through the proxy, accept on the server peer, then
/// send each captured segment from its side and read it in full on the other.
async fn play_one(
    cap: &TcpConnection,
    server: &TcpListener,
    front: SocketAddr,
    bytes: &mut [u64; 2],
) -> Result<(), String> {
    let mut client = TcpStream::connect(front)
        .await
        .map_err(|e| format!("connect to proxy: {e}"))?;
    let (mut upstream, _) = tokio::time::timeout(READ_TIMEOUT, server.accept())
        .await
        .map_err(|_| "the proxy did not connect upstream".to_string())?
        .map_err(|e| e.to_string())?;
    client.set_nodelay(true).ok();
    upstream.set_nodelay(true).ok();
    let mut buf = vec![0u8; 64 * 1024];
    for seg in &cap.segments {
        let (tx, rx) = match seg.dir {
            Direction::ClientToServer => (&mut client, &mut upstream),
            Direction::ServerToClient => (&mut upstream, &mut client),
        };
        tx.write_all(&seg.data)
            .await
            .map_err(|e| format!("{} write: {e}", seg.dir.as_str()))?;
        let mut got = 0;
        while got < seg.data.len() {
            let want = (seg.data.len() - got).min(buf.len());
            let n = tokio::time::timeout(READ_TIMEOUT, rx.read(&mut buf[..want]))
                .await
                .map_err(|_| {
                    format!(
                        "{}: only {got} of {} bytes arrived",
                        seg.dir.as_str(),
                        seg.data.len()
                    )
                })?
                .map_err(|e| format!("{} read: {e}", seg.dir.as_str()))?;
            if n == 0 {
                return Err(format!(
                    "{}: connection closed after {got} of {} bytes",
                    seg.dir.as_str(),
                    seg.data.len()
                ));
            }
            if buf[..n] != seg.data[got..got + n] {
                return Err(format!(
                    "{}: bytes differ at segment offset {got}",
                    seg.dir.as_str()
                ));
            }
            got += n;
        }
        bytes[seg.dir.index()] += got as u64;
    }
    // Close like the capture's end: client first, then the server; both see EOF.
    client.shutdown().await.ok();
    expect_eof(&mut upstream, "server").await?;
    upstream.shutdown().await.ok();
    expect_eof(&mut client, "client").await
}

async fn expect_eof(s: &mut TcpStream, side: &str) -> Result<(), String> {
    let mut one = [0u8; 1];
    match tokio::time::timeout(READ_TIMEOUT, s.read(&mut one)).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(_)) => Err(format!("{side} got bytes nobody sent")),
        Ok(Err(e)) => Err(format!("{side}: {e}")),
        Err(_) => Err(format!("{side} never saw the half-close")),
    }
}

/// GET /metrics until the proxy has counted `expected` messages (or 5 s pass).
async fn wait_for_metrics(admin: SocketAddr, expected: u64) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = get_metrics(admin).await?;
        let counted: u64 = text
            .lines()
            .filter(|l| l.starts_with("fedproxy_messages_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum();
        if counted >= expected || tokio::time::Instant::now() > deadline {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_metrics(admin: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect(admin)
        .await
        .map_err(|e| format!("admin {admin}: {e}"))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: fedproxy\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(text))
}

fn label(labels: &str, key: &str) -> Option<String> {
    labels.split(',').find_map(|kv| {
        kv.strip_prefix(key)?
            .strip_prefix("=\"")?
            .strip_suffix('"')
            .map(str::to_string)
    })
}
