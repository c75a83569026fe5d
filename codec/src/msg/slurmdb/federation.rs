//! `slurmdb_federation_rec_t` (spec §8.4.1).

use bytes::BufMut;

use crate::error::Result;
use crate::msg::common::{bool8, text_or_null};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, SlurmList};

use super::cluster::ClusterRec;

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
