//! Loop guard (defence in depth behind the iptables owner exemption). Two loops
//! are recognised before a connection is relayed:
//!
//! * **self_target** — the upstream would be one of the proxy's own listeners
//!   (e.g. a direct connection to the outbound port, whose original destination
//!   is that port itself). Relaying it would connect to ourselves, forever.
//! * **own_upstream** — the accepted connection comes *from* a socket the proxy
//!   itself opened upstream: the nat rules redirected the proxy's own connection
//!   back into it, i.e. the `-m owner --uid-owner` exemption is missing.
//!
//! The upstream socket's local address is registered right after its `connect()`
//! call and before the handshake is awaited, which leaves only the loopback
//! handshake inside that one syscall as a window; a loop that slips through once
//! is caught at its next hop, and the whole chain then closes.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use super::orig_dst::canonical;

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
    /// Bound listener addresses (relay listeners and admin).
    listeners: Vec<SocketAddr>,
    /// Local addresses of upstream sockets the proxy has open.
    own: Mutex<HashSet<SocketAddr>>,
}

impl LoopGuard {
    pub fn new(listeners: Vec<SocketAddr>) -> LoopGuard {
        LoopGuard { listeners: listeners.into_iter().map(canonical).collect(), own: Mutex::default() }
    }

    /// Would connecting to `dst` reach one of our own listeners?
    pub fn is_self_target(&self, dst: SocketAddr) -> bool {
        let dst = canonical(dst);
        self.listeners.iter().any(|l| {
            l.port() == dst.port()
                && (l.ip() == dst.ip() || (l.ip().is_unspecified() && same_family(l.ip(), dst.ip()) && is_local_ip(dst.ip())))
        })
    }

    /// Is `peer` the local end of one of our own upstream connections?
    pub fn is_own_upstream(&self, peer: SocketAddr) -> bool {
        self.own.lock().unwrap().contains(&canonical(peer))
    }

    /// The check made on every accepted connection, before anything else.
    pub fn check_accepted(&self, peer: SocketAddr) -> Option<LoopReason> {
        self.is_own_upstream(peer).then_some(LoopReason::OwnUpstream)
    }

    /// Remembers an upstream socket's local address until the guard is dropped.
    pub fn register(self: &Arc<Self>, local: SocketAddr) -> OwnUpstream {
        let local = canonical(local);
        self.own.lock().unwrap().insert(local);
        OwnUpstream { guard: self.clone(), local }
    }
}

/// Unregisters an upstream local address when the connection ends.
pub struct OwnUpstream {
    guard: Arc<LoopGuard>,
    local: SocketAddr,
}

impl std::fmt::Debug for OwnUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OwnUpstream").field(&self.local).finish()
    }
}

impl Drop for OwnUpstream {
    fn drop(&mut self) {
        self.guard.own.lock().unwrap().remove(&self.local);
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
        let g = LoopGuard::new(vec!["0.0.0.0:16818".parse().unwrap(), "127.0.0.1:7001".parse().unwrap()]);
        assert!(g.is_self_target("127.0.0.1:16818".parse().unwrap()));
        assert!(g.is_self_target("127.0.0.1:7001".parse().unwrap()));
        assert!(g.is_self_target("[::ffff:127.0.0.1]:7001".parse().unwrap()));
        // A sibling's proxy on the same port elsewhere is not us (TEST-NET-3, not local).
        assert!(!g.is_self_target("203.0.113.9:16818".parse().unwrap()));
        assert!(!g.is_self_target("127.0.0.1:6817".parse().unwrap()));
        // 127.0.0.2:7001 does not reach a listener bound to 127.0.0.1 only.
        assert!(!g.is_self_target("127.0.0.2:7001".parse().unwrap()));
    }

    #[test]
    fn own_upstreams_are_registered_while_open() {
        let g = Arc::new(LoopGuard::new(vec![]));
        let a: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let reg = g.register(a);
        assert_eq!(g.check_accepted(a), Some(LoopReason::OwnUpstream));
        assert_eq!(g.check_accepted("10.1.2.3:40001".parse().unwrap()), None);
        drop(reg);
        assert_eq!(g.check_accepted(a), None);
    }
}
