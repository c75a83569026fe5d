//! REQUEST_RESERVATION_INFO (2024) and RESPONSE_RESERVATION_INFO (2025), spec §8.3.
//!
//! Slurm's 2024 body is exactly an i64 `last_update` (8 bytes). Legacy FLURM used
//! 2024 for its FED_INFO request with a 4-byte body (u32 show_flags): that body does
//! not decode here (typed `truncated` error, frame stays raw) and
//! [`is_legacy_flurm_2024`] names it.

use bytes::BufMut;

use crate::error::{DecodeError, ErrorKind, Result};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

use super::common::HexBitmap;

/// True for the body of legacy FLURM's 2024 (REQUEST_FED_INFO then): 4 bytes,
/// where Slurm's REQUEST_RESERVATION_INFO has 8.
pub fn is_legacy_flurm_2024(body: &[u8]) -> bool {
    body.len() == 4
}

/// REQUEST_RESERVATION_INFO (2024), all versions: i64 last_update.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReservationInfoRequest {
    pub last_update: i64,
}

impl Decode for ReservationInfoRequest {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        Ok(ReservationInfoRequest {
            last_update: r.i64()?,
        })
    }
}

impl Encode for ReservationInfoRequest {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        w.put_i64(self.last_update)
    }
}

/// RESPONSE_RESERVATION_INFO (2025): u32 record_count, i64 last_update, records.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReservationInfoResponse {
    pub last_update: i64,
    pub reservations: Vec<ReservationRec>,
}

impl ReservationInfoResponse {
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .reservations
            .iter()
            .map(|r| r.name.text().unwrap_or_else(|| "(null)".into()))
            .collect();
        if names.is_empty() {
            "0 reservations".into()
        } else {
            format!("{} reservations: {}", names.len(), names.join(", "))
        }
    }
}

impl Decode for ReservationInfoResponse {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let at = r.offset();
        let n = r.u32()?;
        let last_update = r.i64()?;
        if (n as usize).saturating_mul(ReservationRec::MIN_WIRE_LEN) > r.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
        }
        let mut reservations = Vec::with_capacity(n as usize);
        for _ in 0..n {
            reservations.push(ReservationRec::decode(r, v)?);
        }
        Ok(ReservationInfoResponse {
            last_update,
            reservations,
        })
    }
}

impl Encode for ReservationInfoResponse {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.reservations.len() as u32);
        w.put_i64(self.last_update);
        for r in &self.reservations {
            r.encode(w, v);
        }
    }
}

/// One core-spec entry of a reservation (node name, core ids).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CoreSpec {
    pub node_name: PackStr,
    pub core_id: PackStr,
}

/// `reserve_info_t` as `_unpack_reserve_info_members` reads it (§8.3 table).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReservationRec {
    pub accounts: PackStr,
    pub burst_buffer: PackStr,
    /// ≥23.02 only.
    pub comment: Option<PackStr>,
    pub core_cnt: u32,
    pub end_time: i64,
    pub features: PackStr,
    pub flags: u64,
    pub licenses: PackStr,
    pub max_start_delay: u32,
    pub name: PackStr,
    pub node_cnt: u32,
    pub node_list: PackStr,
    pub partition: PackStr,
    pub purge_comp_time: u32,
    /// ≤25.05 only (from 24.05 an ignored placeholder).
    pub resv_watts: Option<u32>,
    pub start_time: i64,
    pub tres_str: PackStr,
    pub users: PackStr,
    pub groups: PackStr,
    /// ≥25.11 only.
    pub qos: Option<PackStr>,
    /// ≥25.11 only.
    pub allowed_parts: Option<PackStr>,
    pub node_inx: HexBitmap,
    pub core_spec: Vec<CoreSpec>,
}

impl ReservationRec {
    /// Fewest bytes a record takes in any layout (22.05: every string NULL, no
    /// bitmap, no core spec).
    pub const MIN_WIRE_LEN: usize = 96;
}

impl Decode for ReservationRec {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let accounts = r.packstr()?;
        let burst_buffer = r.packstr()?;
        let comment = if v >= ProtocolVersion::V23_02 {
            Some(r.packstr()?)
        } else {
            None
        };
        let core_cnt = r.u32()?;
        let end_time = r.i64()?;
        let features = r.packstr()?;
        let flags = r.u64()?;
        let licenses = r.packstr()?;
        let max_start_delay = r.u32()?;
        let name = r.packstr()?;
        let node_cnt = r.u32()?;
        let node_list = r.packstr()?;
        let partition = r.packstr()?;
        let purge_comp_time = r.u32()?;
        let resv_watts = if v <= ProtocolVersion::V25_05 {
            Some(r.u32()?)
        } else {
            None
        };
        let start_time = r.i64()?;
        let tres_str = r.packstr()?;
        let users = r.packstr()?;
        let groups = r.packstr()?;
        let qos = if v >= ProtocolVersion::V25_11 {
            Some(r.packstr()?)
        } else {
            None
        };
        let allowed_parts = if v >= ProtocolVersion::V25_11 {
            Some(r.packstr()?)
        } else {
            None
        };
        let node_inx = HexBitmap::decode(r, v)?;
        let at = r.offset();
        let n = r.u32()?;
        if (n as usize).saturating_mul(8) > r.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
        }
        let mut core_spec = Vec::with_capacity(n as usize);
        for _ in 0..n {
            core_spec.push(CoreSpec {
                node_name: r.packstr()?,
                core_id: r.packstr()?,
            });
        }
        Ok(ReservationRec {
            accounts,
            burst_buffer,
            comment,
            core_cnt,
            end_time,
            features,
            flags,
            licenses,
            max_start_delay,
            name,
            node_cnt,
            node_list,
            partition,
            purge_comp_time,
            resv_watts,
            start_time,
            tres_str,
            users,
            groups,
            qos,
            allowed_parts,
            node_inx,
            core_spec,
        })
    }
}

impl Encode for ReservationRec {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        self.accounts.encode(w);
        self.burst_buffer.encode(w);
        if v >= ProtocolVersion::V23_02 {
            self.comment.clone().unwrap_or_default().encode(w);
        }
        w.put_u32(self.core_cnt);
        w.put_i64(self.end_time);
        self.features.encode(w);
        w.put_u64(self.flags);
        self.licenses.encode(w);
        w.put_u32(self.max_start_delay);
        self.name.encode(w);
        w.put_u32(self.node_cnt);
        self.node_list.encode(w);
        self.partition.encode(w);
        w.put_u32(self.purge_comp_time);
        if v <= ProtocolVersion::V25_05 {
            w.put_u32(self.resv_watts.unwrap_or(crate::wire::NO_VAL));
        }
        w.put_i64(self.start_time);
        self.tres_str.encode(w);
        self.users.encode(w);
        self.groups.encode(w);
        if v >= ProtocolVersion::V25_11 {
            self.qos.clone().unwrap_or_default().encode(w);
            self.allowed_parts.clone().unwrap_or_default().encode(w);
        }
        self.node_inx.encode(w, v);
        w.put_u32(self.core_spec.len() as u32);
        for c in &self.core_spec {
            c.node_name.encode(w);
            c.core_id.encode(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn request_is_exactly_8_bytes_and_legacy_4_is_told_apart() {
        let v = ProtocolVersion::V22_05;
        let m = ReservationInfoRequest {
            last_update: 4_000_000_000,
        };
        let mut out = Vec::new();
        m.encode(&mut out, v);
        assert_eq!(out, [0, 0, 0, 0, 0xee, 0x6b, 0x28, 0]);
        assert_eq!(
            ReservationInfoRequest::decode(&mut Reader::new(Bytes::from(out)), v).unwrap(),
            m
        );
        assert!(is_legacy_flurm_2024(&[0, 0, 0, 0]));
        let e = ReservationInfoRequest::decode(&mut Reader::new(Bytes::from_static(&[0; 4])), v)
            .unwrap_err();
        assert_eq!(e.reason(), "truncated");
    }

    #[test]
    fn empty_response_lab_bytes() {
        // [LAB] no reservations → 00000000 + 8-byte time.
        let wire: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0x6b, 0x02, 0xd3, 0x0b];
        for v in ProtocolVersion::MODERN {
            let m = ReservationInfoResponse::decode(&mut Reader::new(Bytes::from_static(wire)), v)
                .unwrap();
            assert_eq!(
                m,
                ReservationInfoResponse {
                    last_update: 0x6b02d30b,
                    reservations: vec![]
                }
            );
            let mut out = Vec::new();
            m.encode(&mut out, v);
            assert_eq!(out, wire);
        }
    }
}
