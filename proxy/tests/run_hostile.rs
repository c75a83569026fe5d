//! Hostile clients against the `fedproxy run` binary (issue 10, item 1): many
//! connections that each announce a huge frame and stall part-way must not grow
//! the daemon's memory, and every byte they send still reaches the upstream
//! exactly.

mod daemon_support;
mod run_support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daemon_support::{raise_nofile, Daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 2000;
/// Issue 10's reproducer: a 22.05 header announcing a 1 GiB frame
/// (`3ffffff0 26000000 0801`), then 1,039,990 zero bytes, and the connection
/// stays open.
const HEAD: [u8; 10] = [0x3f, 0xff, 0xff, 0xf0, 0x26, 0, 0, 0, 0x08, 0x01];
const ZEROS: usize = 1_039_990;
const PER_CONNECTION: u64 = (HEAD.len() + ZEROS) as u64;

/// An upstream that checks every connection's bytes (`head`, then zeros, `total`
/// in all) and counts connections that received all of them.
async fn checking_sink(
    head: &'static [u8],
    total: u64,
) -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let complete = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let (c, w) = (complete.clone(), wrong.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (c, w) = (c.clone(), w.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut at = 0u64;
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    for (i, &b) in buf[..n].iter().enumerate() {
                        let pos = at as usize + i;
                        let want = head.get(pos).copied().unwrap_or(0);
                        if b != want || pos as u64 >= total {
                            w.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    at += n as u64;
                    if at == total {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (addr, complete, wrong)
}

/// What one hostile run measured.
struct Outcome {
    rss_growth: u64,
    metrics: String,
}

/// `CONNECTIONS` clients each send `head` then zeros up to `total` bytes and
/// stay open; every byte must reach the upstream exactly.
fn stalled_frames(test: &str, head: &'static [u8], total: u64) -> Option<Outcome> {
    let need = (CONNECTIONS as u64) * 2 + 512;
    let have = raise_nofile(need);
    if have < need {
        run_support::not_run(
            test,
            &format!("RLIMIT_NOFILE >= {need} (hard limit allows {have})"),
        );
        return None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Some(rt.block_on(async {
        let (upstream, complete, wrong) = checking_sink(head, total).await;
        // Default settings: only the route and a private admin port.
        let mut d = Daemon::spawn(
            test,
            &format!(
                "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"hostile\"\n\
                 listen = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n"
            ),
        );
        let route = d.listener_addr("hostile");
        let admin: std::net::SocketAddr = d.admin_addr();
        // Warm up (thread stacks, allocator arenas), then take the baseline.
        for _ in 0..20 {
            let mut s = TcpStream::connect(route).await.unwrap();
            s.write_all(&head[..6]).await.unwrap(); // a prefix: checked like the rest
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = d.rss();

        let t0 = Instant::now();
        let rest = Arc::new(vec![0u8; total as usize - head.len()]);
        let mut tasks = Vec::with_capacity(CONNECTIONS);
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        for _ in 0..CONNECTIONS {
            let rest = rest.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let mut s = TcpStream::connect(route).await.expect("connect");
                s.write_all(head).await.unwrap();
                s.write_all(&rest).await.unwrap();
                s // kept open: the frame never completes
            }));
        }
        let mut open = Vec::with_capacity(CONNECTIONS);
        for t in tasks {
            open.push(t.await.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        while complete.load(Ordering::Relaxed) < CONNECTIONS {
            assert!(
                Instant::now() < deadline,
                "only {} of {CONNECTIONS} connections delivered all their bytes",
                complete.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = d.rss();
        let rss_growth = after.saturating_sub(before);
        println!(
            "{test}: {CONNECTIONS} stalled connections, {} MB relayed in {:.1} s: RSS {} -> {} MiB (+{} MiB), {} fds",
            CONNECTIONS as u64 * total / 1_000_000,
            t0.elapsed().as_secs_f64(),
            before >> 20,
            after >> 20,
            rss_growth >> 20,
            d.fds()
        );
        assert_eq!(wrong.load(Ordering::Relaxed), 0, "bytes differ upstream");
        assert!(d.is_running());
        let metrics = run_support::http_get(admin, "/metrics").await.unwrap().body;
        drop(open);
        Outcome {
            rss_growth,
            metrics,
        }
    }))
}

#[test]
fn two_thousand_stalled_huge_frames_keep_rss_flat_and_bytes_exact() {
    let Some(o) = stalled_frames(
        "two_thousand_stalled_huge_frames_keep_rss_flat_and_bytes_exact",
        &HEAD,
        PER_CONNECTION,
    ) else {
        return;
    };
    assert!(
        o.rss_growth <= 128 << 20,
        "RSS grew by {} MiB with {CONNECTIONS} stalled connections",
        o.rss_growth >> 20
    );
}

/// A frame under `relay.max_observed_frame` (1 MiB) that never completes is
/// held by the decoder (1,000,000 bytes announced, 4 fewer sent): 2,000 of them
/// would hold 2 GB without the budget.
const SUB_LIMIT_HEAD: [u8; 10] = [0, 0x0f, 0x42, 0x40, 0x26, 0, 0, 0, 0x08, 0x01];
const SUB_LIMIT_SENT: u64 = 1_000_000;

#[test]
fn two_thousand_stalled_frames_under_the_frame_limit_stay_within_the_budget() {
    let Some(o) = stalled_frames(
        "two_thousand_stalled_frames_under_the_frame_limit_stay_within_the_budget",
        &SUB_LIMIT_HEAD,
        SUB_LIMIT_SENT,
    ) else {
        return;
    };
    assert!(
        o.rss_growth <= 128 << 20,
        "RSS grew by {} MiB with {CONNECTIONS} stalled connections",
        o.rss_growth >> 20
    );
    let exhausted = run_support::metric(
        &o.metrics,
        "fedproxy_decode_errors_total",
        &[("direction", "c2s"), ("reason", "memory_budget")],
    );
    assert!(
        exhausted >= 1.0,
        "the budget's refusals are counted\n{}",
        o.metrics
    );
}
