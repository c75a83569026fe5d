//! The body hash a credential carries as its payload (spec §6):
//! `02 ‖ KangarooTwelve(body, customization = msg_type big-endian)[32]`,
//! or SHA3-256 (type 4, 24.05+), or the "zero hash" `01 ‖ msg_type`.

use k12::{ExtendableOutput, Update, XofReader};
use sha3::Digest;

use crate::msg_type::MsgType;

/// Hash type byte (`HASH_PLUGIN_*`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HashType {
    Default = 0,
    None = 1,
    K12 = 2,
    Sha256 = 3,
    Sha3 = 4,
}

/// The 33-byte K12 payload a 22.05+ sender puts in the credential.
pub fn k12_payload(msg_type: MsgType, body: &[u8]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = HashType::K12 as u8;
    out[1..].copy_from_slice(&k12_digest(msg_type, body));
    out
}

/// KangarooTwelve of the body, customized by the msg_type's two big-endian bytes.
pub fn k12_digest(msg_type: MsgType, body: &[u8]) -> [u8; 32] {
    let custom = msg_type.0.to_be_bytes();
    let mut h = k12::CustomRefKt128::new_customized(&custom);
    h.update(body);
    let mut out = [0u8; 32];
    h.finalize_xof().read(&mut out);
    out
}

/// SHA3-256 over body ‖ msg_type big-endian (payload type 4, 24.05+).
pub fn sha3_digest(msg_type: MsgType, body: &[u8]) -> [u8; 32] {
    let mut h = sha3::Sha3_256::new();
    Digest::update(&mut h, body);
    Digest::update(&mut h, msg_type.0.to_be_bytes());
    h.finalize().into()
}

/// The "zero hash" payload `01 ‖ msg_type` (accepted unless block_zero_hash).
pub fn none_payload(msg_type: MsgType) -> [u8; 3] {
    let t = msg_type.0.to_be_bytes();
    [HashType::None as u8, t[0], t[1]]
}

/// Whether a decoded credential payload matches this body and msg_type, the way a
/// receiver checks it (spec §6.4; empty payloads are the receiver's policy).
pub fn payload_matches(payload: &[u8], msg_type: MsgType, body: &[u8]) -> bool {
    match payload.first() {
        Some(0) | Some(2) if payload.len() == 33 => payload[1..] == k12_digest(msg_type, body),
        Some(1) if payload.len() == 3 => payload[1..] == msg_type.0.to_be_bytes(),
        Some(4) if payload.len() == 33 => payload[1..] == sha3_digest(msg_type, body),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::msg::common::hex;

    // Vectors from the spec §6.2 (K12 ones taken from real credentials via unmunge).
    const VECTORS: &[(u16, &[u8], &str, &str)] = &[
        (
            1008,
            &[],
            "5d5247bbb9ae435b2674a601f4a615de08d36c074c352457612d21db790784f9",
            "ec59db1952a3c7eabb192bedf1470de773058785443fb8bb40cdf6c5bc1e4fcf",
        ),
        (
            8001,
            &[0, 0, 0, 0],
            "e4131db9673e46adbeeb1d46262f892bfca0cfd193730a3b9ab72758a8c48411",
            "b7e0875f6027c8792570c56820c050cd53d382d270029d447dda2c3e5f602fec",
        ),
        (
            2024,
            &[0; 8],
            "8a8c5a900359c32e6ec6f71b6d995ad61bda3be023bd9b4b576e45390780b0d4",
            "f7188f4bd15cd0826ec2ed8f1d6f5e19da02ffc21fbd949f88fd19a1e2bc7032",
        ),
        (
            2050,
            &[0],
            "42bd88d624efb02ca73185b0597a9e2579fbf1d0bd69c82928820cef64540d07",
            "c3354d44389020cfa6da1d8e2b5d41ebed83c01b8f35a7ac6d8771a0ce67a68b",
        ),
    ];

    #[test]
    fn k12_matches_documented_payloads() {
        for &(t, body, k12, _) in VECTORS {
            let p = k12_payload(MsgType(t), body);
            assert_eq!(p[0], 2);
            assert_eq!(hex(&p[1..]), k12, "msg_type {t}");
            assert!(payload_matches(&p, MsgType(t), body));
            assert!(
                !payload_matches(&p, MsgType(t ^ 1), body),
                "msg_type is bound"
            );
        }
    }

    #[test]
    fn sha3_matches_documented_digests() {
        for &(t, body, _, sha3) in VECTORS {
            assert_eq!(hex(&sha3_digest(MsgType(t), body)), sha3);
        }
    }

    #[test]
    fn zero_hash_payload() {
        assert_eq!(none_payload(MsgType(2050)), [1, 0x08, 0x02]);
        assert!(payload_matches(
            &[1, 0x08, 0x02],
            MsgType(2050),
            b"anything"
        ));
    }
}
