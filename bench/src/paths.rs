//! The three paths to the synthetic peer: direct, through `fedproxy run`
//! (static route, every frame decoded, metrics on) and through haproxy in TCP
//! mode. Proxies are started and stopped here, by PID.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    Direct,
    Fedproxy,
    Haproxy,
    /// fedproxy with one `/tap` subscriber reading everything (not in the default set).
    FedproxyTap,
}

impl PathKind {
    pub const ALL: [PathKind; 4] = [
        PathKind::Direct,
        PathKind::Fedproxy,
        PathKind::Haproxy,
        PathKind::FedproxyTap,
    ];
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Fedproxy => "fedproxy",
            PathKind::Haproxy => "haproxy",
            PathKind::FedproxyTap => "fedproxy-tap",
        }
    }
    pub fn parse(s: &str) -> Option<PathKind> {
        PathKind::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// A free loopback port (bound then released: the proxy binds it right after).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running proxy process.
pub struct Proxy {
    pub kind: PathKind,
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
    child: Child,
    log: PathBuf,
    /// A `/tap` subscriber reading in a thread (ends when the proxy stops).
    tap_reader: Option<std::thread::JoinHandle<u64>>,
}

impl Proxy {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// haproxy 2.6 in TCP mode: one frontend, one backend, nbthread default.
    pub fn haproxy(bin: &str, upstream: SocketAddr, dir: &Path, maxconn: usize) -> Result<Proxy> {
        let port = free_port()?;
        let cfg = dir.join(format!("haproxy-{port}.cfg"));
        fs::write(
            &cfg,
            format!(
                "# fedproxy-bench: the blind TCP forwarder a user would pick instead\n\
                 global\n    maxconn {maxconn}\n\n\
                 defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n\n\
                 frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\n\
                 backend be\n    server peer {upstream}\n"
            ),
        )?;
        let log = dir.join(format!("haproxy-{port}.log"));
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log)?)
            .stderr(fs::File::create(dir.join(format!("haproxy-{port}.err")))?)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut p = Proxy {
            kind: PathKind::Haproxy,
            listen,
            admin: None,
            child,
            log: dir.join(format!("haproxy-{port}.err")),
            tap_reader: None,
        };
        p.wait_ready()?;
        Ok(p)
    }

    /// `fedproxy run` with one static route listen → upstream, observe on.
    pub fn fedproxy(bin: &Path, upstream: SocketAddr, dir: &Path) -> Result<Proxy> {
        let port = free_port()?;
        let admin_port = free_port()?;
        let cfg = dir.join(format!("fedproxy-{port}.toml"));
        fs::write(
            &cfg,
            format!(
                "# fedproxy-bench: one static route, every frame decoded, metrics on\n\
                 [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n\
                 [[route]]\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{upstream}\"\nname = \"bench\"\n\n\
                 [relay]\nobserve = true\n"
            ),
        )?;
        let log = dir.join(format!("fedproxy-{port}.log"));
        let child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log)?)
            .stderr(Stdio::from(fs::File::options().append(true).open(&log)?))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let admin = Some(format!("127.0.0.1:{admin_port}").parse()?);
        let mut p = Proxy {
            kind: PathKind::Fedproxy,
            listen,
            admin,
            child,
            log,
            tap_reader: None,
        };
        p.wait_ready()?;
        Ok(p)
    }

    /// As [`Proxy::fedproxy`], with one subscriber reading `GET /tap` (every
    /// message of every connection) and discarding it, as fast as it can.
    pub fn fedproxy_tapped(bin: &Path, upstream: SocketAddr, dir: &Path) -> Result<Proxy> {
        use std::io::Write;
        let mut p = Proxy::fedproxy(bin, upstream, dir)?;
        p.kind = PathKind::FedproxyTap;
        let admin = p.admin.context("no admin address")?;
        let mut s = TcpStream::connect(admin)?;
        s.write_all(b"GET /tap HTTP/1.0\r\nHost: bench\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        if !head.ends_with(b"200") {
            bail!("/tap answered {:?}", String::from_utf8_lossy(&head));
        }
        p.tap_reader = Some(std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        }));
        Ok(p)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "{} exited ({st}) before listening: {}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            if TcpStream::connect_timeout(&self.listen, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} not listening on {} after 10 s: {}",
            self.kind.name(),
            self.listen,
            self.log_tail()
        )
    }

    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// User + system CPU time consumed so far, in seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(self.pid())
    }

    /// GET /metrics from fedproxy's admin server.
    pub fn metrics(&self) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.admin?, Duration::from_secs(2)).ok()?;
        use std::io::Write;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        note_child_cpu(self.child.id());
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// CPU seconds of the benchmark's child processes that have been stopped
/// (for the estimate of the machine's other load), in microseconds.
static CHILD_CPU_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Adds a child's CPU time, read just before it is stopped.
pub fn note_child_cpu(pid: u32) {
    if let Some(s) = cpu_secs(pid) {
        CHILD_CPU_US.fetch_add((s * 1e6) as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A snapshot for [`other_load`]: (busy CPU seconds of the whole machine,
/// CPU seconds of this process and of its stopped children, time).
pub fn load_snapshot() -> (f64, f64, std::time::Instant) {
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let busy = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<f64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system [idle iowait] irq softirq
            Some((f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?) / hz)
        })
        .unwrap_or(f64::NAN);
    let own = cpu_secs(std::process::id()).unwrap_or(f64::NAN)
        + CHILD_CPU_US.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
    (busy, own, std::time::Instant::now())
}

/// Average number of cores used by other processes between two snapshots
/// (user + system + irq + softirq time of the machine minus the benchmark's
/// own processes' user + system time; an estimate that errs high, since
/// softirq work done on the benchmark's behalf may count as "other").
pub fn other_load(a: (f64, f64, std::time::Instant), b: (f64, f64, std::time::Instant)) -> f64 {
    ((b.0 - a.0) - (b.1 - a.1)) / (b.2 - a.2).as_secs_f64()
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A "Key:   N kB" line of /proc/PID/status.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with(key))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// Raises RLIMIT_NOFILE (soft and, as root, hard) to at least `n`.
pub fn raise_nofile(n: u64) -> Result<u64> {
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if r.rlim_cur >= n {
            return Ok(r.rlim_cur);
        }
        let want = libc::rlimit {
            rlim_cur: n,
            rlim_max: r.rlim_max.max(n),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            // Not root: as far as the hard limit goes.
            let soft = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
            return Ok(r.rlim_max);
        }
        Ok(n)
    }
}
