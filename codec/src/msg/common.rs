//! Small types shared by the federation families: federated job ids (spec §9.5),
//! the 25.11+ step id (§8.7 row 13), sibling bitmaps, raw delimited bytes, hex
//! bitmaps (§1), and the strict bool/enum readers used to reject a wrong version.

use bytes::{BufMut, Bytes};
use std::fmt;

use crate::error::{ErrorKind, Result};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, NO_VAL};

/// A job id as Slurm puts it on the wire. Federated ids carry the origin cluster's
/// fed id in bits 26–31 and the local id in bits 0–25 (`fed_mgr_get_cluster_id` /
/// `fed_mgr_get_local_id`).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct JobId(pub u32);

impl JobId {
    /// MAX_JOB_ID: the local part's mask.
    pub const LOCAL_MASK: u32 = 0x03FF_FFFF;

    /// A federated id from its parts.
    pub fn federated(cluster: u32, local: u32) -> JobId {
        JobId((cluster << 26) | (local & Self::LOCAL_MASK))
    }

    /// The origin cluster's fed id (0 = not a federated id).
    pub fn cluster(self) -> u32 {
        self.0 >> 26
    }

    pub fn local(self) -> u32 {
        self.0 & Self::LOCAL_MASK
    }

    /// True for the NO_VAL/INFINITE sentinels (which are not ids).
    pub fn is_sentinel(self) -> bool {
        self.0 >= NO_VAL
    }
}

impl fmt::Display for JobId {
    /// `67108865 (cluster 1, local 1)`; plain number for local ids and sentinels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cluster() == 0 || self.is_sentinel() {
            write!(f, "{}", self.0)
        } else {
            write!(
                f,
                "{} (cluster {}, local {})",
                self.0,
                self.cluster(),
                self.local()
            )
        }
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("JobId", 3)?;
        st.serialize_field("id", &self.0)?;
        st.serialize_field("cluster", &self.cluster())?;
        st.serialize_field("local", &self.local())?;
        st.end()
    }
}

impl Decode for JobId {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(JobId(r.u32()?))
    }
}

impl Encode for JobId {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        w.put_u32(self.0)
    }
}

/// `slurm_step_id_t` as packed from 25.11 on inside sib/dep messages:
/// u64 sluid, u32 job_id, u32 step_id, u32 step_het_comp.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct StepId {
    pub sluid: u64,
    pub job_id: JobId,
    pub step_id: u32,
    pub step_het_comp: u32,
}

impl StepId {
    pub const WIRE_LEN: usize = 20;
}

impl Decode for StepId {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(StepId {
            sluid: r.u64()?,
            job_id: JobId(r.u32()?),
            step_id: r.u32()?,
            step_het_comp: r.u32()?,
        })
    }
}

impl Encode for StepId {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        w.put_u64(self.sluid);
        w.put_u32(self.job_id.0);
        w.put_u32(self.step_id);
        w.put_u32(self.step_het_comp);
    }
}

/// A u64 sibling bitmap: bit (id − 1) set for each cluster fed id.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct SiblingBitmap(pub u64);

impl SiblingBitmap {
    /// The fed ids whose bits are set, ascending.
    pub fn cluster_ids(self) -> Vec<u32> {
        (0..64)
            .filter(|b| self.0 & (1u64 << b) != 0)
            .map(|b| b + 1)
            .collect()
    }
}

impl fmt::Debug for SiblingBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}{:?}", self.0, self.cluster_ids())
    }
}

impl serde::Serialize for SiblingBitmap {
    /// Serialized as the list of cluster ids (lossless: ids 1–64 ↔ bits 0–63).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.cluster_ids().serialize(s)
    }
}

/// Bytes the codec keeps raw but delimited. Serialized as `{"len": N, "head": hex}`
/// (at most the first 16 bytes), never as a blob.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RawBytes(pub Bytes);

impl RawBytes {
    pub const HEAD: usize = 16;

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn head_hex(&self) -> String {
        hex(&self.0[..self.0.len().min(Self::HEAD)])
    }
}

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBytes(len {}, {}", self.len(), self.head_hex())?;
        if self.len() > Self::HEAD {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

impl serde::Serialize for RawBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("RawBytes", 2)?;
        st.serialize_field("len", &self.len())?;
        st.serialize_field("head", &self.head_hex())?;
        st.end()
    }
}

/// Lowercase hex of a byte slice.
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A bool Slurm writes as one byte 0/1. Any other value is rejected (Slurm's own
/// senders never write one), which also helps reject a wrong layout version.
pub fn bool8(r: &mut Reader, field: &'static str) -> Result<bool> {
    let at = r.offset();
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(crate::error::DecodeError::new(
            at,
            ErrorKind::UnknownValue {
                field,
                value: v as u64,
            },
        )),
    }
}

/// A u16 that must be 0 or 1 (`has_data`, …).
pub fn bool16(r: &mut Reader, field: &'static str) -> Result<bool> {
    let at = r.offset();
    match r.u16()? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(crate::error::DecodeError::new(
            at,
            ErrorKind::UnknownValue {
                field,
                value: v as u64,
            },
        )),
    }
}

/// `pack_bit_str_hex` (spec §1): absent = u32 NO_VAL; present = u32 bit count and a
/// string with the hex mask (e.g. `0x1F`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HexBitmap(pub Option<(u32, PackStr)>);

impl HexBitmap {
    pub fn min_len() -> usize {
        4
    }
}

impl serde::Serialize for HexBitmap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        match &self.0 {
            None => s.serialize_none(),
            Some((bits, mask)) => {
                let mut st = s.serialize_struct("HexBitmap", 2)?;
                st.serialize_field("bits", bits)?;
                st.serialize_field("mask", mask)?;
                st.end()
            }
        }
    }
}

impl Decode for HexBitmap {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        let bits = r.u32()?;
        if bits == NO_VAL {
            return Ok(HexBitmap(None));
        }
        Ok(HexBitmap(Some((bits, r.packstr()?))))
    }
}

impl Encode for HexBitmap {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        match &self.0 {
            None => w.put_u32(NO_VAL),
            Some((bits, mask)) => {
                w.put_u32(*bits);
                mask.encode(w);
            }
        }
    }
}

/// Joins the names of the set bits of `value` with `|`; unknown bits as hex.
pub fn flag_names(value: u64, names: &[(u64, &str)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut rest = value;
    for &(bit, name) in names {
        if value & bit != 0 {
            parts.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("0x{rest:x}"));
    }
    parts.join("|")
}

/// A short display of a PackStr for summaries: the text, or `(null)`.
pub fn text_or_null(s: &PackStr) -> String {
    s.text().unwrap_or_else(|| "(null)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federated_job_id_parts() {
        let j = JobId(67108865);
        assert_eq!((j.cluster(), j.local()), (1, 1));
        assert_eq!(JobId::federated(2, 1), JobId(134217729));
        assert_eq!(j.to_string(), "67108865 (cluster 1, local 1)");
        assert_eq!(JobId(42).to_string(), "42");
        assert_eq!(JobId(NO_VAL).to_string(), "4294967294");
    }

    #[test]
    fn sibling_bitmap_ids() {
        assert_eq!(SiblingBitmap(0x3).cluster_ids(), vec![1, 2]);
        assert_eq!(SiblingBitmap(1 << 63).cluster_ids(), vec![64]);
    }

    #[test]
    fn flag_names_keep_unknown_bits() {
        assert_eq!(flag_names(0x11, &[(0x10, "DRAIN")]), "DRAIN|0x1");
    }
}
