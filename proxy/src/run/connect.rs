//! Upstream connects: non-blocking `connect()` through socket2 so that the local
//! address can be registered with the loop guard before the handshake is awaited,
//! then the connect timeout, TCP_NODELAY and keepalive.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::TcpStream;

use super::loop_guard::{LoopGuard, OwnUpstream};

/// Why an upstream connect failed; `reason()` is the metric label.
#[derive(Debug)]
pub enum ConnectError {
    Timeout(Duration),
    Io(io::Error),
}

impl ConnectError {
    pub fn reason(&self) -> &'static str {
        match self {
            ConnectError::Timeout(_) => "timeout",
            ConnectError::Io(e) => match e.kind() {
                io::ErrorKind::ConnectionRefused => "refused",
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable",
                io::ErrorKind::ConnectionReset => "reset",
                io::ErrorKind::AddrNotAvailable => "addr_not_available",
                _ => "other",
            },
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout(d) => write!(
                f,
                "no answer within {} ms (relay.connect_timeout_ms)",
                d.as_millis()
            ),
            ConnectError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Connects to `dst` within `timeout`.
pub async fn connect(
    dst: SocketAddr,
    timeout: Duration,
    guard: &Arc<LoopGuard>,
) -> Result<(TcpStream, OwnUpstream), ConnectError> {
    let sock = Socket::new(
        Domain::for_address(dst),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(ConnectError::Io)?;
    match sock.connect(&dst.into()) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(ConnectError::Io(e)),
    }
    // The kernel chose the local address in connect(): register it now, before
    // a redirected copy of this very connection can be accepted and checked.
    let local = sock
        .local_addr()
        .map_err(ConnectError::Io)?
        .as_socket()
        .ok_or_else(|| {
            ConnectError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "local address is not IP",
            ))
        })?;
    let own = guard.register(local, dst);
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock)).map_err(ConnectError::Io)?;
    let established = async {
        stream.writable().await?;
        match stream.take_error()? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    };
    match tokio::time::timeout(timeout, established).await {
        Err(_) => Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => Err(ConnectError::Io(e)),
        Ok(Ok(())) => {
            // A socket can be writable but not connected when the peer vanished.
            stream.peer_addr().map_err(ConnectError::Io)?;
            Ok((stream, own))
        }
    }
}

const EINPROGRESS: i32 = 115;

/// TCP_NODELAY (Slurm sends one message in several small writes) and keepalive
/// (a vanished peer is noticed; there is no idle timeout).
pub fn tune(stream: &TcpStream, keepalive_secs: u64) {
    let _ = stream.set_nodelay(true);
    if keepalive_secs > 0 {
        let ka = TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive_secs))
            .with_interval(Duration::from_secs(keepalive_secs.div_ceil(6).max(1)))
            .with_retries(6);
        let _ = SockRef::from(stream).set_tcp_keepalive(&ka);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_and_registered() {
        let guard = Arc::new(LoopGuard::new(vec![]));
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let e = connect(addr, Duration::from_secs(5), &guard)
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "refused", "{e}");

        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (s, own) = connect(live.local_addr().unwrap(), Duration::from_secs(5), &guard)
            .await
            .unwrap();
        let local = s.local_addr().unwrap();
        let (_a, peer) = live.accept().await.unwrap();
        assert_eq!(peer, local);
        assert!(guard.is_own_upstream(peer, live.local_addr().unwrap()));
        drop(own);
        assert!(!guard.is_own_upstream(peer, live.local_addr().unwrap()));
    }
}
