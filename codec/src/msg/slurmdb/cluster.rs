//! `slurmdb_cluster_rec_t` (spec §8.4.2): the record, its state and flag words,
//! and the cluster record slot (NULL marker from 24.11, filler before).

use bytes::BufMut;
use std::fmt;

use crate::error::Result;
use crate::msg::common::{bool8, flag_names, text_or_null};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, SlurmList, NO_VAL};

use super::assoc::AssocRec;
use super::usage::ClusterAccountingRec;

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
