//! Legacy FLURM's federation-info bodies (FLURM `flurm_protocol_codec.erl` @222bcaf;
//! shared docs `legacy-flurm-wire.md` §3.3–§3.5). Strings are Slurm packstrs
//! (NULL = `00000000`, "" = `00000001 00`), integers big-endian.
//!
//! 2025 layout, in order: packstr federation_name, packstr local_cluster,
//! u32 cluster_count, then per cluster: packstr name, packstr host, u32 port,
//! packstr state ("up"/"down"/"drain"), u32 weight, u32 feature count + packstrs,
//! u32 partition count + packstrs.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, ErrorKind, Result};
use crate::wire::{PackStr, Reader};

/// Legacy REQUEST_FED_INFO (2024) body: `u32 show_flags`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyFedInfoRequest {
    pub show_flags: u32,
}

impl LegacyFedInfoRequest {
    pub const WIRE_LEN: usize = 4;

    /// Decodes the whole body (exactly 4 bytes).
    pub fn decode(r: &mut Reader) -> Result<Self> {
        let show_flags = r.u32()?;
        r.finish()?;
        Ok(LegacyFedInfoRequest { show_flags })
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        w.put_u32(self.show_flags);
    }
}

/// A cluster's state string in the legacy record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyClusterState {
    Up,
    Down,
    Drain,
    /// Anything else (kept raw; NULL included).
    Other(PackStr),
}

impl LegacyClusterState {
    pub fn from_packstr(s: &PackStr) -> Self {
        match s.0.as_deref() {
            Some(b"up\0") => LegacyClusterState::Up,
            Some(b"down\0") => LegacyClusterState::Down,
            Some(b"drain\0") => LegacyClusterState::Drain,
            _ => LegacyClusterState::Other(s.clone()),
        }
    }

    pub fn to_packstr(&self) -> PackStr {
        match self {
            LegacyClusterState::Up => PackStr::from_text("up"),
            LegacyClusterState::Down => PackStr::from_text("down"),
            LegacyClusterState::Drain => PackStr::from_text("drain"),
            LegacyClusterState::Other(s) => s.clone(),
        }
    }
}

/// One cluster of the legacy 2025 record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyCluster {
    pub name: PackStr,
    pub host: PackStr,
    pub port: u32,
    pub state: LegacyClusterState,
    pub weight: u32,
    pub features: Vec<PackStr>,
    pub partitions: Vec<PackStr>,
}

/// The populated legacy 2025 record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyFederation {
    pub federation_name: PackStr,
    pub local_cluster: PackStr,
    pub clusters: Vec<LegacyCluster>,
}

/// Legacy RESPONSE_FED_INFO (2025) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyFedInfoResponse {
    /// The record layout (what the legacy codec is written to produce).
    Record(LegacyFederation),
    /// Exactly 12 zero bytes: what the running legacy controller always sends
    /// (its handler builds a map, the encoder falls back). Carries no data.
    ZeroFallback,
}

/// Smallest wire size of one legacy cluster: 4 strings of ≥ 4 bytes + 4 u32s.
const MIN_CLUSTER_LEN: usize = 4 * 4 + 4 * 4;

fn string_list(r: &mut Reader) -> Result<Vec<PackStr>> {
    let at = r.offset();
    let n = r.u32()?;
    if (n as usize).saturating_mul(4) > r.remaining() {
        return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
    }
    (0..n).map(|_| r.packstr()).collect()
}

fn put_string_list(w: &mut impl BufMut, v: &[PackStr]) {
    w.put_u32(v.len() as u32);
    for s in v {
        s.encode(w);
    }
}

impl LegacyCluster {
    pub fn decode(r: &mut Reader) -> Result<Self> {
        Ok(LegacyCluster {
            name: r.packstr()?,
            host: r.packstr()?,
            port: r.u32()?,
            state: LegacyClusterState::from_packstr(&r.packstr()?),
            weight: r.u32()?,
            features: string_list(r)?,
            partitions: string_list(r)?,
        })
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        self.name.encode(w);
        self.host.encode(w);
        w.put_u32(self.port);
        self.state.to_packstr().encode(w);
        w.put_u32(self.weight);
        put_string_list(w, &self.features);
        put_string_list(w, &self.partitions);
    }
}

impl LegacyFederation {
    pub fn decode(r: &mut Reader) -> Result<Self> {
        let federation_name = r.packstr()?;
        let local_cluster = r.packstr()?;
        let at = r.offset();
        let n = r.u32()?;
        if (n as usize).saturating_mul(MIN_CLUSTER_LEN) > r.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
        }
        let clusters = (0..n)
            .map(|_| LegacyCluster::decode(r))
            .collect::<Result<_>>()?;
        Ok(LegacyFederation {
            federation_name,
            local_cluster,
            clusters,
        })
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        self.federation_name.encode(w);
        self.local_cluster.encode(w);
        w.put_u32(self.clusters.len() as u32);
        for c in &self.clusters {
            c.encode(w);
        }
    }
}

impl LegacyFedInfoResponse {
    pub const ZERO_FALLBACK: [u8; 12] = [0; 12];

    /// Decodes a whole 2025 body; every byte must be consumed.
    pub fn decode(r: &mut Reader) -> Result<Self> {
        if r.remaining() == 12 {
            let mut probe = r.clone();
            if probe.bytes(12)?.iter().all(|&b| b == 0) {
                *r = probe;
                return Ok(LegacyFedInfoResponse::ZeroFallback);
            }
        }
        let rec = LegacyFederation::decode(r)?;
        r.finish()?;
        Ok(LegacyFedInfoResponse::Record(rec))
    }

    pub fn decode_body(body: Bytes, base: usize) -> Result<Self> {
        Self::decode(&mut Reader::with_base(body, base))
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        match self {
            LegacyFedInfoResponse::Record(f) => f.encode(w),
            LegacyFedInfoResponse::ZeroFallback => w.put_slice(&Self::ZERO_FALLBACK),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut v = Vec::new();
        self.encode(&mut v);
        Bytes::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The doc's §3.4 fixture body: fed "fed1", local "clusterA", one cluster
    /// (clusterA, h1, 6817, up, 1, [gpu], [batch]).
    const DOC_FIXTURE: &str =
        "00000005 6665643100 00000009 636c75737465724100 00000001 00000009 636c75737465724100
        00000003 683100 00001aa1 00000003 757000 00000001 00000001 00000004 67707500 00000001
        00000006 626174636800";

    #[test]
    fn doc_fixture_decodes_to_the_documented_record_and_back() {
        let wire = hex(DOC_FIXTURE);
        let got = LegacyFedInfoResponse::decode_body(Bytes::from(wire.clone()), 0).unwrap();
        let want = LegacyFedInfoResponse::Record(LegacyFederation {
            federation_name: PackStr::from_text("fed1"),
            local_cluster: PackStr::from_text("clusterA"),
            clusters: vec![LegacyCluster {
                name: PackStr::from_text("clusterA"),
                host: PackStr::from_text("h1"),
                port: 6817,
                state: LegacyClusterState::Up,
                weight: 1,
                features: vec![PackStr::from_text("gpu")],
                partitions: vec![PackStr::from_text("batch")],
            }],
        });
        assert_eq!(got, want);
        assert_eq!(got.to_bytes()[..], wire[..]);
    }

    #[test]
    fn twelve_zero_bytes_are_the_fallback() {
        let got = LegacyFedInfoResponse::decode_body(Bytes::from_static(&[0; 12]), 0).unwrap();
        assert_eq!(got, LegacyFedInfoResponse::ZeroFallback);
        assert_eq!(got.to_bytes()[..], [0u8; 12]);
    }

    #[test]
    fn bad_counts_and_trailing_bytes_are_typed_errors() {
        let e =
            LegacyFedInfoResponse::decode_body(Bytes::from(hex("00000000 00000000 7fffffff")), 40)
                .unwrap_err();
        assert_eq!((e.offset, e.reason()), (48, "bad_count"));
        let e = LegacyFedInfoResponse::decode_body(
            Bytes::from(hex("00000000 00000000 00000000 00")),
            0,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "trailing_bytes");
        let e = LegacyFedInfoRequest::decode(&mut Reader::new(Bytes::from_static(&[
            0, 0, 0, 0, 0, 0, 0, 0,
        ])))
        .unwrap_err();
        assert_eq!(e.reason(), "trailing_bytes");
    }

    #[test]
    fn unknown_state_strings_stay_raw() {
        let s = PackStr::from_text("maint");
        let st = LegacyClusterState::from_packstr(&s);
        assert_eq!(st, LegacyClusterState::Other(s.clone()));
        assert_eq!(st.to_packstr(), s);
        assert_eq!(
            LegacyClusterState::from_packstr(&PackStr::from_text("drain")),
            LegacyClusterState::Drain
        );
    }
}
