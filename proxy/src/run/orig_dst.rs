//! The original destination of a REDIRECTed connection: `getsockopt(SOL_IP,
//! SO_ORIGINAL_DST)` for IPv4, `getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST)` for
//! IPv6 (netfilter's conntrack answers both), through socket2.

use std::io;
use std::net::SocketAddr;

use socket2::SockRef;
use tokio::net::TcpStream;

use super::addr::OrigDstAddr;

/// The destination the client originally connected to.
///
/// A connection that was not NATed has no record (`ENOENT`, or conntrack not
/// loaded): its original destination is the address it reached, i.e. the
/// listener's own local address — which the loop guard then refuses.
pub fn original_dst(stream: &TcpStream) -> io::Result<OrigDstAddr> {
    let local = stream.local_addr()?;
    let sock = SockRef::from(stream);
    // An AF_INET6 socket carries IPv4 clients as v4-mapped addresses; conntrack
    // knows them as IPv4, so ask by the address family of the connection itself.
    let v4 = match local {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    let first = if v4 {
        sock.original_dst_v4()
    } else {
        sock.original_dst_v6()
    };
    let got = match first {
        Err(e) if v4 && local.is_ipv6() && e.raw_os_error() == Some(libc_enoprotoopt()) => {
            sock.original_dst_v6()
        }
        other => other,
    };
    let dst = match got {
        Ok(addr) => addr.as_socket().map(canonical).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "original destination is not an IP address",
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(canonical(local)),
        Err(e) => Err(e),
    };
    dst.map(OrigDstAddr)
}

/// `::ffff:a.b.c.d` → `a.b.c.d`, so addresses compare the same whichever socket
/// family saw them.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => addr,
        },
        v4 => v4,
    }
}

const fn libc_enoprotoopt() -> i32 {
    92 // ENOPROTOOPT on Linux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn direct_connection_reports_its_own_destination() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        assert_eq!(original_dst(&s).unwrap(), OrigDstAddr(addr));
    }

    #[test]
    fn canonical_unmaps_v4() {
        let a: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        assert_eq!(canonical(a), "127.0.0.1:80".parse().unwrap());
        let b: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(canonical(b), b);
    }
}
