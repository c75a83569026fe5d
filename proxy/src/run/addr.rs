//! The three addresses of one relayed connection, as types (after
//! linkerd2-proxy's `ClientAddr`/`OrigDstAddr`): a function that takes a client
//! and an upstream cannot be handed them the wrong way round.
//!
//! Each derefs to its `SocketAddr`, so reading one (`ip()`, `port()`, `{}`)
//! needs no unwrapping; making one is explicit.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;

macro_rules! addr_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub SocketAddr);

        impl Deref for $name {
            type Target = SocketAddr;
            fn deref(&self) -> &SocketAddr {
                &self.0
            }
        }

        impl From<$name> for SocketAddr {
            fn from(a: $name) -> SocketAddr {
                a.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

addr_newtype!(
    /// The accepted connection's peer (canonical: IPv4 clients never v4-mapped).
    ClientAddr
);
addr_newtype!(
    /// Where the client connected before iptables redirected it to the outbound
    /// listener (SO_ORIGINAL_DST).
    OrigDstAddr
);
addr_newtype!(
    /// Where the proxy connects: a listener's fixed upstream, or the original
    /// destination.
    UpstreamAddr
);

/// An outbound listener relays to where the client meant to go.
impl From<OrigDstAddr> for UpstreamAddr {
    fn from(a: OrigDstAddr) -> UpstreamAddr {
        UpstreamAddr(a.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_through_and_converts() {
        let a: SocketAddr = "10.0.0.1:6817".parse().unwrap();
        let up = UpstreamAddr::from(OrigDstAddr(a));
        assert_eq!(up.port(), 6817);
        assert_eq!(up.to_string(), "10.0.0.1:6817");
        assert_eq!(SocketAddr::from(up), a);
        assert_eq!(format!("{}", ClientAddr(a)), format!("{a}"));
    }
}
