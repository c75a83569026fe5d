//! The load: Slurm-like clients driving the synthetic peer (directly or through
//! a proxy). Every reply is checked byte for byte against the captured one.

use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc::sync_channel;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use crate::frames::{Exchange, Frames};
use crate::peer::read_frame;

/// Result of a latency trial (one-shot RPCs or ping-pong).
#[derive(Clone, Debug, Default)]
pub struct LatencyTrial {
    /// Per-operation latency, nanoseconds.
    pub lat_ns: Vec<u64>,
    pub elapsed: Duration,
    pub errors: u64,
    /// Request + reply bytes carried.
    pub bytes: u64,
}

impl LatencyTrial {
    pub fn ops(&self) -> u64 {
        self.lat_ns.len() as u64
    }
    pub fn rate(&self) -> f64 {
        self.ops() as f64 / self.elapsed.as_secs_f64()
    }
    pub fn mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
    /// Percentile (0..=100) in microseconds.
    pub fn pct_us(&self, p: f64) -> f64 {
        let mut v = self.lat_ns.clone();
        v.sort_unstable();
        percentile_sorted(&v, p) / 1000.0
    }
}

pub fn percentile_sorted(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)] as f64
}

static SOURCE: OnceLock<IpAddr> = OnceLock::new();

/// Makes every client connection come from `ip` (e.g. 127.0.0.2), a loopback
/// address the proxies never use for their own upstream sockets. Call once,
/// before any workload.
pub fn set_client_source(ip: IpAddr) {
    let _ = SOURCE.set(ip);
}

/// A client connection (TCP_NODELAY, from the configured source address).
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = match SOURCE.get() {
        None => TcpStream::connect(addr)?,
        Some(ip) => {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            // Port chosen at connect() (per destination), not at bind().
            let one: libc::c_int = 1;
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            sock.bind(&SocketAddr::new(*ip, 0).into())?;
            sock.connect(&addr.into())?;
            sock.into()
        }
    };
    s.set_nodelay(true)?;
    // Nothing in a trial may hang: a lost reply is an error.
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Longest wait for one read or write of the load.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One RPC as a Slurm client makes it: connect, send the request (with its
/// credential), read the reply, close. Returns the latency.
pub fn rpc_once(addr: SocketAddr, ex: &Exchange, buf: &mut Vec<u8>) -> Result<Duration> {
    let t = Instant::now();
    let mut s = connect(addr).context("connect")?;
    s.write_all(&ex.request).context("send request")?;
    buf.resize(ex.reply.len(), 0);
    s.read_exact(buf).context("read reply")?;
    let d = t.elapsed();
    if *buf != ex.reply {
        bail!("reply differs from the captured one");
    }
    drop(s);
    Ok(d)
}

/// `clients` threads each making one-shot RPCs back to back for `dur`.
pub fn oneshot_trial(
    addr: SocketAddr,
    ex: &Exchange,
    clients: usize,
    dur: Duration,
) -> LatencyTrial {
    let start = Instant::now();
    let deadline = start + dur;
    let per: Vec<LatencyTrial> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..clients)
            .map(|_| {
                sc.spawn(move || {
                    let mut t = LatencyTrial {
                        lat_ns: Vec::with_capacity(1 << 14),
                        ..Default::default()
                    };
                    let mut buf = Vec::new();
                    while Instant::now() < deadline {
                        match rpc_once(addr, ex, &mut buf) {
                            Ok(d) => {
                                t.lat_ns.push(d.as_nanos() as u64);
                                t.bytes += (ex.request.len() + ex.reply.len()) as u64;
                            }
                            Err(_) => {
                                t.errors += 1;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    let mut all = LatencyTrial {
        elapsed,
        ..Default::default()
    };
    for t in per {
        all.lat_ns.extend(t.lat_ns);
        all.errors += t.errors;
        all.bytes += t.bytes;
    }
    all
}

/// Opens a federation persistent connection: PERSIST_INIT → PERSIST_RC.
pub fn open_persist(addr: SocketAddr, frames: &Frames) -> Result<TcpStream> {
    let mut s = connect(addr).context("connect")?;
    s.write_all(&frames.persist_init.request)?;
    let mut buf = vec![0u8; frames.persist_init.reply.len()];
    s.read_exact(&mut buf)?;
    if buf != frames.persist_init.reply {
        bail!("PERSIST_RC differs from the captured one");
    }
    Ok(s)
}

/// Ping-pong on one persistent connection: one CTLD_MULT_MSG, its reply, the
/// next (cycling through the captured ones), for `dur`.
pub fn pingpong_trial(addr: SocketAddr, frames: &Frames, dur: Duration) -> Result<LatencyTrial> {
    let mut s = open_persist(addr, frames)?;
    let mut r = BufReader::with_capacity(64 << 10, s.try_clone()?);
    let mut buf = Vec::with_capacity(4096);
    let mut t = LatencyTrial {
        lat_ns: Vec::with_capacity(1 << 16),
        ..Default::default()
    };
    let start = Instant::now();
    let deadline = start + dur;
    let mut i = 0;
    while Instant::now() < deadline {
        let ex = &frames.persist_msgs[i % frames.persist_msgs.len()];
        let t0 = Instant::now();
        s.write_all(&ex.request)?;
        if !read_frame(&mut r, &mut buf)? {
            bail!("EOF on the persistent connection");
        }
        t.lat_ns.push(t0.elapsed().as_nanos() as u64);
        if buf != ex.reply {
            bail!("reply differs from the captured one");
        }
        t.bytes += (ex.request.len() + ex.reply.len()) as u64;
        i += 1;
    }
    t.elapsed = start.elapsed();
    Ok(t)
}

/// Pipelined: one persistent connection with up to `window` frames in flight
/// (a writer thread and a reader thread), for `dur`.
pub fn pipelined_trial(
    addr: SocketAddr,
    frames: &Frames,
    window: usize,
    dur: Duration,
) -> Result<LatencyTrial> {
    let s = open_persist(addr, frames)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::with_capacity(256 << 10, s);
    // The reader holds one credit while it waits for that reply: window - 1 queued.
    let (credit_tx, credit_rx) = sync_channel::<usize>(window.max(2) - 1);
    let start = Instant::now();
    let deadline = start + dur;
    let msgs = &frames.persist_msgs;
    std::thread::scope(|sc| -> Result<LatencyTrial> {
        let writer = sc.spawn(move || -> Result<u64> {
            let mut i = 0usize;
            while Instant::now() < deadline {
                // Blocks while `window` frames are in flight.
                credit_tx.send(i).ok();
                w.write_all(&msgs[i % msgs.len()].request)?;
                i += 1;
            }
            Ok(i as u64)
        });
        let mut t = LatencyTrial::default();
        let mut buf = Vec::with_capacity(4096);
        while let Ok(i) = credit_rx.recv() {
            if !read_frame(&mut r, &mut buf)? {
                bail!("EOF on the persistent connection");
            }
            let ex = &msgs[i % msgs.len()];
            if buf != ex.reply {
                bail!("reply {i} differs from the captured one");
            }
            t.bytes += (ex.request.len() + ex.reply.len()) as u64;
            t.lat_ns.push(0);
        }
        t.elapsed = start.elapsed();
        let sent = writer.join().unwrap()?;
        if sent != t.ops() {
            bail!("sent {sent} frames, got {} replies", t.ops());
        }
        Ok(t)
    })
}

/// Opens `n` persistent connections (PERSIST_INIT → PERSIST_RC each) and
/// returns them, idle.
pub fn open_idle(addr: SocketAddr, frames: &Frames, n: usize) -> Result<Vec<TcpStream>> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        v.push(open_persist(addr, frames).with_context(|| format!("idle connection {i}"))?);
    }
    Ok(v)
}
