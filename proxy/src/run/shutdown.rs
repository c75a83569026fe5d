//! Graceful shutdown: on SIGTERM or SIGINT stop accepting, report `/ready` 503,
//! wait up to `relay.drain_timeout_ms` for open connections to finish, then exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Shared by listeners (stop accepting), connections (tracked) and the admin
/// server (`/ready`).
#[derive(Default)]
pub struct Drain {
    /// Cancelled when draining starts: accept loops end.
    stop_accepting: CancellationToken,
    /// Every relayed connection.
    connections: TaskTracker,
    ready: AtomicBool,
}

impl Drain {
    pub fn new() -> Drain {
        Drain::default()
    }

    /// Listeners are bound: `/ready` says 200 (unless draining).
    pub fn set_ready(&self) {
        if !self.is_draining() {
            self.ready.store(true, Ordering::SeqCst);
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.is_draining()
    }

    pub fn is_draining(&self) -> bool {
        self.stop_accepting.is_cancelled()
    }

    /// Starts draining: `/ready` turns 503 and accept loops stop.
    pub fn start(&self) {
        self.ready.store(false, Ordering::SeqCst);
        self.stop_accepting.cancel();
    }

    /// Resolves when draining starts.
    pub async fn started(&self) {
        self.stop_accepting.cancelled().await
    }

    pub fn tracker(&self) -> &TaskTracker {
        &self.connections
    }

    /// Relayed connections still open.
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }

    /// Waits for every tracked connection to end, at most `timeout`. True when
    /// all ended in time.
    pub async fn wait(&self, timeout: Duration) -> bool {
        self.connections.close();
        let open = self.connections.len();
        if open > 0 {
            info!(
                open,
                timeout_ms = timeout.as_millis() as u64,
                "draining: waiting for open connections"
            );
        }
        match tokio::time::timeout(timeout, self.connections.wait()).await {
            Ok(()) => true,
            Err(_) => {
                warn!(
                    still_open = self.connections.len(),
                    "drain timeout reached; closing the remaining connections"
                );
                false
            }
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP handlers, installed when created (so a signal that
/// arrives during start-up is not lost to the default action, which for SIGHUP
/// is to kill the process).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Shutdown(&'static str),
    Reload,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next request: a shutdown (SIGTERM, SIGINT) or a reload (SIGHUP).
    pub async fn request(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Shutdown("SIGTERM"),
            _ = self.int.recv() => Request::Shutdown("SIGINT"),
            _ = self.hup.recv() => Request::Reload,
        }
    }

    /// The next SIGTERM or SIGINT, by name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
