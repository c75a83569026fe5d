//! `slurmdb_assoc_rec_t` (spec §8.4.3), as in a cluster record's root_assoc and in
//! ACCOUNTING_UPDATE_MSG.

use bytes::BufMut;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, SlurmList, NO_VAL};

use super::usage::AccountingRec;

/// `slurmdb_assoc_rec_t` as packed in a cluster record's root_assoc (§8.4.3).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AssocRec {
    pub accounting_list: SlurmList<AccountingRec>,
    pub acct: PackStr,
    pub cluster: PackStr,
    /// ≥23.02 only.
    pub comment: Option<PackStr>,
    pub def_qos_id: u32,
    /// u16 on the wire up to 23.11, u32 from 24.05.
    pub flags: u32,
    pub shares_raw: u32,
    pub grp_tres_mins: PackStr,
    pub grp_tres_run_mins: PackStr,
    pub grp_tres: PackStr,
    pub grp_jobs: u32,
    pub grp_jobs_accrue: u32,
    pub grp_submit_jobs: u32,
    pub grp_wall: u32,
    pub id: u32,
    pub is_def: u16,
    /// ≤23.02 only.
    pub lft: Option<u32>,
    /// ≥23.11 only (replaces lft/rgt).
    pub lineage: Option<PackStr>,
    pub max_tres_mins_pj: PackStr,
    pub max_tres_run_mins: PackStr,
    pub max_tres_pj: PackStr,
    pub max_tres_pn: PackStr,
    pub max_jobs: u32,
    pub max_jobs_accrue: u32,
    pub min_prio_thresh: u32,
    pub max_submit_jobs: u32,
    pub max_wall_pj: u32,
    pub parent_acct: PackStr,
    pub parent_id: u32,
    pub partition: PackStr,
    pub priority: u32,
    pub qos_list: SlurmList<PackStr>,
    /// ≤23.02 only.
    pub rgt: Option<u32>,
    pub uid: u32,
    pub user: PackStr,
}

impl AssocRec {
    pub const MIN_WIRE_LEN: usize = 100;

    /// The filler Slurm packs for a NULL association (§8.4.3, end).
    pub fn null_filler(v: ProtocolVersion) -> AssocRec {
        AssocRec {
            accounting_list: SlurmList(None),
            acct: PackStr::NULL,
            cluster: PackStr::NULL,
            comment: (v >= ProtocolVersion::V23_02).then_some(PackStr::NULL),
            def_qos_id: NO_VAL,
            flags: 0,
            shares_raw: NO_VAL,
            grp_tres_mins: PackStr::NULL,
            grp_tres_run_mins: PackStr::NULL,
            grp_tres: PackStr::NULL,
            grp_jobs: NO_VAL,
            grp_jobs_accrue: NO_VAL,
            grp_submit_jobs: NO_VAL,
            grp_wall: NO_VAL,
            id: 0,
            is_def: 0,
            lft: (v <= ProtocolVersion::V23_02).then_some(0),
            lineage: (v >= ProtocolVersion::V23_11).then_some(PackStr::NULL),
            max_tres_mins_pj: PackStr::NULL,
            max_tres_run_mins: PackStr::NULL,
            max_tres_pj: PackStr::NULL,
            max_tres_pn: PackStr::NULL,
            max_jobs: NO_VAL,
            max_jobs_accrue: NO_VAL,
            min_prio_thresh: NO_VAL,
            max_submit_jobs: NO_VAL,
            max_wall_pj: NO_VAL,
            parent_acct: PackStr::NULL,
            parent_id: 0,
            partition: PackStr::NULL,
            priority: 0,
            qos_list: SlurmList(None),
            rgt: (v <= ProtocolVersion::V23_02).then_some(0),
            uid: 0,
            user: PackStr::NULL,
        }
    }
}

impl Decode for AssocRec {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(AssocRec {
            accounting_list: SlurmList::decode_with(r, v, AccountingRec::MIN_WIRE_LEN)?,
            acct: r.packstr()?,
            cluster: r.packstr()?,
            comment: if v >= ProtocolVersion::V23_02 {
                Some(r.packstr()?)
            } else {
                None
            },
            def_qos_id: r.u32()?,
            flags: if v >= ProtocolVersion::V24_05 {
                r.u32()?
            } else {
                r.u16()? as u32
            },
            shares_raw: r.u32()?,
            grp_tres_mins: r.packstr()?,
            grp_tres_run_mins: r.packstr()?,
            grp_tres: r.packstr()?,
            grp_jobs: r.u32()?,
            grp_jobs_accrue: r.u32()?,
            grp_submit_jobs: r.u32()?,
            grp_wall: r.u32()?,
            id: r.u32()?,
            is_def: r.u16()?,
            lft: if v <= ProtocolVersion::V23_02 {
                Some(r.u32()?)
            } else {
                None
            },
            lineage: if v >= ProtocolVersion::V23_11 {
                Some(r.packstr()?)
            } else {
                None
            },
            max_tres_mins_pj: r.packstr()?,
            max_tres_run_mins: r.packstr()?,
            max_tres_pj: r.packstr()?,
            max_tres_pn: r.packstr()?,
            max_jobs: r.u32()?,
            max_jobs_accrue: r.u32()?,
            min_prio_thresh: r.u32()?,
            max_submit_jobs: r.u32()?,
            max_wall_pj: r.u32()?,
            parent_acct: r.packstr()?,
            parent_id: r.u32()?,
            partition: r.packstr()?,
            priority: r.u32()?,
            qos_list: SlurmList::decode_with(r, v, 4)?,
            rgt: if v <= ProtocolVersion::V23_02 {
                Some(r.u32()?)
            } else {
                None
            },
            uid: r.u32()?,
            user: r.packstr()?,
        })
    }
}

impl Encode for AssocRec {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        self.accounting_list.encode(w, v);
        self.acct.encode(w);
        self.cluster.encode(w);
        if v >= ProtocolVersion::V23_02 {
            self.comment.clone().unwrap_or_default().encode(w);
        }
        w.put_u32(self.def_qos_id);
        if v >= ProtocolVersion::V24_05 {
            w.put_u32(self.flags);
        } else {
            w.put_u16(self.flags as u16);
        }
        w.put_u32(self.shares_raw);
        self.grp_tres_mins.encode(w);
        self.grp_tres_run_mins.encode(w);
        self.grp_tres.encode(w);
        w.put_u32(self.grp_jobs);
        w.put_u32(self.grp_jobs_accrue);
        w.put_u32(self.grp_submit_jobs);
        w.put_u32(self.grp_wall);
        w.put_u32(self.id);
        w.put_u16(self.is_def);
        if v <= ProtocolVersion::V23_02 {
            w.put_u32(self.lft.unwrap_or(0));
        }
        if v >= ProtocolVersion::V23_11 {
            self.lineage.clone().unwrap_or_default().encode(w);
        }
        self.max_tres_mins_pj.encode(w);
        self.max_tres_run_mins.encode(w);
        self.max_tres_pj.encode(w);
        self.max_tres_pn.encode(w);
        w.put_u32(self.max_jobs);
        w.put_u32(self.max_jobs_accrue);
        w.put_u32(self.min_prio_thresh);
        w.put_u32(self.max_submit_jobs);
        w.put_u32(self.max_wall_pj);
        self.parent_acct.encode(w);
        w.put_u32(self.parent_id);
        self.partition.encode(w);
        w.put_u32(self.priority);
        self.qos_list.encode(w, v);
        if v <= ProtocolVersion::V23_02 {
            w.put_u32(self.rgt.unwrap_or(0));
        }
        w.put_u32(self.uid);
        self.user.encode(w);
    }
}
