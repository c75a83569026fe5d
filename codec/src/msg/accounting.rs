//! ACCOUNTING_UPDATE_MSG (10001), slurmdbd → slurmctld (spec §9.6):
//!
//! ```text
//! u32 count                     (> NO_VAL rejected)
//! count × slurmdb_update_object_t:
//!     u16 type                  (slurmdb_update_type_t)
//!     ADD_CLUSTER / REMOVE_CLUSTER: nothing more
//!     otherwise: u32 object count (NO_VAL = no list), that many records
//! ```
//!
//! (`_pack_accounting_update_msg` / `slurmdb_pack_update_object`, identical in the
//! 22.05.8 and 24.11.5 sources.) Records modelled here: association (§8.4.3), TRES
//! (§8.4.6) and federation (§8.4.1) records. For any other type the walk stops and
//! the rest of the body stays raw (delimited by the body's end): the records of
//! users, QOS, wckeys, resources and stats are not modelled.

use bytes::BufMut;
use std::fmt;

use crate::error::{DecodeError, ErrorKind, Result};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, Reader, SlurmList, NO_VAL};

use super::common::RawBytes;
use super::slurmdb::{AssocRec, FederationRec, TresRec};

/// `slurmdb_update_type_t` (`slurm/slurmdb.h`, 0…23 in 22.05 and 24.11; 21 was
/// renamed SLURMDB_UPDATE_QOS_USAGE in 23.02…24.05) plus DBD_GOT_STATS (1490), which
/// the pack code also accepts as an update type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct UpdateType(pub u16);

impl UpdateType {
    pub const ADD_ASSOC: u16 = 2;
    pub const MODIFY_ASSOC: u16 = 5;
    pub const REMOVE_ASSOC: u16 = 7;
    pub const ADD_CLUSTER: u16 = 15;
    pub const REMOVE_CLUSTER: u16 = 16;
    pub const REMOVE_ASSOC_USAGE: u16 = 17;
    pub const ADD_TRES: u16 = 22;
    pub const UPDATE_FEDS: u16 = 23;
    pub const DBD_GOT_STATS: u16 = 1490;

    const NAMES: [&'static str; 24] = [
        "SLURMDB_UPDATE_NOTSET",
        "SLURMDB_ADD_USER",
        "SLURMDB_ADD_ASSOC",
        "SLURMDB_ADD_COORD",
        "SLURMDB_MODIFY_USER",
        "SLURMDB_MODIFY_ASSOC",
        "SLURMDB_REMOVE_USER",
        "SLURMDB_REMOVE_ASSOC",
        "SLURMDB_REMOVE_COORD",
        "SLURMDB_ADD_QOS",
        "SLURMDB_REMOVE_QOS",
        "SLURMDB_MODIFY_QOS",
        "SLURMDB_ADD_WCKEY",
        "SLURMDB_REMOVE_WCKEY",
        "SLURMDB_MODIFY_WCKEY",
        "SLURMDB_ADD_CLUSTER",
        "SLURMDB_REMOVE_CLUSTER",
        "SLURMDB_REMOVE_ASSOC_USAGE",
        "SLURMDB_ADD_RES",
        "SLURMDB_REMOVE_RES",
        "SLURMDB_MODIFY_RES",
        "SLURMDB_REMOVE_QOS_USAGE",
        "SLURMDB_ADD_TRES",
        "SLURMDB_UPDATE_FEDS",
    ];

    /// Slurm's name; `None` for values its unpack code rejects (0 and unknown).
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => None,
            Self::DBD_GOT_STATS => Some("DBD_GOT_STATS"),
            n => Self::NAMES.get(n as usize).copied(),
        }
    }

    pub fn display(self) -> String {
        self.name().map_or_else(
            || format!("UNKNOWN_{}", self.0),
            |n| n.trim_start_matches("SLURMDB_").to_string(),
        )
    }
}

impl fmt::Debug for UpdateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl serde::Serialize for UpdateType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.serialize_str(&format!("UNKNOWN_{}", self.0)),
        }
    }
}

/// The objects of one update.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateObjects {
    /// ADD_CLUSTER / REMOVE_CLUSTER: Slurm packs nothing after the type.
    Nothing,
    Assocs(SlurmList<AssocRec>),
    Tres(SlurmList<TresRec>),
    Feds(SlurmList<Option<FederationRec>>),
    /// Not modelled: everything from this update's object count to the end of the
    /// body (this update's records and every later update).
    RawTail(RawBytes),
}

/// One `slurmdb_update_object_t`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UpdateObject {
    pub update_type: UpdateType,
    pub objects: UpdateObjects,
}

impl UpdateObject {
    fn describe(&self) -> String {
        let t = self.update_type.display();
        match &self.objects {
            UpdateObjects::Nothing => t,
            UpdateObjects::Assocs(l) => format!("{t}×{}", l.0.as_ref().map_or(0, |v| v.len())),
            UpdateObjects::Tres(l) => format!("{t}×{}", l.0.as_ref().map_or(0, |v| v.len())),
            UpdateObjects::Feds(l) => {
                let feds: Vec<String> =
                    l.0.iter()
                        .flatten()
                        .map(|f| {
                            f.as_ref()
                                .map_or("(none)".into(), |f| super::common::text_or_null(&f.name))
                        })
                        .collect();
                format!("{t} [{}]", feds.join(", "))
            }
            UpdateObjects::RawTail(b) => format!("{t} raw {}B", b.len()),
        }
    }
}

/// ACCOUNTING_UPDATE_MSG body.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AccountingUpdate {
    /// The wire count. Equals `updates.len()` unless the walk stopped at a raw tail
    /// (the later updates are inside it).
    pub count: u32,
    pub updates: Vec<UpdateObject>,
}

impl AccountingUpdate {
    /// A fully typed update list (count derived).
    pub fn new(updates: Vec<UpdateObject>) -> AccountingUpdate {
        AccountingUpdate {
            count: updates.len() as u32,
            updates,
        }
    }

    /// `[UPDATE_FEDS [fed1]]`
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.updates.iter().map(UpdateObject::describe).collect();
        format!("[{}]", parts.join(", "))
    }
}

impl Decode for AccountingUpdate {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let at = r.offset();
        let count = r.u32()?;
        if count > NO_VAL || (count as usize).saturating_mul(2) > r.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(count)));
        }
        let mut updates = Vec::new();
        for _ in 0..count {
            let at = r.offset();
            let update_type = UpdateType(r.u16()?);
            if update_type.name().is_none() {
                return Err(DecodeError::new(
                    at,
                    ErrorKind::UnknownValue {
                        field: "update_type",
                        value: update_type.0 as u64,
                    },
                ));
            }
            let objects = match update_type.0 {
                UpdateType::ADD_CLUSTER | UpdateType::REMOVE_CLUSTER => UpdateObjects::Nothing,
                UpdateType::ADD_ASSOC
                | UpdateType::MODIFY_ASSOC
                | UpdateType::REMOVE_ASSOC
                | UpdateType::REMOVE_ASSOC_USAGE => {
                    UpdateObjects::Assocs(SlurmList::decode_with(r, v, AssocRec::MIN_WIRE_LEN)?)
                }
                UpdateType::ADD_TRES => {
                    UpdateObjects::Tres(SlurmList::decode_with(r, v, TresRec::MIN_WIRE_LEN)?)
                }
                UpdateType::UPDATE_FEDS => UpdateObjects::Feds(SlurmList::decode_with(r, v, 1)?),
                _ => UpdateObjects::RawTail(RawBytes(r.rest())),
            };
            let stop = matches!(objects, UpdateObjects::RawTail(_));
            updates.push(UpdateObject {
                update_type,
                objects,
            });
            if stop {
                break;
            }
        }
        Ok(AccountingUpdate { count, updates })
    }
}

impl Encode for AccountingUpdate {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.count);
        for u in &self.updates {
            w.put_u16(u.update_type.0);
            match &u.objects {
                UpdateObjects::Nothing => {}
                UpdateObjects::Assocs(l) => l.encode(w, v),
                UpdateObjects::Tres(l) => l.encode(w, v),
                UpdateObjects::Feds(l) => l.encode(w, v),
                UpdateObjects::RawTail(b) => w.put_slice(&b.0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn federation_removed_body() {
        // fed_create capture: federation removed → count 1, UPDATE_FEDS, empty list.
        let wire: &[u8] = &[0, 0, 0, 1, 0, 0x17, 0, 0, 0, 0];
        let m = AccountingUpdate::new(vec![UpdateObject {
            update_type: UpdateType(UpdateType::UPDATE_FEDS),
            objects: UpdateObjects::Feds(SlurmList(Some(vec![]))),
        }]);
        for v in ProtocolVersion::MODERN {
            let mut out = Vec::new();
            m.encode(&mut out, v);
            assert_eq!(out, wire);
            assert_eq!(
                AccountingUpdate::decode(&mut Reader::new(Bytes::from_static(wire)), v).unwrap(),
                m
            );
        }
        assert_eq!(m.describe(), "[UPDATE_FEDS []]");
    }

    #[test]
    fn clusters_then_raw_tail() {
        // ADD_CLUSTER (no objects), then ADD_QOS (not modelled → raw tail).
        let wire: &[u8] = &[0, 0, 0, 2, 0, 15, 0, 9, 0, 0, 0, 1, 0xaa, 0xbb];
        let v = ProtocolVersion::V22_05;
        let m = AccountingUpdate::decode(&mut Reader::new(Bytes::from_static(wire)), v).unwrap();
        assert_eq!(m.count, 2);
        assert_eq!(m.updates[0].objects, UpdateObjects::Nothing);
        assert!(matches!(&m.updates[1].objects, UpdateObjects::RawTail(b) if b.len() == 6));
        let mut out = Vec::new();
        m.encode(&mut out, v);
        assert_eq!(out, wire);
        assert_eq!(m.describe(), "[ADD_CLUSTER, ADD_QOS raw 6B]");
    }

    #[test]
    fn unknown_update_type_is_rejected() {
        let e = AccountingUpdate::decode(
            &mut Reader::new(Bytes::from_static(&[0, 0, 0, 1, 0, 0])),
            ProtocolVersion::V22_05,
        )
        .unwrap_err();
        assert_eq!((e.offset, e.reason()), (4, "unknown_value"));
    }
}
