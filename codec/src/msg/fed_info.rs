//! REQUEST_FED_INFO (2049) and RESPONSE_FED_INFO (2050), spec §8.1 and §8.4: the
//! federation record, the cluster record with its version-gated layout, the
//! association record (root_assoc), accounting and TRES records.
//!
//! Version-gated fields are `Option`s that are `Some` exactly when the layout has
//! them; the gate sits next to the field in both `decode` and `encode`.

use bytes::BufMut;
use std::fmt;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, SlurmList, NO_VAL};

use super::common::{bool8, flag_names, text_or_null};

/// REQUEST_FED_INFO (2049): no body in any version (22.05 clients send
/// body_length 0). A non-empty body is rejected (trailing bytes).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FedInfoRequest;

impl Decode for FedInfoRequest {
    fn decode(_: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(FedInfoRequest)
    }
}

impl Encode for FedInfoRequest {
    fn encode(&self, _: &mut impl BufMut, _: ProtocolVersion) {}
}

/// RESPONSE_FED_INFO (2050): one federation record; `None` = not in a federation
/// (the body is the single byte 00).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FedInfoResponse {
    pub federation: Option<FederationRec>,
}

impl FedInfoResponse {
    /// `fed1: alpha#1 ACTIVE 127.0.0.1:6817, beta#2 ACTIVE 127.0.0.1:7817`
    pub fn describe(&self) -> String {
        match &self.federation {
            None => "(no federation)".into(),
            Some(f) => f.describe(),
        }
    }
}

impl Decode for FedInfoResponse {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(FedInfoResponse {
            federation: Option::<FederationRec>::decode(r, v)?,
        })
    }
}

impl Encode for FedInfoResponse {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        self.federation.encode(w, v)
    }
}

/// `slurmdb_federation_rec_t` (§8.4.1, unchanged 22.05 → 26.05). On the wire it is
/// preceded by a u8 present flag, modelled as `Option<FederationRec>`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FederationRec {
    pub name: PackStr,
    /// FEDERATION_FLAG_* (normally 0).
    pub flags: u32,
    pub cluster_list: SlurmList<Option<ClusterRec>>,
}

impl FederationRec {
    pub fn describe(&self) -> String {
        let clusters: Vec<String> = match &self.cluster_list.0 {
            None => vec![],
            Some(v) => v
                .iter()
                .map(|c| c.as_ref().map_or("(null)".into(), |c| c.describe()))
                .collect(),
        };
        format!("{}: {}", text_or_null(&self.name), clusters.join(", "))
    }
}

impl Decode for Option<FederationRec> {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        if !bool8(r, "federation_present")? {
            return Ok(None);
        }
        let name = r.packstr()?;
        let flags = r.u32()?;
        let min = ClusterRec::min_wire_len(v);
        let cluster_list = SlurmList::decode_with(r, v, min)?;
        Ok(Some(FederationRec {
            name,
            flags,
            cluster_list,
        }))
    }
}

impl Encode for Option<FederationRec> {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        match self {
            None => w.put_u8(0),
            Some(f) => {
                w.put_u8(1);
                f.name.encode(w);
                w.put_u32(f.flags);
                f.cluster_list.encode(w, v);
            }
        }
    }
}

/// `fed.state` (§8.4.2 row 9): base state in the low 4 bits, flags above.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct FedState(pub u32);

impl FedState {
    pub const NA: u32 = 0;
    pub const ACTIVE: u32 = 1;
    pub const INACTIVE: u32 = 2;
    pub const DRAIN: u32 = 0x10;
    pub const REMOVE: u32 = 0x20;
    const BASE_MASK: u32 = 0x000f;

    /// `ACTIVE`, `ACTIVE|DRAIN`, `INACTIVE|REMOVE`, unknown bits in hex.
    pub fn names(self) -> String {
        let base = match self.0 & Self::BASE_MASK {
            0 => "NA".to_string(),
            1 => "ACTIVE".to_string(),
            2 => "INACTIVE".to_string(),
            b => format!("UNKNOWN_{b}"),
        };
        let flags = flag_names(
            (self.0 & !Self::BASE_MASK) as u64,
            &[(0x10, "DRAIN"), (0x20, "REMOVE")],
        );
        if flags.is_empty() {
            base
        } else {
            format!("{base}|{flags}")
        }
    }
}

impl fmt::Debug for FedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

impl serde::Serialize for FedState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.names())
    }
}

/// Cluster flags (`CLUSTER_FLAG_*`, §8.4.2 row 12), shown without the prefix.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClusterFlags(pub u32);

impl ClusterFlags {
    pub const MULTSD: u32 = 0x0080;
    pub const FE: u32 = 0x0200;
    pub const CRAY: u32 = 0x0400;
    pub const FED: u32 = 0x0800;
    pub const EXT: u32 = 0x1000;

    pub fn names(self) -> String {
        if self.0 == 0 {
            return "0".into();
        }
        flag_names(
            self.0 as u64,
            &[
                (0x80, "MULTSD"),
                (0x200, "FE"),
                (0x400, "CRAY"),
                (0x800, "FED"),
                (0x1000, "EXT"),
            ],
        )
    }
}

impl fmt::Debug for ClusterFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

impl serde::Serialize for ClusterFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.names())
    }
}

/// `slurmdb_cluster_rec_t` (§8.4.2). The 24.11+ not-NULL marker is modelled by
/// `Option<ClusterRec>` (see its `Decode`); before 24.11 a NULL record is a filler
/// with the same shape and decodes as an ordinary record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClusterRec {
    pub accounting_list: SlurmList<ClusterAccountingRec>,
    pub classification: u16,
    pub control_host: PackStr,
    pub control_port: u32,
    pub dimensions: u16,
    pub fed_feature_list: SlurmList<PackStr>,
    pub fed_name: PackStr,
    pub fed_id: u32,
    pub fed_state: FedState,
    pub fed_sync_recvd: bool,
    pub fed_sync_sent: bool,
    pub flags: ClusterFlags,
    /// ≥24.11 only.
    pub id: Option<u16>,
    pub name: PackStr,
    pub nodes: PackStr,
    /// ≤23.11 only (24.05+ senders write NO_VAL when packing that layout).
    pub plugin_id_select: Option<u32>,
    pub root_assoc: AssocRec,
    /// The cluster's own protocol version (0 if it never registered).
    pub rpc_version: ProtocolVersion,
    /// 1 if the sender has an inbound persistent connection from that cluster.
    pub fed_recv_connected: bool,
    /// 1 if the sender has an outbound one.
    pub fed_send_connected: bool,
    pub tres_str: PackStr,
}

impl ClusterRec {
    /// Fewest bytes one list element can take at `v` (bounds list counts).
    pub fn min_wire_len(v: ProtocolVersion) -> usize {
        if v >= ProtocolVersion::V24_11 {
            1
        } else {
            100
        }
    }

    /// `alpha#1 ACTIVE 127.0.0.1:6817`
    pub fn describe(&self) -> String {
        format!(
            "{}#{} {} {}:{}",
            text_or_null(&self.name),
            self.fed_id,
            self.fed_state.names(),
            text_or_null(&self.control_host),
            self.control_port
        )
    }

    /// The record Slurm packs for a NULL pointer before 24.11 (§8.4.2, end).
    pub fn null_filler(v: ProtocolVersion) -> ClusterRec {
        ClusterRec {
            accounting_list: SlurmList(None),
            classification: 0,
            control_host: PackStr::NULL,
            control_port: 0,
            dimensions: 1,
            fed_feature_list: SlurmList(None),
            fed_name: PackStr::NULL,
            fed_id: 0,
            fed_state: FedState(0),
            fed_sync_recvd: false,
            fed_sync_sent: false,
            flags: ClusterFlags(NO_VAL),
            id: (v >= ProtocolVersion::V24_11).then_some(0),
            name: PackStr::NULL,
            nodes: PackStr::NULL,
            plugin_id_select: (v <= ProtocolVersion::V23_11).then_some(NO_VAL),
            root_assoc: AssocRec::null_filler(v),
            rpc_version: ProtocolVersion(0),
            fed_recv_connected: false,
            fed_send_connected: false,
            tres_str: PackStr::NULL,
        }
    }

    fn decode_fields(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(ClusterRec {
            accounting_list: SlurmList::decode_with(r, v, ClusterAccountingRec::MIN_WIRE_LEN)?,
            classification: r.u16()?,
            control_host: r.packstr()?,
            control_port: r.u32()?,
            dimensions: r.u16()?,
            fed_feature_list: SlurmList::decode_with(r, v, 4)?,
            fed_name: r.packstr()?,
            fed_id: r.u32()?,
            fed_state: FedState(r.u32()?),
            fed_sync_recvd: bool8(r, "fed.sync_recvd")?,
            fed_sync_sent: bool8(r, "fed.sync_sent")?,
            flags: ClusterFlags(r.u32()?),
            id: if v >= ProtocolVersion::V24_11 {
                Some(r.u16()?)
            } else {
                None
            },
            name: r.packstr()?,
            nodes: r.packstr()?,
            plugin_id_select: if v <= ProtocolVersion::V23_11 {
                Some(r.u32()?)
            } else {
                None
            },
            root_assoc: AssocRec::decode(r, v)?,
            rpc_version: ProtocolVersion(r.u16()?),
            fed_recv_connected: bool8(r, "fed.recv")?,
            fed_send_connected: bool8(r, "fed.send")?,
            tres_str: r.packstr()?,
        })
    }

    fn encode_fields(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        self.accounting_list.encode(w, v);
        w.put_u16(self.classification);
        self.control_host.encode(w);
        w.put_u32(self.control_port);
        w.put_u16(self.dimensions);
        self.fed_feature_list.encode(w, v);
        self.fed_name.encode(w);
        w.put_u32(self.fed_id);
        w.put_u32(self.fed_state.0);
        w.put_u8(self.fed_sync_recvd as u8);
        w.put_u8(self.fed_sync_sent as u8);
        w.put_u32(self.flags.0);
        if v >= ProtocolVersion::V24_11 {
            w.put_u16(self.id.unwrap_or(0));
        }
        self.name.encode(w);
        self.nodes.encode(w);
        if v <= ProtocolVersion::V23_11 {
            w.put_u32(self.plugin_id_select.unwrap_or(NO_VAL));
        }
        self.root_assoc.encode(w, v);
        w.put_u16(self.rpc_version.0);
        w.put_u8(self.fed_recv_connected as u8);
        w.put_u8(self.fed_send_connected as u8);
        self.tres_str.encode(w);
    }
}

/// A cluster record slot: from 24.11 a u8 not-NULL marker comes first (0 = NULL,
/// nothing follows); before 24.11 there is no marker (`None` encodes as the filler).
impl Decode for Option<ClusterRec> {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        if v >= ProtocolVersion::V24_11 && !bool8(r, "cluster_rec_present")? {
            return Ok(None);
        }
        Ok(Some(ClusterRec::decode_fields(r, v)?))
    }
}

impl Encode for Option<ClusterRec> {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        encode_cluster_slot(self.as_ref(), w, v)
    }
}

/// Encodes a cluster record slot (see `Option<ClusterRec>`) without owning it.
pub fn encode_cluster_slot(slot: Option<&ClusterRec>, w: &mut impl BufMut, v: ProtocolVersion) {
    if v >= ProtocolVersion::V24_11 {
        w.put_u8(slot.is_some() as u8);
        if let Some(c) = slot {
            c.encode_fields(w, v);
        }
    } else {
        match slot {
            Some(c) => c.encode_fields(w, v),
            None => ClusterRec::null_filler(v).encode_fields(w, v),
        }
    }
}

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

/// TRES record (§8.4.6, unchanged): u64 alloc_secs, u64 count, u32 id, name, type.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct TresRec {
    pub alloc_secs: u64,
    pub count: u64,
    pub id: u32,
    pub name: PackStr,
    pub tres_type: PackStr,
}

impl TresRec {
    pub const MIN_WIRE_LEN: usize = 8 + 8 + 4 + 4 + 4;
}

impl Decode for TresRec {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(TresRec {
            alloc_secs: r.u64()?,
            count: r.u64()?,
            id: r.u32()?,
            name: r.packstr()?,
            tres_type: r.packstr()?,
        })
    }
}

impl Encode for TresRec {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        w.put_u64(self.alloc_secs);
        w.put_u64(self.count);
        w.put_u32(self.id);
        self.name.encode(w);
        self.tres_type.encode(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn fed_state_names() {
        assert_eq!(FedState(1).names(), "ACTIVE");
        assert_eq!(FedState(0x11).names(), "ACTIVE|DRAIN");
        assert_eq!(FedState(0x32).names(), "INACTIVE|DRAIN|REMOVE");
        assert_eq!(FedState(0x105).names(), "UNKNOWN_5|0x100");
        assert_eq!(ClusterFlags(0x880).names(), "MULTSD|FED");
    }

    #[test]
    fn no_federation_is_one_zero_byte() {
        for v in ProtocolVersion::MODERN {
            let m = FedInfoResponse { federation: None };
            let mut out = Vec::new();
            m.encode(&mut out, v);
            assert_eq!(out, [0]);
            assert_eq!(
                FedInfoResponse::decode(&mut Reader::new(Bytes::from(out)), v).unwrap(),
                m
            );
        }
    }

    #[test]
    fn null_cluster_slot_per_version() {
        // 24.11+: a single 00; before: the filler, which decodes as a record.
        for v in ProtocolVersion::MODERN {
            let mut out = Vec::new();
            None::<ClusterRec>.encode(&mut out, v);
            let back = Option::<ClusterRec>::decode(&mut Reader::new(Bytes::from(out.clone())), v)
                .unwrap();
            if v >= ProtocolVersion::V24_11 {
                assert_eq!(out, [0]);
                assert_eq!(back, None);
            } else {
                assert_eq!(back, Some(ClusterRec::null_filler(v)));
                let mut again = Vec::new();
                back.encode(&mut again, v);
                assert_eq!(again, out);
            }
        }
    }
}
