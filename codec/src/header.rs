//! The normal-frame header (spec §4), every layout from 20.11 to 26.05.
//!
//! The layout is chosen by the header's own version field. Optional parts (the
//! slurmdbd msg_type prefix, msg_index, forward extras) are `Option`s that are
//! `Some` exactly when the wire had them, so encoding is byte-exact.

use bytes::{BufMut, Bytes};

use crate::error::{ErrorKind, Result};
use crate::flags::HeaderFlags;
use crate::msg_type::MsgType;
use crate::version::ProtocolVersion;
use crate::wire::{PackStr, Reader};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The u16 msg_type a slurmdbd-bound sender writes before the version
    /// (flag SLURMDBD_CONNECTION).
    pub dbd_msg_type: Option<MsgType>,
    pub version: ProtocolVersion,
    pub flags: HeaderFlags,
    /// Only in 20.11/21.08 headers.
    pub msg_index: Option<u16>,
    pub msg_type: MsgType,
    pub body_length: u32,
    pub forward: Forward,
    pub ret_list: Vec<RetEntry>,
    pub orig_addr: SlurmAddr,
}

/// Message forwarding block: count 0 toward slurmctld; the rest exists only when
/// the count is non-zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forward {
    pub cnt: u16,
    pub fields: Option<ForwardFields>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardFields {
    pub nodelist: PackStr,
    pub timeout_ms: u32,
    pub tree_width: u16,
    /// 23.11+ with flag SLURM_PACK_ADDRS.
    pub net_cred: Option<PackStr>,
    /// 24.11+.
    pub tree_depth: Option<u16>,
}

/// One ret_list entry: a reply gathered by a slurmd forwarding tree. Its body has
/// no length prefix, so only types whose body layout we know can be delimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetEntry {
    pub err: u32,
    pub msg_type: MsgType,
    pub node_name: PackStr,
    pub body: Bytes,
}

/// `slurm_addr_t` as `slurm_pack_addr` writes it (spec §1.3). Raw bytes are kept:
/// little-endian senders put the IPv4 octets and ports in reversed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlurmAddr {
    /// AF_UNSPEC or any family without address bytes (the family is kept).
    Unspec {
        family: u16,
    },
    Inet {
        raw: [u8; 4],
        port_raw: [u8; 2],
    },
    Inet6 {
        addr: [u8; 16],
        port_raw: [u8; 2],
    },
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

impl SlurmAddr {
    pub const UNSPEC: SlurmAddr = SlurmAddr::Unspec { family: 0 };

    pub fn decode(r: &mut Reader) -> Result<Self> {
        let family = r.u16()?;
        Ok(match family {
            AF_INET => {
                let b = r.bytes(6)?;
                SlurmAddr::Inet {
                    raw: [b[0], b[1], b[2], b[3]],
                    port_raw: [b[4], b[5]],
                }
            }
            AF_INET6 => {
                let at = r.offset();
                let len = r.u32()?;
                if len != 16 {
                    return Err(crate::error::DecodeError::new(
                        at,
                        ErrorKind::BadAddressLength(len),
                    ));
                }
                let a = r.bytes(16)?;
                let p = r.bytes(2)?;
                let mut addr = [0u8; 16];
                addr.copy_from_slice(&a);
                SlurmAddr::Inet6 {
                    addr,
                    port_raw: [p[0], p[1]],
                }
            }
            family => SlurmAddr::Unspec { family },
        })
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        match self {
            SlurmAddr::Unspec { family } => w.put_u16(*family),
            SlurmAddr::Inet { raw, port_raw } => {
                w.put_u16(AF_INET);
                w.put_slice(raw);
                w.put_slice(port_raw);
            }
            SlurmAddr::Inet6 { addr, port_raw } => {
                w.put_u16(AF_INET6);
                w.put_u32(16);
                w.put_slice(addr);
                w.put_slice(port_raw);
            }
        }
    }

    /// Human form, assuming a little-endian sender (all x86-64/aarch64 Linux).
    pub fn display(&self) -> String {
        match self {
            SlurmAddr::Unspec { family: 0 } => "unspec".into(),
            SlurmAddr::Unspec { family } => format!("family {family}"),
            SlurmAddr::Inet { raw, port_raw } => format!(
                "{}.{}.{}.{}:{}",
                raw[3],
                raw[2],
                raw[1],
                raw[0],
                u16::from_le_bytes(*port_raw)
            ),
            SlurmAddr::Inet6 { addr, port_raw } => {
                format!(
                    "[{}]:{}",
                    std::net::Ipv6Addr::from(*addr),
                    u16::from_le_bytes(*port_raw)
                )
            }
        }
    }
}

impl Header {
    /// A minimal header as 22.05+ clients and controllers write it: no forwarding,
    /// no ret_list, AF_UNSPEC.
    pub fn new(
        version: ProtocolVersion,
        flags: HeaderFlags,
        msg_type: MsgType,
        body_length: u32,
    ) -> Self {
        Header {
            dbd_msg_type: None,
            version,
            flags,
            msg_index: version.has_msg_index().then_some(0),
            msg_type,
            body_length,
            forward: Forward::default(),
            ret_list: Vec::new(),
            orig_addr: SlurmAddr::UNSPEC,
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Self> {
        // The slurmdbd form starts with a msg_type instead of a version; versions
        // and message numbers never overlap (0x2400.. vs ≤ 10003), so peek.
        let first = r.peek_u16().ok_or_else(|| {
            r.error(ErrorKind::Truncated {
                needed: 2,
                available: r.remaining(),
            })
        })?;
        let dbd_msg_type = if ProtocolVersion(first).is_known() {
            None
        } else {
            Some(MsgType(r.u16()?))
        };

        let at = r.offset();
        let version = ProtocolVersion(r.u16()?);
        if !version.is_known() {
            let v = dbd_msg_type.map_or(version.0, |t| t.0);
            return Err(crate::error::DecodeError::new(
                if dbd_msg_type.is_some() { at - 2 } else { at },
                ErrorKind::UnsupportedVersion(v),
            ));
        }
        let flags = HeaderFlags(r.u16()?);
        if let Some(dbd) =
            dbd_msg_type.filter(|_| !flags.contains(HeaderFlags::SLURMDBD_CONNECTION))
        {
            return Err(crate::error::DecodeError::new(
                at - 2,
                ErrorKind::UnsupportedVersion(dbd.0),
            ));
        }
        let msg_index = if version.has_msg_index() {
            Some(r.u16()?)
        } else {
            None
        };
        let msg_type = MsgType(r.u16()?);
        let body_length = r.u32()?;

        let fwd_cnt = r.u16()?;
        let fields = if fwd_cnt > 0 {
            let nodelist = r.packstr()?;
            let timeout_ms = r.u32()?;
            let tree_width = r.u16()?;
            let net_cred = (flags.contains(HeaderFlags::PACK_ADDRS)
                && version >= ProtocolVersion::V23_11)
                .then(|| r.packstr())
                .transpose()?;
            let tree_depth = (version >= ProtocolVersion::V24_11)
                .then(|| r.u16())
                .transpose()?;
            Some(ForwardFields {
                nodelist,
                timeout_ms,
                tree_width,
                net_cred,
                tree_depth,
            })
        } else {
            None
        };

        let ret_cnt = r.u16()?;
        let mut ret_list = Vec::with_capacity(ret_cnt.min(64) as usize);
        for i in 0..ret_cnt {
            let next = if i + 1 == ret_cnt {
                Boundary::Trailer {
                    body_length,
                    no_cred: flags.contains(HeaderFlags::NO_AUTH_CRED),
                }
            } else {
                Boundary::NextEntry
            };
            ret_list.push(RetEntry::decode(r, ret_cnt, next)?);
        }
        let orig_addr = SlurmAddr::decode(r)?;
        Ok(Header {
            dbd_msg_type,
            version,
            flags,
            msg_index,
            msg_type,
            body_length,
            forward: Forward {
                cnt: fwd_cnt,
                fields,
            },
            ret_list,
            orig_addr,
        })
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        if let Some(t) = self.dbd_msg_type {
            w.put_u16(t.0);
        }
        w.put_u16(self.version.0);
        w.put_u16(self.flags.0);
        if let Some(i) = self.msg_index {
            w.put_u16(i);
        }
        w.put_u16(self.msg_type.0);
        w.put_u32(self.body_length);
        w.put_u16(self.forward.cnt);
        if let Some(f) = &self.forward.fields {
            f.nodelist.encode(w);
            w.put_u32(f.timeout_ms);
            w.put_u16(f.tree_width);
            if let Some(c) = &f.net_cred {
                c.encode(w);
            }
            if let Some(d) = f.tree_depth {
                w.put_u16(d);
            }
        }
        w.put_u16(self.ret_list.len() as u16);
        for e in &self.ret_list {
            e.encode(w);
        }
        self.orig_addr.encode(w);
    }

    /// Encoded size in bytes.
    pub fn wire_len(&self) -> usize {
        let mut n = 2 + 2 + 2 + 4 + 2 + 2;
        n += self.dbd_msg_type.map_or(0, |_| 2) + self.msg_index.map_or(0, |_| 2);
        if let Some(f) = &self.forward.fields {
            n += f.nodelist.wire_len() + 6;
            n += f.net_cred.as_ref().map_or(0, |c| c.wire_len()) + f.tree_depth.map_or(0, |_| 2);
        }
        n += self
            .ret_list
            .iter()
            .map(|e| 6 + e.node_name.wire_len() + e.body.len())
            .sum::<usize>();
        n + match self.orig_addr {
            SlurmAddr::Unspec { .. } => 2,
            SlurmAddr::Inet { .. } => 8,
            SlurmAddr::Inet6 { .. } => 24,
        }
    }
}

/// What follows a ret_list entry's body, used to find where a body of a type
/// without a known layout ends.
#[derive(Copy, Clone, Debug)]
enum Boundary {
    /// Another entry: u32 err, u16 reply msg_type, a short NUL-terminated node name.
    NextEntry,
    /// The last entry: orig_addr, the auth section, then exactly body_length bytes
    /// to the end of the frame.
    Trailer { body_length: u32, no_cred: bool },
}

impl Boundary {
    /// The smallest body length after which `rest` continues as expected.
    fn find(self, rest: &[u8]) -> Option<usize> {
        (0..=rest.len()).find(|&k| self.fits(&rest[k..]))
    }

    fn fits(self, b: &[u8]) -> bool {
        let u16_at = |i: usize| b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
        let u32_at = |i: usize| {
            b.get(i..i + 4)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        };
        match self {
            Boundary::NextEntry => {
                let (Some(t), Some(len)) = (u16_at(4), u32_at(6)) else {
                    return false;
                };
                let name = b.get(10..10 + len as usize);
                MsgType(t)
                    .name()
                    .is_some_and(|n| n.starts_with("RESPONSE_"))
                    && (1..=256).contains(&len)
                    && name.is_some_and(|n| {
                        n.last() == Some(&0)
                            && n[..n.len() - 1].iter().all(|c| c.is_ascii_graphic())
                    })
            }
            Boundary::Trailer {
                body_length,
                no_cred,
            } => {
                let addr_len = match u16_at(0) {
                    Some(AF_INET) => 8,
                    Some(AF_INET6) => 24,
                    Some(0) => 2,
                    _ => return false,
                };
                let after_addr = b.len().checked_sub(addr_len);
                if no_cred {
                    return after_addr == Some(body_length as usize);
                }
                let auth = match (u32_at(addr_len), u32_at(addr_len + 4)) {
                    (Some(101 | 103), Some(len)) => 8 + len as usize,
                    _ => return false,
                };
                after_addr.and_then(|n| n.checked_sub(auth)) == Some(body_length as usize)
            }
        }
    }
}

impl RetEntry {
    fn decode(r: &mut Reader, count: u16, next: Boundary) -> Result<Self> {
        let err = r.u32()?;
        let at = r.offset();
        let msg_type = MsgType(r.u16()?);
        let node_name = r.packstr()?;
        // The body has no length of its own: walk the layouts we know.
        let body_len = match msg_type {
            MsgType::RESPONSE_SLURM_RC => 4,
            MsgType::RESPONSE_SLURM_RC_MSG => {
                let mut probe = r.clone();
                probe.u32()?;
                probe.packstr()?;
                probe.offset() - r.offset()
            }
            // RESPONSE_PING_SLURMD: u32 cpu_load, u64 free_mem.
            MsgType::RESPONSE_PING_SLURMD => 12,
            // Any other reply type: its end is where what must follow begins.
            _ => next.find(r.peek_rest()).ok_or_else(|| {
                crate::error::DecodeError::new(
                    at,
                    ErrorKind::UnsupportedRetList {
                        count,
                        msg_type: msg_type.0,
                    },
                )
            })?,
        };
        let body = r.bytes(body_len)?;
        Ok(RetEntry {
            err,
            msg_type,
            node_name,
            body,
        })
    }

    fn encode(&self, w: &mut impl BufMut) {
        w.put_u32(self.err);
        w.put_u16(self.msg_type.0);
        self.node_name.encode(w);
        w.put_slice(&self.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(wire: &[u8]) -> Header {
        let mut r = Reader::new(Bytes::copy_from_slice(wire));
        let h = Header::decode(&mut r).unwrap();
        assert!(r.is_empty());
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, wire);
        assert_eq!(h.wire_len(), wire.len());
        h
    }

    #[test]
    fn minimal_2205_header_is_16_bytes() {
        let h = roundtrip(&[0x26, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(h.msg_type, MsgType::REQUEST_FED_INFO);
        assert_eq!(
            h,
            Header::new(
                ProtocolVersion::V22_05,
                HeaderFlags(0),
                MsgType::REQUEST_FED_INFO,
                0
            )
        );
    }

    #[test]
    fn old_2108_layout_has_msg_index() {
        let h = roundtrip(&[
            0x25, 0, 0, 0, 0, 7, 0x03, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(h.msg_index, Some(7));
        assert_eq!(h.msg_type, MsgType::REQUEST_PING);
    }

    #[test]
    fn dbd_prefix_and_inet_addr() {
        let h = roundtrip(&[
            0x19, 0x64, 0x26, 0, 0, 3, 0x19, 0x64, 0, 0, 0, 9, 0, 0, 0, 0, 0, 2, 1, 0, 0, 10, 0xa1,
            0x1a,
        ]);
        assert_eq!(h.dbd_msg_type, Some(MsgType::REQUEST_PERSIST_INIT));
        assert_eq!(h.orig_addr.display(), "10.0.0.1:6817");
    }

    #[test]
    fn inet6_block_must_be_16() {
        let wire = [
            0x26, 0, 0, 0, 0x03, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 4, 1, 2, 3, 4, 0, 0,
        ];
        let e = Header::decode(&mut Reader::new(Bytes::copy_from_slice(&wire))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadAddressLength(4));
        assert_eq!(e.offset, 16);
    }

    #[test]
    fn unsupported_version_is_typed() {
        let e = Header::decode(&mut Reader::new(Bytes::from_static(&[0x23, 0, 0, 0]))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(0x2300));
    }

    #[test]
    fn forward_fields_by_version() {
        // 24.11 with SLURM_PACK_ADDRS: nodelist, timeout, width, net_cred, depth.
        let mut wire = vec![0x2a, 0, 0, 0x80, 0x03, 0xf0, 0, 0, 0, 0, 0, 2];
        wire.extend_from_slice(&[
            0, 0, 0, 3, b'n', b'1', 0, 0, 0, 0x27, 0x10, 0, 50, 0, 0, 0, 0, 0, 3,
        ]);
        wire.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0x1f, 0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let h = roundtrip(&wire);
        let f = h.forward.fields.unwrap();
        assert_eq!(f.tree_depth, Some(3));
        assert!(f.net_cred.unwrap().is_null());
        assert_eq!(h.ret_list.len(), 1);
    }
}
