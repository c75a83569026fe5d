//! The synthetic Slurm peer: a std-thread server that answers each captured
//! request frame with the captured reply, byte for byte.
//!
//! A fixed pool of worker threads blocks in `accept()` on one listener (no
//! thread spawned per connection, no event loop: the cheapest, steadiest
//! server for latency). Like slurmctld, it closes a one-shot RPC connection
//! after its reply and keeps a persistent connection (opened by
//! REQUEST_PERSIST_INIT) open. In `hold` mode a worker hands a persistent
//! connection to a holding list after PERSIST_RC and goes back to accept, so
//! that thousands of idle connections cost no thread.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::frames::Exchange;

/// What the peer does after a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Close the connection (one-shot RPC, as slurmctld does).
    Close,
    /// Read the next frame (persistent connection).
    Continue,
    /// Continue, except in hold mode: park the idle connection.
    Persist,
}

#[derive(Clone, Debug)]
pub struct Answer {
    pub request: Vec<u8>,
    pub reply: Vec<u8>,
    pub after: After,
}

#[derive(Default, Debug)]
pub struct PeerStats {
    pub connections: AtomicU64,
    pub replies: AtomicU64,
    /// Frames that matched no captured request (the connection is closed).
    pub unknown: AtomicU64,
}

pub struct Peer {
    pub addr: SocketAddr,
    pub stats: Arc<PeerStats>,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    workers: Vec<JoinHandle<()>>,
}

/// The answers for a set of captured exchanges: the first one (the one-shot
/// RPC) closes, PERSIST_INIT persists, the rest continue.
pub fn answers(rpc: &Exchange, persist_init: &Exchange, persist_msgs: &[Exchange]) -> Vec<Answer> {
    let mut v = vec![
        Answer {
            request: rpc.request.clone(),
            reply: rpc.reply.clone(),
            after: After::Close,
        },
        Answer {
            request: persist_init.request.clone(),
            reply: persist_init.reply.clone(),
            after: After::Persist,
        },
    ];
    v.extend(persist_msgs.iter().map(|e| Answer {
        request: e.request.clone(),
        reply: e.reply.clone(),
        after: After::Continue,
    }));
    v
}

impl Peer {
    /// Listens on `bind` (port 0: any free port) with `workers` threads.
    pub fn start(
        bind: SocketAddr,
        answers: Vec<Answer>,
        workers: usize,
        hold: bool,
    ) -> io::Result<Peer> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let answers = Arc::new(answers);
        let stats = Arc::new(PeerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let l = listener.try_clone()?;
            let (answers, stats, stop, held) =
                (answers.clone(), stats.clone(), stop.clone(), held.clone());
            let h = std::thread::Builder::new()
                .name(format!("peer-{i}"))
                .stack_size(256 << 10)
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((s, _)) = l.accept() else { continue };
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        stats.connections.fetch_add(1, Ordering::Relaxed);
                        if let Some(s) = serve(s, &answers, &stats, hold) {
                            held.lock().unwrap().push(s);
                        }
                    }
                })?;
            handles.push(h);
        }
        Ok(Peer {
            addr,
            stats,
            stop,
            held,
            workers: handles,
        })
    }

    /// Connections parked in hold mode.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Closes the parked connections.
    pub fn release_held(&self) {
        self.held.lock().unwrap().clear();
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake every worker blocked in accept().
        for _ in 0..self.workers.len() {
            let _ = TcpStream::connect(self.addr);
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        self.release_held();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Serves one connection; returns it when it is to be parked (hold mode).
fn serve(s: TcpStream, answers: &[Answer], stats: &PeerStats, hold: bool) -> Option<TcpStream> {
    let _ = s.set_nodelay(true);
    let mut w = s.try_clone().ok()?;
    let mut r = BufReader::with_capacity(64 << 10, s);
    let mut buf = Vec::with_capacity(4096);
    loop {
        match read_frame(&mut r, &mut buf) {
            Ok(true) => {}
            _ => return None, // EOF or error: done
        }
        let Some(a) = answers
            .iter()
            .find(|a| a.request.len() == buf.len() && a.request == buf)
        else {
            stats.unknown.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if w.write_all(&a.reply).is_err() {
            return None;
        }
        stats.replies.fetch_add(1, Ordering::Relaxed);
        match a.after {
            After::Close => {
                let _ = w.shutdown(Shutdown::Both);
                return None;
            }
            After::Persist if hold => return Some(w),
            _ => {}
        }
    }
}

/// Reads one `u32 length ‖ payload` frame (prefix included) into `buf`.
/// Ok(false) on a clean EOF before the first byte.
pub fn read_frame<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > 64 << 20 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    buf.clear();
    buf.extend_from_slice(&len);
    buf.resize(4 + n, 0);
    r.read_exact(&mut buf[4..])?;
    Ok(true)
}
