//! REQUEST_PERSIST_INIT (6500) and PERSIST_RC (1433), spec §8.5. Unchanged
//! 22.05 → 26.05; the init body carries its own version first.

use bytes::BufMut;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

/// `persist_type` of a PERSIST_INIT.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PersistType {
    None,
    Dbd,
    Fed,
    HaCtl,
    HaDbd,
    AcctUpdate,
    Other(u16),
}

impl PersistType {
    /// The msg_type namespace of the frames on a connection of this type.
    pub fn namespace(self) -> crate::msg_type::Namespace {
        match self {
            PersistType::Dbd => crate::msg_type::Namespace::Dbd,
            _ => crate::msg_type::Namespace::Slurm,
        }
    }

    pub fn from_wire(v: u16) -> Self {
        match v {
            0 => PersistType::None,
            1 => PersistType::Dbd,
            2 => PersistType::Fed,
            3 => PersistType::HaCtl,
            4 => PersistType::HaDbd,
            5 => PersistType::AcctUpdate,
            v => PersistType::Other(v),
        }
    }

    pub fn to_wire(self) -> u16 {
        match self {
            PersistType::None => 0,
            PersistType::Dbd => 1,
            PersistType::Fed => 2,
            PersistType::HaCtl => 3,
            PersistType::HaDbd => 4,
            PersistType::AcctUpdate => 5,
            PersistType::Other(v) => v,
        }
    }

    pub fn name(self) -> String {
        match self {
            PersistType::None => "NONE".into(),
            PersistType::Dbd => "DBD".into(),
            PersistType::Fed => "FED".into(),
            PersistType::HaCtl => "HA_CTL".into(),
            PersistType::HaDbd => "HA_DBD".into(),
            PersistType::AcctUpdate => "ACCT_UPDATE".into(),
            PersistType::Other(v) => format!("UNKNOWN_{v}"),
        }
    }
}

impl serde::Serialize for PersistType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PersistInit {
    /// The sender's own protocol version (the body is parsed with it).
    pub version: ProtocolVersion,
    pub cluster_name: PackStr,
    pub persist_type: PersistType,
    /// The sender's listening port (SlurmctldPort for FED).
    pub port: u16,
}

impl Decode for PersistInit {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(PersistInit {
            version: ProtocolVersion(r.u16()?),
            cluster_name: r.packstr()?,
            persist_type: PersistType::from_wire(r.u16()?),
            port: r.u16()?,
        })
    }
}

impl Encode for PersistInit {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        w.put_u16(self.version.0);
        self.cluster_name.encode(w);
        w.put_u16(self.persist_type.to_wire());
        w.put_u16(self.port);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PersistRc {
    pub comment: PackStr,
    pub flags: u16,
    /// 0 = accepted; a C int on the wire (−1 = 0xFFFFFFFF).
    pub rc: i32,
    /// On success the negotiated version; on some errors the offending msg_type.
    pub ret_info: u16,
}

impl PersistRc {
    /// The version every later frame on the connection uses, when accepted.
    pub fn negotiated_version(&self) -> Option<ProtocolVersion> {
        (self.rc == 0).then_some(ProtocolVersion(self.ret_info))
    }
}

impl Decode for PersistRc {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(PersistRc {
            comment: r.packstr()?,
            flags: r.u16()?,
            rc: r.u32()? as i32,
            ret_info: r.u16()?,
        })
    }
}

impl Encode for PersistRc {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        self.comment.encode(w);
        w.put_u16(self.flags);
        w.put_u32(self.rc as u32);
        w.put_u16(self.ret_info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn spec_examples() {
        // c1 → c2 init: version 0x2600, "c1", FED, port 26817.
        let init = [0x26, 0, 0, 0, 0, 3, b'c', b'1', 0, 0, 2, 0x68, 0xc1];
        let v = ProtocolVersion::V22_05;
        let m = PersistInit::decode(&mut Reader::new(Bytes::copy_from_slice(&init)), v).unwrap();
        assert_eq!(m.cluster_name.text().as_deref(), Some("c1"));
        assert_eq!(m.persist_type, PersistType::Fed);
        assert_eq!(m.port, 26817);
        let mut out = Vec::new();
        m.encode(&mut out, v);
        assert_eq!(out, init);

        let rc = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x26, 0];
        let m = PersistRc::decode(&mut Reader::new(Bytes::copy_from_slice(&rc)), v).unwrap();
        assert_eq!(m.negotiated_version(), Some(ProtocolVersion::V22_05));
        let mut out = Vec::new();
        m.encode(&mut out, v);
        assert_eq!(out, rc);
    }
}
