//! Thread-per-core relay: `relay.worker_threads` threads (0 = one per core),
//! each running its own current-thread tokio runtime. Every relay listener has
//! one socket per worker, all bound to the same address with SO_REUSEPORT, so
//! the kernel spreads new connections over the workers and a connection's
//! accept, upstream connect, both relay directions and observer all run on the
//! thread that accepted it: no cross-thread wake-ups, no work stealing, no
//! contention on one listening socket (the design haproxy uses).
//!
//! The admin server, signals, reloads and the listeners' control loops stay on
//! the runtime that called [`super::Proxy::start`]; what they share with the
//! workers is behind `Arc` (metrics are atomics).

use std::io;
use std::thread;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// The relay worker threads; dropping the last handle stops them (their
/// runtimes are dropped with every connection still on them).
pub struct Workers {
    handles: Vec<Handle>,
    stop: CancellationToken,
}

impl Workers {
    /// Starts `n` worker threads (0 = one per available core).
    pub fn start(n: usize) -> io::Result<Workers> {
        let n = if n == 0 {
            thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            n
        };
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let stop = stop.clone();
            thread::Builder::new()
                .name(format!("fedproxy-relay-{i}"))
                .spawn(move || rt.block_on(stop.cancelled()))?;
        }
        Ok(Workers { handles, stop })
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Worker `i`'s runtime, to spawn a listener's accept loop on.
    pub fn handle(&self, i: usize) -> &Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Stops every worker: their runtimes end, closing whatever they still hold.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
