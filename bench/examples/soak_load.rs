//! Load for `make soak` (scripts/soak): the bench's synthetic Slurm peer stands
//! for slurmctld, and for `--secs` seconds `--clients` threads make one-shot RPCs
//! (captured frames) through the proxy while `--persist` threads keep federation
//! persistent connections open and ping-pong CTLD_MULT_MSGs on them, re-opening
//! one only if it breaks. Every reply is compared with the captured one.
//! Prints "PEER addr" once listening, and a summary line at the end.
use anyhow::{bail, Context, Result};
use fedproxy_bench::client::{open_persist, rpc_once};
use fedproxy_bench::frames::{default_capture_dir, Frames};
use fedproxy_bench::peer::{answers, read_frame, Peer};
use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    peer: SocketAddr,
    target: SocketAddr,
    secs: u64,
    clients: usize,
    persist: usize,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        peer: "127.0.0.1:0".parse()?,
        target: "127.0.0.1:0".parse()?,
        secs: 60,
        clients: 4,
        persist: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--peer" => a.peer = v.parse()?,
            "--target" => a.target = v.parse()?,
            "--secs" => a.secs = v.parse()?,
            "--clients" => a.clients = v.parse()?,
            "--persist" => a.persist = v.parse()?,
            _ => bail!("unknown option {k} (--peer, --target, --secs, --clients, --persist)"),
        }
    }
    Ok(a)
}

/// One persistent connection's ping-pong until the deadline; the cycles it made.
fn persist_until(a: &Args, frames: &Frames, deadline: Instant) -> Result<u64> {
    let mut s = open_persist(a.target, frames)?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut buf = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let ex = &frames.persist_msgs[n as usize % frames.persist_msgs.len()];
        s.write_all(&ex.request)?;
        if !read_frame(&mut r, &mut buf)? {
            bail!("EOF on the persistent connection");
        }
        if buf != ex.reply {
            bail!("reply differs from the captured one");
        }
        n += 1;
        // federation traffic is a trickle, not a flood
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(n)
}

fn main() -> Result<()> {
    let a = parse()?;
    let frames = Frames::load(&default_capture_dir())?;
    let peer = Peer::start(
        a.peer,
        answers(&frames.rpc, &frames.persist_init, &frames.persist_msgs),
        a.clients + a.persist + 2,
        false,
    )?;
    println!("PEER {}", peer.addr);
    std::io::stdout().flush()?;
    // wait for the proxy in front of the peer
    let t = Instant::now();
    while std::net::TcpStream::connect(a.target).is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("nothing listens on {}", a.target);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let (rpcs, rpc_err, cycles, persist_err) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    std::thread::scope(|sc| {
        for _ in 0..a.clients {
            sc.spawn(|| {
                let mut buf = Vec::new();
                while Instant::now() < deadline {
                    match rpc_once(a.target, &frames.rpc, &mut buf) {
                        Ok(_) => rpcs.fetch_add(1, Ordering::Relaxed),
                        Err(_) => rpc_err.fetch_add(1, Ordering::Relaxed),
                    };
                    // steady load, not a saturation test: leaves the machine usable
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
        for _ in 0..a.persist {
            sc.spawn(|| {
                while Instant::now() < deadline {
                    match persist_until(&a, &frames, deadline) {
                        Ok(n) => cycles.fetch_add(n, Ordering::Relaxed),
                        Err(_) => persist_err.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    println!(
        "SUMMARY rpcs={} rpc_errors={} persist_cycles={} persist_errors={}",
        rpcs.into_inner(),
        rpc_err.into_inner(),
        cycles.into_inner(),
        persist_err.into_inner()
    );
    peer.stop();
    Ok(())
}
