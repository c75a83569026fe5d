//! Helpers shared by the `run_*` integration tests: start a proxy in-process on
//! port 0, talk HTTP to its admin server, read metrics, poll with a deadline,
//! run code inside a private network namespace.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use fedproxy::run::{Config, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts a proxy from TOML text (admin on 127.0.0.1:0 unless the text sets it).
pub async fn start(toml: &str) -> Proxy {
    let text = if toml.contains("[admin]") {
        toml.to_string()
    } else {
        format!("[admin]\nlisten = \"127.0.0.1:0\"\n{toml}")
    };
    let cfg = Config::from_toml(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"));
    Proxy::start(cfg).await.expect("proxy starts")
}

/// A proxy with one static route `r` to `upstream`, plus extra TOML.
pub async fn start_route(upstream: SocketAddr, extra: &str) -> Proxy {
    start(&format!(
        "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n{extra}"
    ))
    .await
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A one-request HTTP/1.1 GET (Connection: close).
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr).await?;
    http_get_on(&mut s, path).await
}

pub async fn http_get_on(s: &mut TcpStream, path: &str) -> std::io::Result<HttpResponse> {
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

/// The `/metrics` text.
pub async fn metrics(proxy: &Proxy) -> String {
    let r = http_get(proxy.admin_addr(), "/metrics")
        .await
        .expect("GET /metrics");
    assert_eq!(r.status, 200);
    r.body
}

/// One parsed sample line: name, labels, value.
pub fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("sample value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => {
                let rest = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                // Label values in these tests contain no escaped quotes or commas.
                for pair in rest.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label pair");
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (n.to_string(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// Sum of the samples of `name` whose labels include all of `want`.
pub fn metric(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// Polls `/metrics` until `cond` holds (panics with the last text after `limit`).
pub async fn wait_metrics(
    proxy: &Proxy,
    limit: Duration,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let text = metrics(proxy).await;
        if cond(&text) {
            return text;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (at most 10 s) until listener `r` has seen `n` connections close; returns
/// the metrics text.
pub async fn wait_closed(proxy: &Proxy, n: usize) -> String {
    wait_metrics(
        proxy,
        Duration::from_secs(10),
        &format!("{n} connections closed on r"),
        |t| metric(t, "fedproxy_connections_closed_total", &[("listener", "r")]) == n as f64,
    )
    .await
}

/// Polls an async condition until true, at most `limit`.
pub async fn wait_until<F: Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An upstream that echoes every connection's bytes back and half-closes on EOF.
pub async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    echo_on(l);
    addr
}

/// [`echo_server`] on a listener of the caller's; abort the handle to stop it
/// (the listening socket closes, connects are refused).
pub fn echo_on(l: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    })
}

/// Writes `msg` on a connection to an echo upstream and checks it comes back.
pub async fn echo_round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("echo")
        .unwrap();
    assert_eq!(got, msg);
}

/// An address where nothing listens (connects are refused).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// xorshift64*: reproducible test data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A test that could not run here (no namespaces, no iptables): under `CI=true`
/// that is a failure, since CI must run every test; elsewhere a note on stderr.
pub fn not_run(test: &str, needs: &str) {
    if let Err(msg) = skip_verdict(std::env::var("CI").ok().as_deref(), test, needs) {
        panic!("{msg}");
    }
}

/// The decision of [`not_run`], given the value of `CI`.
pub fn skip_verdict(ci: Option<&str>, test: &str, needs: &str) -> Result<(), String> {
    let msg = format!("{test} did not run: it needs {needs}");
    if ci == Some("true") {
        Err(format!(
            "{msg} (CI=true: a test that cannot run is a failure)"
        ))
    } else {
        eprintln!("SKIPPED {msg}");
        Ok(())
    }
}

/// Runs `f` on a thread of its own inside a fresh network namespace (only `lo`,
/// brought up, plus whatever `setup` commands add), with a current-thread tokio
/// runtime. Every socket created there belongs to that namespace. `None` (and a
/// note on stderr) when namespaces or a setup command are not available here.
pub fn in_netns<T: Send + 'static, F, Fut>(setup: &[&str], f: F) -> Option<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let setup: Vec<String> = setup.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        // SAFETY: unshare(2) only changes this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "SKIP: unshare(CLONE_NEWNET) failed: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        for cmd in std::iter::once("ip link set lo up").chain(setup.iter().map(String::as_str)) {
            let mut words = cmd.split_whitespace();
            let prog = words.next().unwrap();
            match std::process::Command::new(prog).args(words).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    eprintln!(
                        "SKIP: `{cmd}` failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                    return None;
                }
                Err(e) => {
                    eprintln!("SKIP: cannot run `{cmd}`: {e}");
                    return None;
                }
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Some(rt.block_on(f()))
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
