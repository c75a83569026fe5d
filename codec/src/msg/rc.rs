//! Return codes and the small reply/request bodies (spec §8.1, §8.2):
//! RESPONSE_SLURM_RC (8001), RESPONSE_SLURM_RC_MSG (8002),
//! RESPONSE_SLURM_REROUTE_MSG (8003) and REQUEST_PING (1008, empty).

use bytes::BufMut;
use std::fmt;

use crate::error::Result;
use crate::msg::slurmdb::{encode_cluster_slot, ClusterRec};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

use super::common::bool8;

/// A Slurm return code: a C int on the wire (u32, −1 = 0xFFFFFFFF).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReturnCode(pub i32);

impl ReturnCode {
    pub const SUCCESS: ReturnCode = ReturnCode(0);

    /// Well-known codes seen from slurmctld (spec §8.2; `slurm/slurm_errno.h`).
    const NAMES: &'static [(i32, &'static str)] = &[
        (-1, "SLURM_ERROR"),
        (0, "SLURM_SUCCESS"),
        (22, "EINVAL"),
        (1005, "SLURM_PROTOCOL_VERSION_ERROR"),
        (1007, "SLURM_PROTOCOL_AUTHENTICATION_ERROR"),
        (1900, "SLURM_NO_CHANGE_IN_DATA"),
        (2002, "ESLURM_ACCESS_DENIED"),
        (2010, "ESLURM_USER_ID_MISSING"),
        (2027, "ESLURM_IN_STANDBY_MODE"),
        (2131, "ESLURM_IN_STANDBY_USE_BACKUP"),
        (5003, "ESLURM_PROTOCOL_INCOMPLETE_PACKET"),
        (7105, "ESLURM_FED_JOB_LOCK"),
        (7106, "ESLURM_FED_NO_VALID_CLUSTERS"),
    ];

    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map(|(_, n)| *n)
    }

    /// `0`, `22 EINVAL`, `4711`.
    pub fn short(self) -> String {
        match self.name() {
            Some(n) if self.0 != 0 => format!("{} {n}", self.0),
            _ => self.0.to_string(),
        }
    }
}

impl fmt::Debug for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl serde::Serialize for ReturnCode {
    /// `{"code": 2002, "name": "ESLURM_ACCESS_DENIED"}` (name null when not known).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ReturnCode", 2)?;
        st.serialize_field("code", &self.0)?;
        st.serialize_field("name", &self.name())?;
        st.end()
    }
}

impl Decode for ReturnCode {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(ReturnCode(r.u32()? as i32))
    }
}

impl Encode for ReturnCode {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        w.put_u32(self.0 as u32)
    }
}

/// RESPONSE_SLURM_RC (8001): u32 return_code, all versions.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SlurmRc {
    pub return_code: ReturnCode,
}

impl Decode for SlurmRc {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(SlurmRc {
            return_code: ReturnCode::decode(r, v)?,
        })
    }
}

impl Encode for SlurmRc {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        self.return_code.encode(w, v)
    }
}

/// RESPONSE_SLURM_RC_MSG (8002): u32 return_code, string err_msg, all versions.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SlurmRcMsg {
    pub return_code: ReturnCode,
    pub err_msg: PackStr,
}

impl Decode for SlurmRcMsg {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(SlurmRcMsg {
            return_code: ReturnCode::decode(r, v)?,
            err_msg: r.packstr()?,
        })
    }
}

impl Encode for SlurmRcMsg {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        self.return_code.encode(w, v);
        self.err_msg.encode(w);
    }
}

/// RESPONSE_SLURM_REROUTE_MSG (8003): u8 has_cluster, the cluster record (§8.4.2,
/// with its own not-NULL marker from 24.11) when 1, then (≥24.05) string stepmgr.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RerouteMsg {
    pub has_cluster: bool,
    /// The record when `has_cluster` (`None` there only for a 24.11+ NULL slot).
    pub working_cluster_rec: Option<Box<ClusterRec>>,
    /// ≥24.05 only.
    pub stepmgr: Option<PackStr>,
}

impl Decode for RerouteMsg {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let has_cluster = bool8(r, "has_cluster")?;
        let working_cluster_rec = if has_cluster {
            Option::<ClusterRec>::decode(r, v)?.map(Box::new)
        } else {
            None
        };
        let stepmgr = if v >= ProtocolVersion::V24_05 {
            Some(r.packstr()?)
        } else {
            None
        };
        Ok(RerouteMsg {
            has_cluster,
            working_cluster_rec,
            stepmgr,
        })
    }
}

impl Encode for RerouteMsg {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u8(self.has_cluster as u8);
        if self.has_cluster {
            encode_cluster_slot(self.working_cluster_rec.as_deref(), w, v);
        }
        if v >= ProtocolVersion::V24_05 {
            self.stepmgr.clone().unwrap_or_default().encode(w);
        }
    }
}

/// REQUEST_PING (1008): empty body in every version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ping;

impl Decode for Ping {
    fn decode(_: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(Ping)
    }
}

impl Encode for Ping {
    fn encode(&self, _: &mut impl BufMut, _: ProtocolVersion) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc<T: Encode>(m: &T, v: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out, v);
        out
    }

    #[test]
    fn slurm_rc_spec_bytes() {
        for v in ProtocolVersion::MODERN {
            let m = SlurmRc {
                return_code: ReturnCode(-1),
            };
            assert_eq!(enc(&m, v), [0xff; 4]);
            let back = SlurmRc::decode(&mut Reader::new(Bytes::from(enc(&m, v))), v).unwrap();
            assert_eq!(back, m);
            // §8.3: rc 1900 = 0x076C.
            let m = SlurmRc {
                return_code: ReturnCode(1900),
            };
            assert_eq!(enc(&m, v), [0, 0, 0x07, 0x6c]);
            assert_eq!(m.return_code.short(), "1900 SLURM_NO_CHANGE_IN_DATA");
        }
    }

    #[test]
    fn rc_msg_roundtrip() {
        let m = SlurmRcMsg {
            return_code: ReturnCode(2002),
            err_msg: PackStr::from_text("no"),
        };
        let b = enc(&m, ProtocolVersion::V22_05);
        assert_eq!(b, [0, 0, 0x07, 0xd2, 0, 0, 0, 3, b'n', b'o', 0]);
        assert_eq!(
            SlurmRcMsg::decode(&mut Reader::new(Bytes::from(b)), ProtocolVersion::V22_05).unwrap(),
            m
        );
    }

    #[test]
    fn reroute_without_cluster_per_version() {
        for v in ProtocolVersion::MODERN {
            let m = RerouteMsg {
                has_cluster: false,
                working_cluster_rec: None,
                stepmgr: (v >= ProtocolVersion::V24_05).then(|| PackStr::from_text("n1")),
            };
            let b = enc(&m, v);
            let want: &[u8] = if v >= ProtocolVersion::V24_05 {
                &[0, 0, 0, 0, 3, b'n', b'1', 0]
            } else {
                &[0]
            };
            assert_eq!(b, want, "{v}");
            assert_eq!(
                RerouteMsg::decode(&mut Reader::new(Bytes::from(b)), v).unwrap(),
                m
            );
        }
    }

    #[test]
    fn reroute_rejects_bad_has_cluster() {
        let e = RerouteMsg::decode(
            &mut Reader::with_base(Bytes::from_static(&[2]), 10),
            ProtocolVersion::V22_05,
        )
        .unwrap_err();
        assert_eq!((e.offset, e.reason()), (10, "unknown_value"));
    }
}
