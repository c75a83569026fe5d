//! REQUEST_FED_INFO (2049) and RESPONSE_FED_INFO (2050), spec §8.1 and §8.4. The
//! records inside the response (federation, cluster, association, accounting,
//! TRES) are slurmdb records shared with other messages; they live in
//! [`super::slurmdb`] and are re-exported here.

use bytes::BufMut;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, Reader};

pub use super::slurmdb::{
    encode_cluster_slot, AccountingRec, AssocRec, ClusterAccountingRec, ClusterFlags, ClusterRec,
    FedState, FederationRec, TresRec,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

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
}
