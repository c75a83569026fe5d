//! `fedproxy-bench`: direct vs `fedproxy run` vs haproxy (TCP mode) on a
//! synthetic Slurm peer that answers captured requests with captured replies.
//! The three paths are measured in one run, interleaved (the order rotates
//! every repetition); every figure is the median over the repetitions.
//! Writes bench/results.json and the generated part of README.md (Performance).

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use fedproxy_bench::client::{self, LatencyTrial};
use fedproxy_bench::frames::{default_capture_dir, Frames};
use fedproxy_bench::paths::{self, PathKind, Proxy};
use fedproxy_bench::peer::{answers, Peer};
use fedproxy_bench::stats::{median, r, spread};
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(
    name = "fedproxy-bench",
    about = "fedproxy vs direct vs haproxy (TCP mode), interleaved, on captured Slurm frames"
)]
struct Args {
    /// Machine-readable results.
    #[arg(long, default_value = "bench/results.json")]
    out: PathBuf,
    /// Markdown report (the part between the bench:begin/bench:end markers is replaced).
    #[arg(long, default_value = "README.md")]
    markdown: PathBuf,
    /// Folder with fed_info.pcap, fed_startup.pcap, fed_submit.pcap.
    #[arg(long)]
    captures: Option<PathBuf>,
    /// The fedproxy binary (release build).
    #[arg(long, default_value = "target/release/fedproxy")]
    fedproxy: PathBuf,
    /// The haproxy binary.
    #[arg(long, default_value = "haproxy")]
    haproxy: String,
    /// Paths to measure (comma-separated: direct,fedproxy,haproxy,fedproxy-tap). A path whose
    /// proxy cannot start is reported as unavailable and the rest still run.
    #[arg(long, default_value = "direct,fedproxy,haproxy")]
    paths: String,
    /// Workloads to run (comma-separated: oneshot_1, oneshot_n, pingpong, pipelined).
    #[arg(long, default_value = "oneshot_1,oneshot_n,pingpong,pipelined")]
    workloads: String,
    /// Duration of one trial (one workload on one path), ms.
    #[arg(long, default_value_t = 1000)]
    trial_ms: u64,
    /// Repetitions (each runs every workload on every path, order rotated).
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Concurrent clients of the second one-shot workload.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Frames in flight in the pipelined workload.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Idle connections held through each proxy (0 = skip).
    #[arg(long, default_value_t = 10_000)]
    idle_conns: usize,
    /// Repetitions of the idle-connection measurement (fresh proxies each time).
    #[arg(long, default_value_t = 3)]
    idle_reps: usize,
    /// Worker threads of the synthetic peer.
    #[arg(long, default_value_t = 64)]
    peer_workers: usize,
    /// Also run the real-lab sbatch storm (scripts/lab; slow: restarts the lab twice per rep).
    #[arg(long)]
    lab: bool,
    /// sbatch submissions per lab measurement.
    #[arg(long, default_value_t = 200)]
    lab_jobs: usize,
    /// Repetitions of the lab measurement (each: without, then with fedproxy).
    #[arg(long, default_value_t = 1)]
    lab_reps: usize,
    /// Source address of every client connection (another loopback address,
    /// e.g. 127.0.0.2, keeps the clients' ports apart from the proxies' own
    /// upstream sockets; fedproxy before acb4b35 refused clients whose
    /// address:port equalled one of its upstream sockets' local address).
    #[arg(long, default_value = "127.0.0.1")]
    client_source: std::net::IpAddr,
    /// Internal: run only the synthetic peer in hold mode (for the idle test, in
    /// its own process so that its sockets do not count against the harness's
    /// RLIMIT_NOFILE); prints "LISTEN addr" and runs until stdin closes.
    #[arg(long, hide = true)]
    peer_only: bool,
    #[arg(skip)]
    idle_requested: usize,
    #[arg(skip)]
    nofile: u64,
    #[arg(skip)]
    other_load_cores: f64,
    /// Keep the temp dir (proxy configs and logs).
    #[arg(long)]
    keep_tmp: bool,
    /// Short run (trials of 300 ms, 3 reps, 2,000 idle connections) for a smoke test.
    #[arg(long)]
    quick: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    Oneshot1,
    OneshotN,
    PingPong,
    Pipelined,
}

impl Workload {
    fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "oneshot_1" => Workload::Oneshot1,
            "oneshot_n" => Workload::OneshotN,
            "pingpong" => Workload::PingPong,
            "pipelined" => Workload::Pipelined,
            _ => return None,
        })
    }
    fn key(self, a: &Args) -> String {
        match self {
            Workload::Oneshot1 => "oneshot_1".into(),
            Workload::OneshotN => format!("oneshot_{}", a.clients),
            Workload::PingPong => "persist_pingpong".into(),
            Workload::Pipelined => format!("persist_pipelined_{}", a.window),
        }
    }
    fn title(self, a: &Args) -> String {
        match self {
            Workload::Oneshot1 => "One-shot RPC (REQUEST_FED_INFO → RESPONSE_FED_INFO), 1 client".into(),
            Workload::OneshotN => format!("One-shot RPC (REQUEST_FED_INFO → RESPONSE_FED_INFO), {} concurrent clients", a.clients),
            Workload::PingPong => "Persistent federation connection, ping-pong (CTLD_MULT_MSG/SIB_MSG → RESPONSE_CTLD_MULT_MSG)".into(),
            Workload::Pipelined => format!("Persistent federation connection, pipelined ({} frames in flight)", a.window),
        }
    }
}

/// One trial's figures.
#[derive(Clone, Debug)]
struct Trial {
    rep: usize,
    ops: u64,
    errors: u64,
    elapsed_s: f64,
    rate: f64,
    mb_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// Proxy CPU seconds per 1000 operations (NaN for direct).
    proxy_cpu_ms_per_kop: f64,
}

fn to_trial(rep: usize, t: &LatencyTrial, latency: bool, cpu: f64) -> Trial {
    let (p50, p99) = if latency {
        (t.pct_us(50.0), t.pct_us(99.0))
    } else {
        (f64::NAN, f64::NAN)
    };
    Trial {
        rep,
        ops: t.ops(),
        errors: t.errors,
        elapsed_s: t.elapsed.as_secs_f64(),
        rate: t.rate(),
        mb_s: t.mb_s(),
        p50_us: p50,
        p99_us: p99,
        proxy_cpu_ms_per_kop: cpu * 1e6 / t.ops().max(1) as f64,
    }
}

fn main() -> Result<()> {
    let mut a = Args::parse();
    if a.quick {
        a.trial_ms = 300;
        a.reps = 3;
        a.idle_conns = a.idle_conns.min(2000);
        a.idle_reps = 1;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let want: Vec<PathKind> = a
        .paths
        .split(',')
        .map(|s| PathKind::parse(s.trim()).with_context(|| format!("unknown path {s:?}")))
        .collect::<Result<_>>()?;
    let workloads: Vec<Workload> = a
        .workloads
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Workload::parse(s.trim()).with_context(|| format!("unknown workload {s:?}")))
        .collect::<Result<_>>()?;
    if !want.contains(&PathKind::Direct) {
        bail!("the direct path is the baseline: keep it in --paths");
    }
    let frames = Frames::load(&a.captures.clone().unwrap_or_else(default_capture_dir))?;
    if a.peer_only {
        return peer_only(&frames);
    }
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
    for &p in &want {
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
        let _ = client::pingpong_trial(ad, &frames, w);
        let _ = client::pipelined_trial(ad, &frames, a.window, w);
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
                    Workload::PingPong => client::pingpong_trial(ad, &frames, dur),
                    Workload::Pipelined => client::pipelined_trial(ad, &frames, a.window, dur),
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
                            w.key(&a),
                            p.name(),
                            tr.rate,
                            tr.mb_s,
                            tr.p50_us,
                            tr.p99_us,
                            tr.errors
                        );
                        results.entry(w).or_default().entry(p).or_default().push(tr);
                    }
                    Err(e) => eprintln!("rep {rep} {} {}: failed: {e:#}", w.key(&a), p.name()),
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
                match idle_trial(&a, &frames, p, &tmp) {
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
    let lab = if a.lab { Some(lab_storm(&a)) } else { None };

    let load_after = loadavg();
    let other = paths::other_load(snap0, paths::load_snapshot());
    eprintln!("fedproxy-bench: other processes used {other:.2} cores on average during the run");
    a.other_load_cores = other;
    let report = build_report(
        &a,
        &frames,
        &command,
        &active,
        &notes,
        &results,
        &idle,
        lab,
        versions,
        metrics,
        &load_before,
        &load_after,
        started.elapsed(),
    );
    if let Some(dir) = a.out.parent() {
        fs::create_dir_all(dir).ok();
    }
    fs::write(&a.out, serde_json::to_string_pretty(&report)? + "\n")?;
    write_markdown(&a.markdown, &markdown(&report))?;
    eprintln!(
        "fedproxy-bench: wrote {} and {}",
        a.out.display(),
        a.markdown.display()
    );
    if !a.keep_tmp {
        let _ = fs::remove_dir_all(&tmp);
    }
    Ok(())
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

fn peer_only(frames: &Frames) -> Result<()> {
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

/// The real lab: `lab_jobs` sbatch submissions on alpha (a federated cluster),
/// without and with fedproxy; wall time of each storm.
fn lab_storm(a: &Args) -> Value {
    let lab = Path::new("scripts/lab");
    if !lab.exists() {
        return json!({"skipped": "scripts/lab not found"});
    }
    let storm = format!(
        "for i in $(seq {}); do sbatch --parsable -o /dev/null -e /dev/null --wrap true >/dev/null || exit 1; done",
        a.lab_jobs
    );
    let mut runs = Vec::new();
    for rep in 0..a.lab_reps {
        for mode in ["no-proxy", "proxy"] {
            let mut up = Command::new(lab);
            up.arg("up");
            if mode == "no-proxy" {
                up.arg("--no-proxy");
            }
            let res = (|| -> Result<f64> {
                run_ok(&mut up)?;
                run_ok(Command::new(lab).args(["wait-fed", "180"]))?;
                let t = Instant::now();
                run_ok(Command::new(lab).args(["on", "alpha", "bash", "-c", &storm]))?;
                let s = t.elapsed().as_secs_f64();
                let _ = Command::new(lab)
                    .args(["on", "alpha", "scancel", "--user=root"])
                    .status();
                Ok(s)
            })();
            match res {
                Ok(s) => {
                    eprintln!("lab rep {rep} {mode}: {} sbatch in {s:.2} s", a.lab_jobs);
                    runs.push(json!({"rep": rep, "mode": mode, "seconds": r(s, 3)}));
                }
                Err(e) => {
                    eprintln!("lab rep {rep} {mode}: failed: {e:#}");
                    runs.push(json!({"rep": rep, "mode": mode, "error": format!("{e:#}")}));
                }
            }
        }
    }
    let secs = |m: &str| -> Vec<f64> {
        runs.iter()
            .filter(|v| v["mode"] == m)
            .filter_map(|v| v["seconds"].as_f64())
            .collect()
    };
    let (d, f) = (median(&secs("no-proxy")), median(&secs("proxy")));
    json!({
        "jobs": a.lab_jobs,
        "runs": runs,
        "direct_seconds": r(d, 3),
        "fedproxy_seconds": r(f, 3),
        "throughput_ratio_to_direct": r(d / f, 3),
    })
}

fn run_ok(c: &mut Command) -> Result<()> {
    let out = c.output().with_context(|| format!("{c:?}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "{c:?} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

fn cmd_first_line(cmd: &str, args: &[&str]) -> Value {
    match Command::new(cmd).args(args).output() {
        Ok(o) if o.status.success() => {
            json!(String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string())
        }
        _ => Value::Null,
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine(load_before: &str, load_after: &str) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem_kib: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": r(mem_kib as f64 / 1048576.0, 1),
        "kernel": fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        r(a / b, 3)
    } else {
        f64::NAN
    }
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    a: &Args,
    frames: &Frames,
    command: &str,
    active: &[PathKind],
    notes: &BTreeMap<&'static str, String>,
    results: &BTreeMap<Workload, BTreeMap<PathKind, Vec<Trial>>>,
    idle: &BTreeMap<PathKind, Vec<Value>>,
    lab: Option<Value>,
    versions: Value,
    metrics: Option<Vec<String>>,
    load_before: &str,
    load_after: &str,
    took: Duration,
) -> Value {
    let mut workloads = serde_json::Map::new();
    // Medians per workload and path: (rate, mb_s, p50, p99).
    let mut med: BTreeMap<(Workload, PathKind), [f64; 4]> = BTreeMap::new();
    // Added p50 over direct: median of the per-repetition differences.
    let mut added: BTreeMap<(Workload, PathKind), f64> = BTreeMap::new();
    for (&w, per) in results {
        let mut wp = serde_json::Map::new();
        for (&p, trials) in per {
            let col = |f: fn(&Trial) -> f64| trials.iter().map(f).collect::<Vec<f64>>();
            let m = [
                median(&col(|t| t.rate)),
                median(&col(|t| t.mb_s)),
                median(&col(|t| t.p50_us)),
                median(&col(|t| t.p99_us)),
            ];
            med.insert((w, p), m);
            if p != PathKind::Direct {
                if let Some(d) = per.get(&PathKind::Direct) {
                    let diffs: Vec<f64> = trials
                        .iter()
                        .filter_map(|t| {
                            d.iter()
                                .find(|x| x.rep == t.rep)
                                .map(|x| t.p50_us - x.p50_us)
                        })
                        .collect();
                    added.insert((w, p), median(&diffs));
                }
            }
            let (rlo, rhi) = spread(&col(|t| t.rate));
            wp.insert(
                p.name().into(),
                json!({
                    "ops_per_s": num(r(m[0], 0)),
                    "mb_per_s": num(r(m[1], 2)),
                    "p50_us": num(r(m[2], 1)),
                    "p99_us": num(r(m[3], 1)),
                    "ops_per_s_min_max": [num(r(rlo, 0)), num(r(rhi, 0))],
                    "added_p50_us": num(r(added.get(&(w, p)).copied().unwrap_or(f64::NAN), 1)),
                    "proxy_cpu_ms_per_1000_ops": num(r(median(&col(|t| t.proxy_cpu_ms_per_kop)), 3)),
                    "errors": trials.iter().map(|t| t.errors).sum::<u64>(),
                    "trials": trials.iter().map(|t| json!({
                        "rep": t.rep, "ops": t.ops, "errors": t.errors, "seconds": r(t.elapsed_s, 3),
                        "ops_per_s": r(t.rate, 0), "mb_per_s": r(t.mb_s, 2),
                        "p50_us": num(r(t.p50_us, 1)), "p99_us": num(r(t.p99_us, 1)),
                        "proxy_cpu_ms_per_1000_ops": num(r(t.proxy_cpu_ms_per_kop, 3)),
                    })).collect::<Vec<_>>(),
                }),
            );
        }
        // Ratios: to direct and to haproxy, for each figure.
        let mut ratios = serde_json::Map::new();
        for &p in active {
            if let Some(m) = med.get(&(w, p)) {
                let d = med
                    .get(&(w, PathKind::Direct))
                    .copied()
                    .unwrap_or([f64::NAN; 4]);
                let h = med
                    .get(&(w, PathKind::Haproxy))
                    .copied()
                    .unwrap_or([f64::NAN; 4]);
                ratios.insert(
                    p.name().into(),
                    json!({
                        "ops_per_s_vs_direct": num(ratio(m[0], d[0])),
                        "ops_per_s_vs_haproxy": num(ratio(m[0], h[0])),
                        "mb_per_s_vs_direct": num(ratio(m[1], d[1])),
                        "mb_per_s_vs_haproxy": num(ratio(m[1], h[1])),
                        "p50_vs_direct": num(ratio(m[2], d[2])),
                        "p50_vs_haproxy": num(ratio(m[2], h[2])),
                        "p99_vs_direct": num(ratio(m[3], d[3])),
                        "p99_vs_haproxy": num(ratio(m[3], h[3])),
                    }),
                );
            }
        }
        workloads.insert(
            w.key(a),
            json!({"title": w.title(a), "paths": wp, "ratios": ratios}),
        );
    }

    let mut idle_j = serde_json::Map::new();
    let mut idle_med: BTreeMap<PathKind, f64> = BTreeMap::new();
    for (&p, v) in idle {
        let per: Vec<f64> = v
            .iter()
            .filter_map(|x| x["bytes_per_connection"].as_f64())
            .collect();
        let m = median(&per);
        idle_med.insert(p, m);
        idle_j.insert(
            p.name().into(),
            json!({"bytes_per_connection": num(r(m, 0)), "kib_per_connection": num(r(m / 1024.0, 2)), "trials": v}),
        );
    }

    // Targets (reported, not asserted).
    let f = PathKind::Fedproxy;
    let h = PathKind::Haproxy;
    let d = PathKind::Direct;
    let get =
        |w: Workload, p: PathKind, i: usize| med.get(&(w, p)).map(|m| m[i]).unwrap_or(f64::NAN);
    let add = |w: Workload, p: PathKind| added.get(&(w, p)).copied().unwrap_or(f64::NAN);
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => json!("met"),
        Some(false) => json!("missed"),
        None => json!("not measured"),
    };
    let cmp = |x: f64, y: f64, le: bool| -> Option<bool> {
        (x.is_finite() && y.is_finite()).then_some(if le { x <= y } else { x >= y })
    };
    let lab_ratio = lab
        .as_ref()
        .and_then(|l| l["throughput_ratio_to_direct"].as_f64())
        .unwrap_or(f64::NAN);
    let targets = vec![
        json!({"target": "one-shot, 1 client: fedproxy added p50 <= haproxy added p50 (aim: half)",
               "fedproxy_added_p50_us": num(r(add(Workload::Oneshot1, f), 1)), "haproxy_added_p50_us": num(r(add(Workload::Oneshot1, h), 1)),
               "ratio": num(ratio(add(Workload::Oneshot1, f), add(Workload::Oneshot1, h))),
               "verdict": verdict(cmp(add(Workload::Oneshot1, f), add(Workload::Oneshot1, h), true)),
               "aim_half": verdict(cmp(add(Workload::Oneshot1, f), 0.5 * add(Workload::Oneshot1, h), true))}),
        json!({"target": format!("one-shot, {} clients: fedproxy RPCs/s >= haproxy", a.clients),
               "fedproxy": num(r(get(Workload::OneshotN, f, 0), 0)), "haproxy": num(r(get(Workload::OneshotN, h, 0), 0)),
               "ratio": num(ratio(get(Workload::OneshotN, f, 0), get(Workload::OneshotN, h, 0))),
               "verdict": verdict(cmp(get(Workload::OneshotN, f, 0), get(Workload::OneshotN, h, 0), false))}),
        json!({"target": "persistent ping-pong: fedproxy msgs/s >= haproxy",
               "fedproxy": num(r(get(Workload::PingPong, f, 0), 0)), "haproxy": num(r(get(Workload::PingPong, h, 0), 0)),
               "ratio": num(ratio(get(Workload::PingPong, f, 0), get(Workload::PingPong, h, 0))),
               "verdict": verdict(cmp(get(Workload::PingPong, f, 0), get(Workload::PingPong, h, 0), false))}),
        json!({"target": format!("persistent pipelined ({} in flight): fedproxy MB/s >= 0.9 x direct", a.window),
               "fedproxy": num(r(get(Workload::Pipelined, f, 1), 2)), "direct": num(r(get(Workload::Pipelined, d, 1), 2)),
               "ratio": num(ratio(get(Workload::Pipelined, f, 1), get(Workload::Pipelined, d, 1))),
               "verdict": verdict(cmp(get(Workload::Pipelined, f, 1), 0.9 * get(Workload::Pipelined, d, 1), false))}),
        json!({"target": "idle connections: fedproxy <= 10 KiB per connection",
               "fedproxy_kib": num(r(idle_med.get(&f).copied().unwrap_or(f64::NAN) / 1024.0, 2)),
               "haproxy_kib": num(r(idle_med.get(&h).copied().unwrap_or(f64::NAN) / 1024.0, 2)),
               "verdict": verdict(cmp(idle_med.get(&f).copied().unwrap_or(f64::NAN), 10240.0, true))}),
        json!({"target": "real lab: sbatch storm through fedproxy >= 0.98 x direct throughput",
               "ratio": num(lab_ratio), "verdict": verdict(cmp(lab_ratio, 0.98, false))}),
    ];

    let mut paths_j = serde_json::Map::new();
    for p in PathKind::ALL {
        paths_j.insert(
            p.name().into(),
            json!({
                "measured": active.contains(&p),
                "note": notes.get(p.name()).cloned(),
                "how": match p {
                    PathKind::Direct => "client -> synthetic peer",
                    PathKind::Fedproxy => "client -> fedproxy run ([[route]] on loopback, [relay] observe = true, admin/metrics on) -> peer",
                    PathKind::Haproxy => "client -> haproxy -db (mode tcp, one frontend/backend, nbthread default) -> peer",
                    PathKind::FedproxyTap => "as fedproxy, with one `GET /tap` subscriber reading every message (JSON lines)",
                },
            }),
        );
    }

    let mut mach = machine(load_before, load_after);
    mach["other_processes_cores"] = num(r(a.other_load_cores, 2));
    json!({
        "schema": 1,
        "generated_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "command": command,
        "took_seconds": r(took.as_secs_f64(), 1),
        "machine": mach,
        "versions": versions,
        "settings": {
            "trial_ms": a.trial_ms, "reps": a.reps, "clients": a.clients, "window": a.window,
            "idle_conns": a.idle_conns, "idle_conns_requested": a.idle_requested, "rlimit_nofile": a.nofile, "idle_reps": a.idle_reps, "peer_workers": a.peer_workers,
            "order": "each repetition runs every workload on every path; the path order rotates every repetition and workload; figures are medians over repetitions; added p50 = median over repetitions of (path p50 - direct p50 of the same repetition)",
        },
        "frames": {
            "rpc": {"name": frames.rpc.name, "request_bytes": frames.rpc.request.len(), "reply_bytes": frames.rpc.reply.len()},
            "persist_init": {"name": frames.persist_init.name, "request_bytes": frames.persist_init.request.len(), "reply_bytes": frames.persist_init.reply.len()},
            "persist_msgs": frames.persist_msgs.iter().map(|e| json!({"name": e.name, "request_bytes": e.request.len(), "reply_bytes": e.reply.len()})).collect::<Vec<_>>(),
            "mb_per_s_counts": "request + reply bytes (length prefixes included), 1 MB = 10^6 bytes",
        },
        "paths": paths_j,
        "workloads": workloads,
        "idle_connections": idle_j,
        "lab": lab,
        "targets": targets,
        "fedproxy_metrics_sample": metrics,
    })
}

fn fmt(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "–".into(),
    }
}

/// The generated Markdown section.
fn markdown(rep: &Value) -> String {
    let mut s = String::new();
    let m = &rep["machine"];
    s += &format!(
        "Measured by `{}` on {} cores ({}), {} GiB, Linux {}; load average {} before, {} after; other processes used {} cores on average during the run; {}; git {}.\n\n",
        rep["command"].as_str().unwrap_or(""),
        m["cores"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["loadavg_before"].as_str().unwrap_or("?"),
        m["loadavg_after"].as_str().unwrap_or("?"),
        fmt(&m["other_processes_cores"], 2),
        rep["versions"]["haproxy"].as_str().unwrap_or("haproxy ?"),
        rep["versions"]["git_commit"].as_str().unwrap_or("?"),
    );
    let st = &rep["settings"];
    s += &format!(
        "Synthetic Slurm peer answering captured frames; clients, peer and proxy share the machine's cores. \
         {} repetitions × {} ms trials, paths interleaved (order rotated every trial); medians. \
         Ratios: fedproxy or haproxy over direct (×direct) and fedproxy over haproxy (×haproxy); for latency lower is better, for rates higher is better.\n\n",
        st["reps"], st["trial_ms"]
    );
    for (p, v) in rep["paths"].as_object().unwrap() {
        if let Some(n) = v["note"].as_str() {
            s += &format!("**{p}**: {n}\n\n");
        }
    }
    s += "| workload | path | rate (/s) | MB/s | p50 µs | p99 µs | added p50 µs | rate ×direct | rate ×haproxy | p50 ×direct | p50 ×haproxy | proxy CPU ms/1000 ops |\n";
    s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (_, w) in rep["workloads"].as_object().unwrap() {
        for (p, v) in w["paths"].as_object().unwrap() {
            let ra = &w["ratios"][p];
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                w["title"].as_str().unwrap_or(""),
                p,
                fmt(&v["ops_per_s"], 0),
                fmt(&v["mb_per_s"], 2),
                fmt(&v["p50_us"], 1),
                fmt(&v["p99_us"], 1),
                fmt(&v["added_p50_us"], 1),
                fmt(&ra["ops_per_s_vs_direct"], 2),
                fmt(&ra["ops_per_s_vs_haproxy"], 2),
                fmt(&ra["p50_vs_direct"], 2),
                fmt(&ra["p50_vs_haproxy"], 2),
                fmt(&v["proxy_cpu_ms_per_1000_ops"], 2),
            );
        }
    }
    s += "\n";
    if let Some(idle) = rep["idle_connections"]
        .as_object()
        .filter(|o| !o.is_empty())
    {
        s += &format!("Idle connections ({} persistent federation connections, PERSIST_INIT → PERSIST_RC each, then idle; proxy VmRSS after − before, fresh proxy per trial):\n\n", st["idle_conns"]);
        if st["idle_conns"] != st["idle_conns_requested"] {
            s += &format!("({} requested; RLIMIT_NOFILE's hard limit here is {} and cannot be raised without CAP_SYS_RESOURCE, and a proxy holds 2 descriptors per connection.)\n\n", st["idle_conns_requested"], st["rlimit_nofile"]);
        }
        s += "| proxy | KiB per connection | RSS before → after (KiB), each trial |\n|---|---:|---|\n";
        for (p, v) in idle {
            let trials: Vec<String> = v["trials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{} → {}", t["rss_before_kib"], t["rss_after_kib"]))
                .collect();
            s += &format!(
                "| {p} | {} | {} |\n",
                fmt(&v["kib_per_connection"], 2),
                trials.join("; ")
            );
        }
        s += "\n";
    }
    if let Some(l) = rep["lab"].as_object() {
        if let Some(sk) = l.get("skipped") {
            s += &format!("Real lab: skipped ({sk}).\n\n");
        } else {
            s += &format!(
                "Real lab ({} federated `sbatch` on alpha): {} s direct, {} s through fedproxy: throughput ×{} of direct.\n\n",
                l["jobs"],
                fmt(&l["direct_seconds"], 2),
                fmt(&l["fedproxy_seconds"], 2),
                fmt(&l["throughput_ratio_to_direct"], 3)
            );
        }
    }
    s += "| target | fedproxy | reference | ratio | verdict |\n|---|---:|---:|---:|---|\n";
    for t in rep["targets"].as_array().unwrap() {
        let o = t.as_object().unwrap();
        let pick = |keys: &[&str]| -> String {
            keys.iter()
                .find_map(|k| {
                    o.get(*k)
                        .filter(|v| !v.is_null())
                        .map(|v| format!("{} ({})", fmt(v, 2), k))
                })
                .unwrap_or_else(|| "–".into())
        };
        let mut verdict = o["verdict"].as_str().unwrap_or("").to_string();
        if let Some(h) = o.get("aim_half").and_then(|v| v.as_str()) {
            verdict += &format!(" (aim ≤ half: {h})");
        }
        s += &format!(
            "| {} | {} | {} | {} | {} |\n",
            o["target"].as_str().unwrap_or(""),
            pick(&["fedproxy", "fedproxy_added_p50_us", "fedproxy_kib"]),
            pick(&["haproxy", "haproxy_added_p50_us", "direct", "haproxy_kib"]),
            o.get("ratio")
                .map(|v| fmt(v, 3))
                .unwrap_or_else(|| "–".into()),
            verdict
        );
    }
    s
}

const BEGIN: &str =
    "<!-- bench:begin (generated by fedproxy-bench; edits inside are overwritten) -->";
const END: &str = "<!-- bench:end -->";

/// Replaces the generated part of the Markdown file (creates the file when missing).
fn write_markdown(path: &Path, body: &str) -> Result<()> {
    let old = fs::read_to_string(path).unwrap_or_default();
    let gen = format!("{BEGIN}\n{body}{END}");
    let new = match (old.find("<!-- bench:begin"), old.find(END)) {
        (Some(b), Some(e)) if e > b => format!("{}{gen}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("## Performance\n\n{gen}\n"),
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ok();
    }
    fs::write(path, new)?;
    Ok(())
}
