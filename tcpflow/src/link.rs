//! Link layer → IP → TCP, using etherparse.
//!
//! etherparse slices Ethernet (with VLAN tags), Linux SLL, IPv4/IPv6 (with
//! IPv6 extension headers) and TCP. We only add the link headers it does not
//! know (SLL2, BSD NULL/LOOP) and map the result to what the reassembler needs.
//! The "lax" slicer is used so that a packet cut short by the snap length
//! still yields the TCP bytes that were captured.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    EtherType, LaxNetSlice, LaxSlicedPacket, LinuxSllProtocolType, LinuxSllSlice, TransportSlice,
};

/// LINKTYPE_* values we understand (see tcpdump.org/linktypes.html).
pub(crate) mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// DLT_RAW as numbered on OpenBSD / BSD/OS: raw IP.
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// The TCP facts the connection table needs from one packet.
#[derive(Debug, Clone)]
pub(crate) struct TcpPacket<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    /// Acknowledgment number when the ACK flag is set.
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// TCP payload as captured (shorter than sent if the snap length cut it).
    pub payload: &'a [u8],
}

/// What one captured packet turned out to be.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    Tcp(TcpPacket<'a>),
    /// An IP fragment: TCP cannot be read without defragmenting, which we don't do.
    Fragment,
    /// A well-formed packet that is not TCP over IP (ARP, UDP, ICMP, ...).
    NotTcp,
    UnsupportedLinktype,
    /// Headers that etherparse could not slice (too short, bad IP version, ...).
    Malformed,
}

/// Address families seen in the 4-byte NULL/LOOP header.
fn family_is_ip(family: u32) -> bool {
    // 2 = AF_INET everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (Darwin).
    matches!(family, 2 | 24 | 28 | 30)
}

pub(crate) fn decode(linktype: u32, data: &[u8]) -> Decoded<'_> {
    use linktype::*;
    let sliced = match linktype {
        ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
            Ok(s) => s,
            Err(_) => return Decoded::Malformed,
        },
        RAW | RAW_OPENBSD | RAW_BSDOS | IPV4 | IPV6 => match LaxSlicedPacket::from_ip(data) {
            Ok(s) => s,
            Err(_) => return Decoded::Malformed,
        },
        NULL | LOOP => {
            let Some(head) = data.get(..4) else {
                return Decoded::Malformed;
            };
            let head: [u8; 4] = [head[0], head[1], head[2], head[3]];
            // NULL is in the capturing host's byte order, which the file does
            // not tell: accept whichever order gives a known family.
            let family = if linktype == LOOP {
                u32::from_be_bytes(head)
            } else if family_is_ip(u32::from_le_bytes(head)) {
                u32::from_le_bytes(head)
            } else {
                u32::from_be_bytes(head)
            };
            if !family_is_ip(family) {
                return Decoded::NotTcp;
            }
            match LaxSlicedPacket::from_ip(&data[4..]) {
                Ok(s) => s,
                Err(_) => return Decoded::Malformed,
            }
        }
        LINUX_SLL => match LinuxSllSlice::from_slice(data) {
            Ok(sll) => match sll.protocol_type() {
                LinuxSllProtocolType::EtherType(et) => {
                    LaxSlicedPacket::from_ether_type(et, sll.payload_slice())
                }
                _ => return Decoded::NotTcp,
            },
            Err(_) => return Decoded::Malformed,
        },
        LINUX_SLL2 => {
            // SLL2: protocol type (BE u16), reserved, ifindex, ARPHRD, pkttype,
            // addr len, 8 address bytes = 20 bytes. etherparse has no SLL2 slicer.
            if data.len() < 20 {
                return Decoded::Malformed;
            }
            let et = EtherType(u16::from_be_bytes([data[0], data[1]]));
            LaxSlicedPacket::from_ether_type(et, &data[20..])
        }
        _ => return Decoded::UnsupportedLinktype,
    };
    from_sliced(&sliced)
}

fn from_sliced<'a>(sliced: &LaxSlicedPacket<'a>) -> Decoded<'a> {
    let (src_ip, dst_ip, payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Decoded::NotTcp,
        None => {
            // No IP layer: either another ether type or a header etherparse
            // rejected (recorded in stop_err).
            return if sliced.stop_err.is_some() {
                Decoded::Malformed
            } else {
                Decoded::NotTcp
            };
        }
    };
    if payload.fragmented {
        return Decoded::Fragment;
    }
    if payload.ip_number != etherparse::IpNumber::TCP {
        return Decoded::NotTcp;
    }
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        // TCP by protocol number but the header did not slice.
        return Decoded::Malformed;
    };
    Decoded::Tcp(TcpPacket {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_family_either_byte_order() {
        let mut ip = Vec::new();
        etherparse::PacketBuilder::ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
            .tcp(1000, 2000, 7, 100)
            .write(&mut ip, b"hi")
            .unwrap();
        for head in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let mut pkt = head.to_vec();
            pkt.extend_from_slice(&ip);
            match decode(linktype::NULL, &pkt) {
                Decoded::Tcp(t) => {
                    assert_eq!(t.src, "1.2.3.4:1000".parse().unwrap());
                    assert_eq!(t.payload, b"hi");
                }
                other => panic!("{other:?}"),
            }
        }
        let mut pkt = vec![0, 0, 0, 7];
        pkt.extend_from_slice(&ip);
        assert!(matches!(decode(linktype::NULL, &pkt), Decoded::NotTcp));
        assert!(matches!(decode(999, &pkt), Decoded::UnsupportedLinktype));
        assert!(matches!(decode(linktype::RAW, &[0x45]), Decoded::Malformed));
    }
}
