//! One run: the synthetic peer, the proxies, the throughput trials (workloads ×
//! paths, interleaved), the idle-connection trials and, with `--lab`, the real
//! lab storm. Produces the [`Measurements`] the report is built from.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::Args;
use crate::client;
use crate::frames::Frames;
use crate::lab::lab_storm;
use crate::machine::{cmd_first_line, loadavg};
use crate::paths::{self, PathKind, Proxy};
use crate::peer::{answers, Peer};
use crate::stats::r;
use crate::workload::{to_trial, Trial, Workload};

/// Everything one run measured, for [`crate::report::build`].
pub struct Measurements {
    /// The paths measured (direct plus every proxy that started).
    pub active: Vec<PathKind>,
    /// Why a path is missing.
    pub notes: BTreeMap<&'static str, String>,
    pub results: BTreeMap<Workload, BTreeMap<PathKind, Vec<Trial>>>,
    pub idle: BTreeMap<PathKind, Vec<Value>>,
    pub lab: Option<Value>,
    pub versions: Value,
    /// A sample of fedproxy's own metrics after the throughput trials.
    pub metrics: Option<Vec<String>>,
    pub load_before: String,
    pub load_after: String,
    pub took: Duration,
    /// Proxy configs and logs.
    pub tmp: PathBuf,
}

/// Runs every measurement `a` asks for. Updates `a` with what the machine
/// allowed (idle connections, RLIMIT_NOFILE) and the other processes' load.
pub fn run(
    a: &mut Args,
    frames: &Frames,
    want: &[PathKind],
    workloads: &[Workload],
) -> Result<Measurements> {
    client::set_client_source(a.client_source);
    // A proxy holds 2 descriptors per relayed connection: without
    // CAP_SYS_RESOURCE the hard RLIMIT_NOFILE caps the idle test.
    let nofile = paths::raise_nofile((a.idle_conns as u64) * 2 + 1024)?;
    a.idle_requested = a.idle_conns;
    a.nofile = nofile;
    // Margin: haproxy reserves descriptors of its own beyond 2 per connection.
    let idle_cap = (nofile.saturating_sub(1000) / 2) as usize;
    if a.idle_conns > idle_cap {
        eprintln!(
            "fedproxy-bench: RLIMIT_NOFILE is {nofile} (hard limit; no CAP_SYS_RESOURCE to raise it): \
             {idle_cap} idle connections instead of {} (a proxy needs 2 descriptors per connection)",
            a.idle_conns
        );
        a.idle_conns = idle_cap;
    }
    let tmp = std::env::temp_dir().join(format!("fedproxy-bench-{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    let started = Instant::now();
    let load_before = loadavg();
    let snap0 = paths::load_snapshot();
    eprintln!(
        "fedproxy-bench: load average {load_before}; RLIMIT_NOFILE {nofile}; temp dir {}",
        tmp.display()
    );

    // ---------------------------------------------------------------- throughput
    let peer = Peer::start(
        "127.0.0.1:0".parse()?,
        answers(&frames.rpc, &frames.persist_init, &frames.persist_msgs),
        a.peer_workers,
        false,
    )?;
    let mut notes: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut proxies: BTreeMap<PathKind, Proxy> = BTreeMap::new();
    for &p in want {
        let started = match p {
            PathKind::Direct => continue,
            PathKind::Fedproxy => Proxy::fedproxy(&a.fedproxy, peer.addr, &tmp),
            PathKind::FedproxyTap => Proxy::fedproxy_tapped(&a.fedproxy, peer.addr, &tmp),
            PathKind::Haproxy => Proxy::haproxy(&a.haproxy, peer.addr, &tmp, 1000 + a.clients * 4),
        };
        match started.and_then(|px| {
            // One checked RPC through it before it counts as available.
            client::rpc_once(px.listen, &frames.rpc, &mut Vec::new())
                .context("first RPC through the proxy")?;
            Ok(px)
        }) {
            Ok(px) => {
                proxies.insert(p, px);
            }
            Err(e) => {
                eprintln!("fedproxy-bench: {} unavailable: {e:#}", p.name());
                notes.insert(p.name(), format!("unavailable: {e:#}"));
            }
        }
    }
    let active: Vec<PathKind> = want
        .iter()
        .copied()
        .filter(|p| *p == PathKind::Direct || proxies.contains_key(p))
        .collect();
    let addr_of = |p: PathKind| -> SocketAddr {
        if p == PathKind::Direct {
            peer.addr
        } else {
            proxies[&p].listen
        }
    };
    let dur = Duration::from_millis(a.trial_ms);

    // Warm-up: every workload on every path, short.
    for &p in &active {
        let ad = addr_of(p);
        let w = Duration::from_millis(150);
        let _ = client::oneshot_trial(ad, &frames.rpc, 1, w);
        let _ = client::oneshot_trial(ad, &frames.rpc, a.clients, w);
        let _ = client::pingpong_trial(ad, frames, w);
        let _ = client::pipelined_trial(ad, frames, a.window, w);
    }

    let mut results: BTreeMap<Workload, BTreeMap<PathKind, Vec<Trial>>> = BTreeMap::new();
    for rep in 0..a.reps {
        for (wi, &w) in workloads.iter().enumerate() {
            let n = active.len();
            for k in 0..n {
                let p = active[(k + rep + wi) % n];
                let ad = addr_of(p);
                let cpu0 = proxies
                    .get(&p)
                    .and_then(|x| x.cpu_secs())
                    .unwrap_or(f64::NAN);
                let t = match w {
                    Workload::Oneshot1 => Ok(client::oneshot_trial(ad, &frames.rpc, 1, dur)),
                    Workload::OneshotN => {
                        Ok(client::oneshot_trial(ad, &frames.rpc, a.clients, dur))
                    }
                    Workload::PingPong => client::pingpong_trial(ad, frames, dur),
                    Workload::Pipelined => client::pipelined_trial(ad, frames, a.window, dur),
                };
                let cpu = proxies
                    .get(&p)
                    .and_then(|x| x.cpu_secs())
                    .unwrap_or(f64::NAN)
                    - cpu0;
                match t {
                    Ok(t) => {
                        let tr = to_trial(rep, &t, w != Workload::Pipelined, cpu);
                        eprintln!(
                            "rep {rep} {:<22} {:<9} {:>9.0}/s {:>8.2} MB/s p50 {:>7.1} µs p99 {:>7.1} µs errors {}",
                            w.key(a),
                            p.name(),
                            tr.rate,
                            tr.mb_s,
                            tr.p50_us,
                            tr.p99_us,
                            tr.errors
                        );
                        results.entry(w).or_default().entry(p).or_default().push(tr);
                    }
                    Err(e) => eprintln!("rep {rep} {} {}: failed: {e:#}", w.key(a), p.name()),
                }
                // Let TIME_WAIT sockets and the proxies settle between trials.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let metrics = proxies
        .get(&PathKind::Fedproxy)
        .and_then(|p| p.metrics())
        .map(|m| {
            m.lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.contains("frame")
                            || l.contains("message")
                            || l.contains("connections"))
                })
                .take(60)
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
    let versions = json!({
        "haproxy": cmd_first_line(&a.haproxy, &["-v"]),
        "fedproxy": cmd_first_line(&a.fedproxy.to_string_lossy(), &["--version"]),
        "git_commit": cmd_first_line("git", &["rev-parse", "--short", "HEAD"]),
    });
    for (_, p) in std::mem::take(&mut proxies) {
        p.stop();
    }
    peer.stop();

    // ---------------------------------------------------------------- idle connections
    let mut idle: BTreeMap<PathKind, Vec<Value>> = BTreeMap::new();
    if a.idle_conns > 0 {
        let proxied: Vec<PathKind> = active
            .iter()
            .copied()
            .filter(|p| *p != PathKind::Direct)
            .collect();
        for rep in 0..a.idle_reps {
            for k in 0..proxied.len() {
                let p = proxied[(k + rep) % proxied.len()];
                match idle_trial(a, frames, p, &tmp) {
                    Ok(v) => {
                        eprintln!("idle rep {rep} {:<9} {}", p.name(), v);
                        idle.entry(p).or_default().push(v);
                    }
                    Err(e) => eprintln!("idle rep {rep} {}: failed: {e:#}", p.name()),
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    // ---------------------------------------------------------------- real lab
    let lab = if a.lab { Some(lab_storm(a)) } else { None };

    let load_after = loadavg();
    let other = paths::other_load(snap0, paths::load_snapshot());
    eprintln!("fedproxy-bench: other processes used {other:.2} cores on average during the run");
    a.other_load_cores = other;
    Ok(Measurements {
        active,
        notes,
        results,
        idle,
        lab,
        versions,
        metrics,
        load_before,
        load_after,
        took: started.elapsed(),
        tmp,
    })
}

/// A fresh proxy, warmed up; RSS before; `idle_conns` persistent connections
/// opened (PERSIST_INIT → PERSIST_RC each) and left idle; RSS after.
fn idle_trial(a: &Args, frames: &Frames, p: PathKind, tmp: &Path) -> Result<Value> {
    let hold = HoldPeer::spawn()?;
    let px = match p {
        PathKind::Fedproxy => Proxy::fedproxy(&a.fedproxy, hold.addr, tmp)?,
        PathKind::FedproxyTap => Proxy::fedproxy_tapped(&a.fedproxy, hold.addr, tmp)?,
        PathKind::Haproxy => Proxy::haproxy(&a.haproxy, hold.addr, tmp, a.idle_conns + 100)?,
        PathKind::Direct => bail!("no proxy on the direct path"),
    };
    // Warm-up: one-shot RPCs (a parked persistent connection would stay
    // half-open in the proxy and count in "before").
    let mut buf = Vec::new();
    for _ in 0..500 {
        client::rpc_once(px.listen, &frames.rpc, &mut buf)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = px.rss_kib().context("VmRSS")?;
    let t = Instant::now();
    let conns = client::open_idle(px.listen, frames, a.idle_conns)?;
    let open_s = t.elapsed().as_secs_f64();
    // Idle: the proxy may free per-connection buffers once bytes stop moving.
    std::thread::sleep(Duration::from_millis(1500));
    let after = px.rss_kib().context("VmRSS")?;
    let after_hwm = paths::status_kib(px.pid(), "VmHWM:");
    drop(conns);
    px.stop();
    drop(hold);
    let per_conn = (after as f64 - before as f64) * 1024.0 / a.idle_conns as f64;
    Ok(json!({
        "connections": a.idle_conns,
        "rss_hwm_kib": after_hwm,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_connection": r(per_conn, 0),
        "kib_per_connection": r(per_conn / 1024.0, 2),
        "open_seconds": r(open_s, 2),
    }))
}

/// The hold-mode peer in a child process (this binary with --peer-only).
struct HoldPeer {
    addr: SocketAddr,
    child: std::process::Child,
}

impl HoldPeer {
    fn spawn() -> Result<HoldPeer> {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--peer-only")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("LISTEN ")
            .context("peer process did not start")?
            .parse()?;
        Ok(HoldPeer { addr, child })
    }
}

impl Drop for HoldPeer {
    fn drop(&mut self) {
        paths::note_child_cpu(self.child.id());
        drop(self.child.stdin.take()); // EOF: the peer exits
        let _ = self.child.wait();
    }
}

pub fn peer_only(frames: &Frames) -> Result<()> {
    paths::raise_nofile(1 << 20)?;
    let p = Peer::start(
        "127.0.0.1:0".parse()?,
        answers(&frames.rpc, &frames.persist_init, &frames.persist_msgs),
        4,
        true,
    )?;
    println!("LISTEN {}", p.addr);
    use std::io::Read;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0); // no joins: the parked sockets close with the process
}
