//! Upstream connects: non-blocking `connect()` through socket2 so that the local
//! address can be registered with the loop guard before the handshake is awaited,
//! then the connect timeout, TCP_NODELAY and keepalive.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::TcpStream;

use super::addr::{ClientAddr, UpstreamAddr};
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

/// Connects to `dst` within `timeout`. With `source`, the connection leaves from
/// that address (IP_TRANSPARENT, needs CAP_NET_ADMIN): a transparent inbound proxy
/// connects to slurmctld from the client's own address, so slurmctld sees who
/// called (22.05 learns a returning sibling's address from its connection).
pub async fn connect(
    dst: UpstreamAddr,
    source: Option<ClientAddr>,
    timeout: Duration,
    guard: &Arc<LoopGuard>,
) -> Result<(TcpStream, OwnUpstream), ConnectError> {
    let new_socket = || {
        Socket::new(
            Domain::for_address(*dst),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )
        .map_err(ConnectError::Io)
    };
    let mut sock = new_socket()?;
    if let Some(client) = source {
        let ip = client.ip();
        let transparent = match ip {
            std::net::IpAddr::V4(_) => sock.set_ip_transparent_v4(true),
            std::net::IpAddr::V6(_) => sock.set_ip_transparent_v6(true),
        };
        transparent.map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (inbound.transparent needs CAP_NET_ADMIN)"
            } else {
                ""
            };
            ConnectError::Io(io::Error::new(
                e.kind(),
                format!("IP_TRANSPARENT: {e}{hint}"),
            ))
        })?;
        if ip.is_ipv4() != dst.is_ipv4() {
            return Err(ConnectError::Io(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("inbound.transparent: client {ip} and upstream {dst} are of different address families"),
            )));
        }
        sock.bind(&SocketAddr::new(ip, 0).into())
            .map_err(ConnectError::Io)?;
        // The client's own port would give our SYN the tuple of the client's
        // redirected connection (conntrack would send it back to us): pick again.
        if sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            == Some(client.port())
        {
            let again = new_socket()?;
            let _ = if ip.is_ipv4() {
                again.set_ip_transparent_v4(true)
            } else {
                again.set_ip_transparent_v6(true)
            };
            again
                .bind(&SocketAddr::new(ip, 0).into())
                .map_err(ConnectError::Io)?;
            sock = again; // bound while the first still held that port: a different one
        }
    }
    // Latency: Slurm writes a message in several small send()s.
    let _ = sock.set_tcp_nodelay(true);
    match sock.connect(&(*dst).into()) {
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
    let own = guard.register(local, *dst);
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock)).map_err(ConnectError::Io)?;
    let established = async {
        let ready = stream.ready(tokio::io::Interest::WRITABLE).await?;
        // Writable without an error or hang-up is connected: no SO_ERROR
        // query (a syscall per connection) unless the connect may have failed.
        if ready.is_error() || ready.is_write_closed() {
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, established).await {
        Err(_) => Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => Err(ConnectError::Io(e)),
        Ok(Ok(())) => Ok((stream, own)),
    }
}

const EINPROGRESS: i32 = libc::EINPROGRESS;

/// TCP_NODELAY (Slurm sends one message in several small writes) and keepalive
/// (a vanished peer is noticed; there is no idle timeout).
/// TCP_NODELAY and keepalive on a listening socket: Linux copies both to every
/// accepted connection (no per-connection syscalls).
pub fn tune(sock: SockRef<'_>, keepalive_secs: u64) {
    let _ = sock.set_tcp_nodelay(true);
    set_keepalive(sock, keepalive_secs);
}

/// TCP keepalive (0 = off), so that a vanished peer of an idle federation
/// connection is noticed. Not needed toward loopback: the local slurmctld's
/// death resets the connection at once.
pub fn set_keepalive(sock: SockRef<'_>, keepalive_secs: u64) {
    if keepalive_secs > 0 {
        let ka = TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive_secs))
            .with_interval(Duration::from_secs(keepalive_secs.div_ceil(6).max(1)))
            .with_retries(6);
        let _ = sock.set_tcp_keepalive(&ka);
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
        let e = connect(UpstreamAddr(addr), None, Duration::from_secs(5), &guard)
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "refused", "{e}");

        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (s, own) = connect(
            UpstreamAddr(live.local_addr().unwrap()),
            None,
            Duration::from_secs(5),
            &guard,
        )
        .await
        .unwrap();
        let local = s.local_addr().unwrap();
        let (_a, peer) = live.accept().await.unwrap();
        assert_eq!(peer, local);
        assert!(guard.is_own_upstream(peer, live.local_addr().unwrap()));
        drop(own);
        assert!(!guard.is_own_upstream(peer, live.local_addr().unwrap()));
    }

    #[tokio::test]
    async fn accepted_connections_inherit_nodelay_and_keepalive_from_the_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tune(SockRef::from(&l), 60);
        let _c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (a, _) = l.accept().await.unwrap();
        let s = SockRef::from(&a);
        assert!(s.tcp_nodelay().unwrap());
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn transparent_source_without_cap_net_admin_is_a_clear_error_or_works() {
        // As root (CAP_NET_ADMIN) the bind to a local address works; the message
        // names the capability otherwise.
        let guard = Arc::new(LoopGuard::new(vec![]));
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let src: SocketAddr = "127.0.0.9:40000".parse().unwrap();
        match connect(
            UpstreamAddr(live.local_addr().unwrap()),
            Some(ClientAddr(src)),
            Duration::from_secs(5),
            &guard,
        )
        .await
        {
            Ok((s, _)) => assert_eq!(s.local_addr().unwrap().ip(), src.ip()),
            Err(e) => assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}"),
        }
    }
}
