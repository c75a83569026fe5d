//! The one relay: full duplex, each direction its own pump.
//!
//! * **Backpressure**: a direction reads again only after everything it read has
//!   been written to the other side; a slow reader stalls its writer at the
//!   kernel socket buffers, never in the proxy, and never the other direction.
//! * **Half-close**: EOF on one side shuts down writing on the other; the other
//!   direction keeps going until it ends too.
//! * **Latency**: each read is written at once (TCP_NODELAY is set on both sockets).
//! * **Memory**: a direction holds its read buffer only while bytes are moving;
//!   an idle connection holds no buffer at all.
//! * **Observation**: the observer is fed each chunk *before* it is forwarded (so
//!   the codec always sees a request before its reply), and its events are
//!   handled after the write.
//! * **Rewriting**: a connection to or from a legacy FLURM peer goes through a
//!   [`LegacyStage`]: the original bytes go to the stage, and what it returns is
//!   written on (and fed to the observer) instead. Everything above holds for it too.
//! * No idle timeout: federation persistent connections sit idle for hours. Only
//!   a partial frame has one (`relay.partial_idle_secs`): past it, that direction
//!   is relayed unobserved, never closed.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use flurm::{LegacyStage, Rewrite};
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
    /// The legacy stage refused a frame: the client got the refusal, both sides closed.
    pub refused: bool,
}

/// The two sockets of one relayed connection.
#[derive(Clone, Copy)]
pub struct Ends<'a> {
    pub client: &'a TcpStream,
    pub upstream: &'a TcpStream,
}

/// Relays until both directions have ended, or either fails or refuses (then both
/// sockets are dropped by the caller). `bytes` = the byte counters [c2s, s2c];
/// `stage` rewrites the frames of a legacy connection.
pub async fn relay(
    ends: Ends<'_>,
    observer: &Mutex<Observer>,
    stage: Option<&Mutex<LegacyStage>>,
    bytes: &[IntCounter; 2],
    buffer_size: usize,
) -> (Relayed, io::Result<()>) {
    let decoding = lock(observer).decoding();
    let ended = [AtomicBool::new(false), AtomicBool::new(false)];
    // See `Pump::drained`: only where no other thread runs this runtime's I/O driver.
    let short_read_drains = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let pump = |dir: Direction| Pump {
        ends,
        dir,
        observer,
        decoding,
        short_read_drains,
        stage,
        counter: &bytes[dir.index()],
        ended: &ended,
        total: 0,
    };
    // Pinned where they are built: a future moved into a pinned local is laid
    // out twice in this function's state (every idle connection carries it).
    let mut c2s = std::pin::pin!(pump(Direction::ClientToServer).run(buffer_size));
    let mut s2c = std::pin::pin!(pump(Direction::ServerToClient).run(buffer_size));
    let mut done = Relayed::default();
    let (mut c2s_done, mut s2c_done) = (false, false);
    while !(c2s_done && s2c_done) {
        let (dir, (n, end)) = tokio::select! {
            r = &mut c2s, if !c2s_done => { c2s_done = true; (0, r) }
            r = &mut s2c, if !s2c_done => { s2c_done = true; (1, r) }
        };
        done.bytes[dir] = n;
        match end {
            Ok(PumpEnd::Eof) => {}
            Ok(PumpEnd::Refused) => {
                done.refused = true;
                return (done, Ok(()));
            }
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// Why a direction stopped (without an I/O error).
enum PumpEnd {
    /// Its source ended (or its destination went away).
    Eof,
    /// The legacy stage refused a frame; both sides are shut down.
    Refused,
}

/// One direction: read from the source, feed the observer, write to the destination.
struct Pump<'a> {
    ends: Ends<'a>,
    dir: Direction,
    observer: &'a Mutex<Observer>,
    decoding: bool,
    /// A read shorter than the buffer emptied the socket: skip the read that
    /// would only say EAGAIN (see [`Pump::drained`]).
    short_read_drains: bool,
    stage: Option<&'a Mutex<LegacyStage>>,
    counter: &'a IntCounter,
    ended: &'a [AtomicBool; 2],
    /// Bytes written to the destination.
    total: u64,
}

impl Pump<'_> {
    fn src(&self) -> &TcpStream {
        match self.dir {
            Direction::ClientToServer => self.ends.client,
            Direction::ServerToClient => self.ends.upstream,
        }
    }

    fn dst(&self) -> &TcpStream {
        match self.dir {
            Direction::ClientToServer => self.ends.upstream,
            Direction::ServerToClient => self.ends.client,
        }
    }

    /// Returns the bytes written and how the direction ended.
    async fn run(mut self, buffer_size: usize) -> (u64, io::Result<PumpEnd>) {
        let r = self.pump(buffer_size).await;
        (self.total, r)
    }

    async fn pump(&mut self, buffer_size: usize) -> io::Result<PumpEnd> {
        loop {
            // Idle: no buffer held while waiting. A partial frame may wait only
            // so long (relay.partial_idle_secs), then the direction goes unobserved.
            let limit = if self.decoding {
                lock(self.observer).partial_idle_limit(self.dir)
            } else {
                None
            };
            match limit {
                None => self.src().readable().await?,
                Some(limit) => match tokio::time::timeout(limit, self.src().readable()).await {
                    Ok(ready) => ready?,
                    Err(_) => {
                        self.decoding = self.observe(|o, dir| o.idle_partial(dir)).unwrap_or(false);
                        continue;
                    }
                },
            }
            let mut buf = buffers::take(buffer_size);
            loop {
                buf.clear();
                let n = match self.src().try_read_buf(&mut buf) {
                    // Boxed, as is the legacy path below: rare paths must not
                    // grow every idle connection's task (the pump's state is
                    // as large as its largest await).
                    Ok(0) => return Box::pin(self.on_eof()).await,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let flow = match self.stage {
                    None => self.forward(&buf[..n]).await?,
                    Some(stage) => {
                        let rewrite = lock(stage).on_bytes(self.dir, &buf[..n]);
                        Box::pin(self.deliver(rewrite)).await?
                    }
                };
                if let Some(end) = flow {
                    buffers::give_back(buf);
                    return Ok(end);
                }
                if n < buffer_size && self.drained() {
                    break;
                }
                // try_read/try_write do not count against tokio's budget: yield now
                // and then so one busy connection cannot starve the others.
                tokio::task::consume_budget().await;
            }
            buffers::give_back(buf);
            if self.decoding {
                self.decoding = self.observe(|o, dir| o.idle(dir)).unwrap_or(false);
            }
        }
    }

    /// After a read shorter than the buffer (the socket had no more bytes):
    /// marks the source not readable without the read that would say EAGAIN
    /// (one syscall per message and direction saved; haproxy does the same).
    /// Sound only on a current-thread runtime: its I/O driver cannot run between
    /// that read and this, so the readiness cleared is the one the read
    /// consumed, and bytes arriving after the read raise a new edge (epoll is
    /// edge-triggered) that the driver turns into a new readiness. True when
    /// cleared.
    fn drained(&self) -> bool {
        self.short_read_drains
            && self
                .src()
                .try_io(tokio::io::Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                })
                .is_err()
    }

    /// Bytes passed on unchanged: observed, written, their events handled.
    /// `Some` when the direction is over.
    async fn forward(&mut self, chunk: &[u8]) -> io::Result<Option<PumpEnd>> {
        if self.decoding && self.observe(|o, dir| o.feed(dir, chunk)).is_err() {
            self.decoding = false;
        }
        let end = self.write(chunk).await?;
        if self.decoding {
            self.decoding = self.observe(|o, dir| o.handle(dir)).unwrap_or(false);
        }
        Ok(end)
    }

    /// What the legacy stage made of a chunk: the observer sees the Slurm side,
    /// the rewritten bytes go on, a refusal goes to the client and ends both sides.
    async fn deliver(&mut self, rewrite: Rewrite) -> io::Result<Option<PumpEnd>> {
        for (dir, bytes) in &rewrite.observe {
            if self.decoding {
                let fed = self.observe(|o, _| {
                    o.feed(*dir, bytes);
                    o.handle(*dir);
                });
                self.decoding = fed.unwrap_or(false);
            }
        }
        if let Some(end) = self.write(&rewrite.forward).await? {
            return Ok(Some(end));
        }
        let Some(refusal) = rewrite.refuse else {
            return Ok(None);
        };
        write_all(self.ends.client, &refusal).await?;
        for end in [self.ends.client, self.ends.upstream] {
            let _ = SockRef::from(end).shutdown(Shutdown::Write);
        }
        Ok(Some(PumpEnd::Refused))
    }

    /// Writes to the destination and counts. `Some(Eof)` when the destination is gone.
    async fn write(&mut self, data: &[u8]) -> io::Result<Option<PumpEnd>> {
        if data.is_empty() {
            return Ok(None);
        }
        if let Err(e) = write_all(self.dst(), data).await {
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) {
                // The destination is gone: end this direction only, so that
                // bytes still flowing the other way (a reply) are delivered.
                self.ended[self.dir.index()].store(true, Ordering::Release);
                return Ok(Some(PumpEnd::Eof));
            }
            return Err(e);
        }
        self.total += data.len() as u64;
        self.counter.inc_by(data.len() as u64);
        Ok(None)
    }

    /// EOF from the source: a partial frame held by the stage goes on as it is,
    /// then the half-close is passed on.
    async fn on_eof(&mut self) -> io::Result<PumpEnd> {
        if let Some(stage) = self.stage {
            let rest = lock(stage).on_eof(self.dir);
            if let Some(end) = self.deliver(rest).await? {
                return Ok(end);
            }
        }
        if self.decoding {
            // A frame cut off by the end of the stream is counted (`truncated`).
            let _ = self.observe(|o, dir| {
                o.eof(dir);
                o.handle(dir);
            });
        }
        self.ended[self.dir.index()].store(true, Ordering::Release);
        if self.ended[self.dir.reverse().index()].load(Ordering::Acquire) {
            // Both directions are over: closing the sockets sends the FINs.
            return Ok(PumpEnd::Eof);
        }
        if read_closed(self.dst()) {
            // The destination has sent its FIN already (epoll said so; no
            // syscall): the other direction ends at its next read and closing
            // both sockets sends ours, so a shutdown() would be wasted.
            return Ok(PumpEnd::Eof);
        }
        // EOF: pass the half-close on; the other direction goes on.
        match SockRef::from(self.dst()).shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(PumpEnd::Eof),
        }
    }

    /// Runs `f` on the observer; a panic in decoding or metrics code must never
    /// reach the relay: the observer is switched off (and the panic counted), the
    /// bytes go on. Returns whether decoding is still on, or Err after a panic.
    fn observe(&self, f: impl FnOnce(&mut Observer, Direction)) -> Result<bool, ()> {
        let mut o = lock(self.observer);
        let dir = self.dir;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut o, dir))) {
            Ok(()) => Ok(o.decoding()),
            Err(_) => {
                o.disable_after_panic(dir);
                Err(())
            }
        }
    }
}

/// True when the runtime already knows that `s`'s peer has shut down its
/// sending side (read-closed readiness from epoll), asked without a syscall.
fn read_closed(s: &TcpStream) -> bool {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let ready = std::pin::pin!(s.ready(tokio::io::Interest::READABLE));
    matches!(ready.poll(&mut cx), Poll::Ready(Ok(r)) if r.is_read_closed())
}

/// Read buffers, reused per thread: a buffer is held only while bytes move
/// (an idle connection holds none), and taking one is not a malloc.
mod buffers {
    use std::cell::RefCell;

    /// Free buffers kept per thread (a bounded few: idle memory stays flat).
    const KEEP: usize = 4;

    thread_local! {
        static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    pub fn take(size: usize) -> Vec<u8> {
        FREE.with(|f| f.borrow_mut().pop())
            .filter(|b| b.capacity() == size)
            .unwrap_or_else(|| Vec::with_capacity(size))
    }

    pub fn give_back(buf: Vec<u8>) {
        FREE.with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                f.push(buf);
            }
        });
    }
}

/// A poisoned lock must not stop a relay: the state is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
