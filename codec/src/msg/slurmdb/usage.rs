//! Usage (accounting) records: per association (spec §8.4.4) and per cluster
//! (§8.4.5). Each carries a TRES record.

use bytes::BufMut;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, Reader};

use super::tres::TresRec;

/// Association usage record (§8.4.4).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccountingRec {
    pub alloc_secs: u64,
    pub tres_rec: TresRec,
    pub id: u32,
    /// ≥24.11 only.
    pub id_alt: Option<u32>,
    pub period_start: i64,
}

impl AccountingRec {
    pub const MIN_WIRE_LEN: usize = 8 + TresRec::MIN_WIRE_LEN + 4 + 8;
}

impl Decode for AccountingRec {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(AccountingRec {
            alloc_secs: r.u64()?,
            tres_rec: TresRec::decode(r, v)?,
            id: r.u32()?,
            id_alt: if v >= ProtocolVersion::V24_11 {
                Some(r.u32()?)
            } else {
                None
            },
            period_start: r.i64()?,
        })
    }
}

impl Encode for AccountingRec {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u64(self.alloc_secs);
        self.tres_rec.encode(w, v);
        w.put_u32(self.id);
        if v >= ProtocolVersion::V24_11 {
            w.put_u32(self.id_alt.unwrap_or(0));
        }
        w.put_i64(self.period_start);
    }
}

/// Cluster accounting record (§8.4.5, unchanged 22.05 → 26.05).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClusterAccountingRec {
    pub alloc_secs: u64,
    pub tres_rec: TresRec,
    pub down_secs: u64,
    pub idle_secs: u64,
    pub over_secs: u64,
    pub pdown_secs: u64,
    pub period_start: i64,
    pub plan_secs: u64,
}

impl ClusterAccountingRec {
    pub const MIN_WIRE_LEN: usize = 8 + TresRec::MIN_WIRE_LEN + 6 * 8;
}

impl Decode for ClusterAccountingRec {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(ClusterAccountingRec {
            alloc_secs: r.u64()?,
            tres_rec: TresRec::decode(r, v)?,
            down_secs: r.u64()?,
            idle_secs: r.u64()?,
            over_secs: r.u64()?,
            pdown_secs: r.u64()?,
            period_start: r.i64()?,
            plan_secs: r.u64()?,
        })
    }
}

impl Encode for ClusterAccountingRec {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u64(self.alloc_secs);
        self.tres_rec.encode(w, v);
        w.put_u64(self.down_secs);
        w.put_u64(self.idle_secs);
        w.put_u64(self.over_secs);
        w.put_u64(self.pdown_secs);
        w.put_i64(self.period_start);
        w.put_u64(self.plan_secs);
    }
}
