//! The byte relay: full duplex, the original bytes forwarded unchanged.
//!
//! * **Backpressure**: a direction reads again only after everything it read has
//!   been written to the other side; a slow reader stalls its writer at the
//!   kernel socket buffers, never in the proxy.
//! * **Half-close**: EOF on one side shuts down writing on the other; the other
//!   direction keeps going until it ends too.
//! * **Latency**: each read is written at once (TCP_NODELAY is set on both sockets).
//! * **Memory**: a direction holds its read buffer only while bytes are moving;
//!   an idle connection holds no buffer at all.
//! * **Observation**: the observer is fed each chunk *before* it is forwarded (so
//!   the codec always sees a request before its reply), and its events are
//!   handled after the write.
//! * No idle timeout: federation persistent connections sit idle for hours.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use prometheus::IntCounter;
use slurm_codec::Direction;
use socket2::SockRef;
use tokio::net::TcpStream;

use super::observe::Observer;

/// How one relayed connection ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// Bytes forwarded client → upstream and upstream → client.
    pub bytes: [u64; 2],
}

/// Relays until both directions have ended, or either fails (then both sockets
/// are dropped by the caller). `bytes` = the byte counters [c2s, s2c].
pub async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    observer: &Mutex<Observer>,
    bytes: &[IntCounter; 2],
    buffer_size: usize,
) -> (Relayed, io::Result<()>) {
    let decoding = observer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .decoding();
    let mut done = Relayed::default();
    let ended = [AtomicBool::new(false), AtomicBool::new(false)];
    let c2s = pump(
        client,
        upstream,
        Direction::ClientToServer,
        observer,
        decoding,
        &bytes[0],
        buffer_size,
        &ended,
    );
    let s2c = pump(
        upstream,
        client,
        Direction::ServerToClient,
        observer,
        decoding,
        &bytes[1],
        buffer_size,
        &ended,
    );
    tokio::pin!(c2s, s2c);
    let (mut c2s_done, mut s2c_done) = (false, false);
    while !(c2s_done && s2c_done) {
        let (dir, (n, r)) = tokio::select! {
            r = &mut c2s, if !c2s_done => { c2s_done = true; (0, r) }
            r = &mut s2c, if !s2c_done => { s2c_done = true; (1, r) }
        };
        done.bytes[dir] = n;
        if r.is_err() {
            return (done, r);
        }
    }
    (done, Ok(()))
}

/// One direction: read from `src`, feed the observer, write to `dst`.
async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    dir: Direction,
    observer: &Mutex<Observer>,
    mut decoding: bool,
    counter: &IntCounter,
    buffer_size: usize,
    ended: &[AtomicBool; 2],
) -> (u64, io::Result<()>) {
    let mut total = 0u64;
    loop {
        // Idle: no buffer held while waiting.
        if let Err(e) = src.readable().await {
            return (total, Err(e));
        }
        let mut buf: Vec<u8> = Vec::with_capacity(buffer_size);
        loop {
            buf.clear();
            let n = match src.try_read_buf(&mut buf) {
                Ok(0) => {
                    ended[dir.index()].store(true, Ordering::Release);
                    if ended[dir.reverse().index()].load(Ordering::Acquire) {
                        // Both directions are over: closing the sockets sends the FINs.
                        return (total, Ok(()));
                    }
                    // EOF: pass the half-close on; the other direction goes on.
                    let r = match SockRef::from(dst).shutdown(Shutdown::Write) {
                        Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
                        _ => Ok(()),
                    };
                    return (total, r);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (total, Err(e)),
            };
            if decoding && observe(observer, dir, |o| o.feed(dir, &buf[..n])).is_err() {
                decoding = false;
            }
            if let Err(e) = write_all(dst, &buf[..n]).await {
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) {
                    // The destination is gone: end this direction only, so that
                    // bytes still flowing the other way (a reply) are delivered.
                    ended[dir.index()].store(true, Ordering::Release);
                    return (total, Ok(()));
                }
                return (total, Err(e));
            }
            total += n as u64;
            counter.inc_by(n as u64);
            if decoding {
                decoding = observe(observer, dir, |o| o.handle(dir)).unwrap_or(false);
            }
            // try_read/try_write do not count against tokio's budget: yield now
            // and then so one busy connection cannot starve the others.
            tokio::task::consume_budget().await;
        }
        drop(buf);
        if decoding {
            decoding = observe(observer, dir, |o| o.idle(dir)).unwrap_or(false);
        }
    }
}

/// Runs `f` on the observer; a panic in decoding or metrics code must never reach
/// the relay: the observer is switched off (and the panic counted), the bytes go on.
/// Returns whether decoding is still on, or Err after a panic.
fn observe(
    observer: &Mutex<Observer>,
    dir: Direction,
    f: impl FnOnce(&mut Observer),
) -> Result<bool, ()> {
    let mut o = observer.lock().unwrap_or_else(|e| e.into_inner());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut o))) {
        Ok(()) => Ok(o.decoding()),
        Err(_) => {
            o.disable_after_panic(dir);
            Err(())
        }
    }
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
