//! TRES record (spec §8.4.6).

use bytes::BufMut;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

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
