//! Loop guard (defence in depth behind the iptables owner exemption). Two loops
//! are recognised before a connection is relayed:
//!
//! * **self_target** — the upstream would be one of the proxy's own listeners
//!   (e.g. a direct connection to the outbound port, whose original destination
//!   is that port itself). Relaying it would connect to ourselves, forever.
//! * **own_upstream** — the accepted connection *is* one the proxy itself opened
//!   upstream: the nat rules redirected the proxy's own connection back into it,
//!   i.e. the proxy is not exempt from the rules (its primary group is not
//!   `[rules] exempt_group`, or the rules lack the `owner --gid-owner` exemption). Recognised by the full
//!   address pair: the accepted connection's peer is the upstream socket's local
//!   address **and** its original destination is that socket's remote address
//!   (Linux gives one local port to several connections with different
//!   destinations, so the local address alone would refuse innocent clients).
//!
//! The upstream socket's addresses are registered right after its `connect()`
//! call and before the handshake is awaited, which leaves only the loopback
//! handshake inside that one syscall as a window; a loop that slips through once
//! is caught at its next hop, and the whole chain then closes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpStream;

use super::orig_dst::{canonical, original_dst};

/// Why a connection was refused (the `reason` label).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LoopReason {
    SelfTarget,
    OwnUpstream,
}

impl LoopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LoopReason::SelfTarget => "self_target",
            LoopReason::OwnUpstream => "own_upstream",
        }
    }
}

#[derive(Default)]
pub struct LoopGuard {
    /// Bound listener addresses (relay listeners and admin); replaced on reload.
    listeners: RwLock<Vec<SocketAddr>>,
    /// Upstream sockets the proxy has open: (local, remote) → how many (normally 1).
    own: Mutex<HashMap<(SocketAddr, SocketAddr), u32>>,
    /// The same, counted by local address only (the cheap first check on accept).
    own_local: Mutex<HashMap<SocketAddr, u32>>,
}

impl LoopGuard {
    pub fn new(listeners: Vec<SocketAddr>) -> LoopGuard {
        LoopGuard {
            listeners: RwLock::new(listeners.into_iter().map(canonical).collect()),
            own: Mutex::default(),
            own_local: Mutex::default(),
        }
    }

    /// The listeners bound after a configuration reload.
    pub fn set_listeners(&self, listeners: Vec<SocketAddr>) {
        *self.listeners.write().unwrap_or_else(|e| e.into_inner()) =
            listeners.into_iter().map(canonical).collect();
    }

    /// Would connecting to `dst` reach one of our own listeners?
    pub fn is_self_target(&self, dst: SocketAddr) -> bool {
        let dst = canonical(dst);
        let listeners = self.listeners.read().unwrap_or_else(|e| e.into_inner());
        listeners.iter().any(|l| {
            l.port() == dst.port()
                && (l.ip() == dst.ip()
                    || (l.ip().is_unspecified()
                        && same_family(l.ip(), dst.ip())
                        && is_local_ip(dst.ip())))
        })
    }

    /// Is the connection from `peer` to `dst` one of our own upstream connections?
    pub fn is_own_upstream(&self, peer: SocketAddr, dst: SocketAddr) -> bool {
        self.own
            .lock()
            .unwrap()
            .contains_key(&(canonical(peer), canonical(dst)))
    }

    /// The check made on every accepted connection, before anything else. The
    /// original destination is only read when the peer address matches the local
    /// address of one of our upstream sockets.
    pub fn check_accepted(&self, peer: SocketAddr, accepted: &TcpStream) -> Option<LoopReason> {
        let peer = canonical(peer);
        if !self.own_local.lock().unwrap().contains_key(&peer) {
            return None;
        }
        let dst = *original_dst(accepted).ok()?;
        self.is_own_upstream(peer, dst)
            .then_some(LoopReason::OwnUpstream)
    }

    /// Remembers an upstream socket's addresses until the guard is dropped.
    pub fn register(self: &Arc<Self>, local: SocketAddr, remote: SocketAddr) -> OwnUpstream {
        let key = (canonical(local), canonical(remote));
        *self.own.lock().unwrap().entry(key).or_insert(0) += 1;
        *self.own_local.lock().unwrap().entry(key.0).or_insert(0) += 1;
        OwnUpstream {
            guard: self.clone(),
            key,
        }
    }
}

/// Unregisters an upstream socket when the connection ends.
pub struct OwnUpstream {
    guard: Arc<LoopGuard>,
    key: (SocketAddr, SocketAddr),
}

impl std::fmt::Debug for OwnUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OwnUpstream")
            .field(&self.key.0)
            .field(&self.key.1)
            .finish()
    }
}

impl Drop for OwnUpstream {
    fn drop(&mut self) {
        fn release<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, u32>>, key: K) {
            let mut map = map.lock().unwrap();
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
        release(&self.guard.own, self.key);
        release(&self.guard.own_local, self.key.0);
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    // An unspecified IPv6 listener is usually dual-stack: it also takes IPv4.
    a.is_ipv6() || b.is_ipv4()
}

/// True when `ip` is an address of this host (binding to it succeeds).
fn is_local_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_targets() {
        let g = LoopGuard::new(vec![
            "0.0.0.0:16818".parse().unwrap(),
            "127.0.0.1:7001".parse().unwrap(),
        ]);
        assert!(g.is_self_target("127.0.0.1:16818".parse().unwrap()));
        assert!(g.is_self_target("127.0.0.1:7001".parse().unwrap()));
        assert!(g.is_self_target("[::ffff:127.0.0.1]:7001".parse().unwrap()));
        // A sibling's proxy on the same port elsewhere is not us (TEST-NET-3, not local).
        assert!(!g.is_self_target("203.0.113.9:16818".parse().unwrap()));
        assert!(!g.is_self_target("127.0.0.1:6817".parse().unwrap()));
        // 127.0.0.2:7001 does not reach a listener bound to 127.0.0.1 only.
        assert!(!g.is_self_target("127.0.0.2:7001".parse().unwrap()));
    }

    #[tokio::test]
    async fn own_upstream_needs_both_addresses() {
        let g = Arc::new(LoopGuard::new(vec![]));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dst = l.local_addr().unwrap();
        let _c = TcpStream::connect(dst).await.unwrap();
        let (accepted, peer) = l.accept().await.unwrap();
        assert_eq!(g.check_accepted(peer, &accepted), None);
        // An upstream socket with the same local address but another destination
        // (Linux shares local ports across destinations): not a loop.
        let other = g.register(peer, "127.0.0.1:6817".parse().unwrap());
        assert_eq!(g.check_accepted(peer, &accepted), None);
        // Same local address and this very destination: our own connection.
        let same = g.register(peer, dst);
        assert_eq!(
            g.check_accepted(peer, &accepted),
            Some(LoopReason::OwnUpstream)
        );
        drop(same);
        assert_eq!(g.check_accepted(peer, &accepted), None);
        drop(other);
        assert!(g.own.lock().unwrap().is_empty() && g.own_local.lock().unwrap().is_empty());
    }
}
