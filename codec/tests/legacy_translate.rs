//! Legacy FLURM ⇄ Slurm fed-info translation against real frames
//! (`captures/legacy-flurm/*.hex.txt`) and hand-derived expected bytes
//! (`fixtures/legacy/`, see its README).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use slurm_codec::auth::AuthSection;
use slurm_codec::body_hash;
use slurm_codec::frame::{Frame, FrameHead, Framing};
use slurm_codec::legacy::translate::{
    fed_state_to_legacy_state, legacy_2024_to_slurm_2049, legacy_2025_to_slurm_2050,
    legacy_state_to_fed_state, slurm_2049_to_legacy_2024,
};
use slurm_codec::legacy::{
    classify_2024, Kind2024, LegacyClusterState, LegacyError, LegacyFedInfoRequest,
    LegacyFedInfoResponse,
};
use slurm_codec::msg::common::hex;
use slurm_codec::msg::fed_info::{FedInfoResponse, FedState};
use slurm_codec::msg::Message;
use slurm_codec::version::ProtocolVersion;
use slurm_codec::wire::{Decode, Reader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A fixture file: hex with `#` comments.
fn fixture(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(root().join("fixtures/legacy").join(name)).unwrap();
    unhex(
        &text
            .lines()
            .map(|l| l.split('#').next().unwrap())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// (direction, bytes) lines of a capture hex file.
fn capture_lines(name: &str) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(root().join("captures/legacy-flurm").join(name)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l.split_once(' ').unwrap();
            (dir.to_string(), unhex(hex))
        })
        .collect()
}

fn frame(bytes: &[u8]) -> Frame {
    Frame::decode(Bytes::copy_from_slice(bytes), Framing::Normal).unwrap()
}

const IDS: &[(&str, u32)] = &[("legacy", 1), ("alpha", 2)];

#[test]
fn every_legacy_capture_frame_decodes() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("captures/legacy-flurm")).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".hex.txt") {
            continue;
        }
        for (_, bytes) in capture_lines(path.file_name().unwrap().to_str().unwrap()) {
            if slurm_codec::deframe::looks_like_http(&bytes) {
                continue;
            }
            let f = frame(&bytes);
            assert_eq!(f.to_bytes()[..], bytes[..], "{}", path.display());
            let h = f.header().unwrap();
            match (h.msg_type.0, classify_2024(&f)) {
                (2024, Kind2024::LegacyFedInfo) => {
                    LegacyFedInfoRequest::decode(&mut Reader::new(f.body_bytes())).unwrap();
                }
                (2024, k) => assert_eq!(k, Kind2024::SlurmReservationInfo),
                (2025, _) => {
                    LegacyFedInfoResponse::decode_body(f.body_bytes(), 0).unwrap();
                }
                _ => {}
            }
            n += 1;
        }
    }
    assert_eq!(n, 14, "frames in captures/legacy-flurm (HTTP excluded)");
}

#[test]
fn the_2024_collision_is_told_apart_by_shape() {
    let slurm = capture_lines("legacy_reservation_collision.hex.txt");
    assert_eq!(
        classify_2024(&frame(&slurm[0].1)),
        Kind2024::SlurmReservationInfo
    );
    let legacy = capture_lines("legacy_fedinfo_zero.hex.txt");
    assert_eq!(classify_2024(&frame(&legacy[0].1)), Kind2024::LegacyFedInfo);
    // Slurm's genuine 2024 is never translated.
    let e = legacy_2024_to_slurm_2049(&frame(&slurm[0].1), ProtocolVersion::V22_05).unwrap_err();
    assert!(matches!(e, LegacyError::NotLegacy2024(_)), "{e:?}");
    // Neither are the other legacy numbers (2032-2037) classified as 2024.
    for (_, b) in capture_lines("legacy_federation_codecs.hex.txt") {
        assert_eq!(classify_2024(&frame(&b)), Kind2024::Unrecognised);
    }
}

#[test]
fn slurm_2049_to_legacy_2024_is_the_legacy_encoders_frame() {
    let lines = capture_lines("legacy_scontrol_fed.hex.txt");
    let out = slurm_2049_to_legacy_2024(&frame(&lines[0].1)).unwrap();
    assert_eq!(out[..], fixture("2049_to_2024.frame.hex")[..]);
    // ... which is byte for byte what the legacy client sent in captures #2 and #3.
    assert_eq!(
        out[..],
        capture_lines("legacy_fedinfo_populated.hex.txt")[0].1[..]
    );
}

fn check_2050(
    unsigned: &slurm_codec::legacy::translate::Unsigned,
    header_fx: &str,
    body_fx: &str,
    v: ProtocolVersion,
) -> FedInfoResponse {
    let mut h = Vec::new();
    unsigned.header.encode(&mut h);
    assert_eq!(hex(&h), hex(&fixture(header_fx)), "header");
    assert_eq!(hex(&unsigned.body), hex(&fixture(body_fx)), "body");
    // Sealed with a credential, the frame decodes with the typed Slurm decoder.
    let sealed = unsigned.seal_munge("MUNGE:test:");
    let f = Frame::decode(sealed.clone(), Framing::Normal).unwrap();
    assert_eq!(f.to_bytes(), sealed);
    assert!(matches!(
        &f.head,
        FrameHead::Normal {
            auth: AuthSection::Munge { .. },
            ..
        }
    ));
    assert_eq!(
        unsigned.k12_payload(),
        body_hash::k12_payload(f.msg_type(), &f.body_bytes())
    );
    let typed = FedInfoResponse::decode(&mut Reader::new(unsigned.body.clone()), v).unwrap();
    if let Some(Message::FedInfoResponse(m)) = f.message() {
        assert_eq!(m, &typed);
    } else {
        panic!("2050 body not typed: {:?}", f.body_error);
    }
    typed
}

#[test]
fn populated_legacy_2025_becomes_slurm_2050_at_the_requesters_version() {
    let reply = frame(&capture_lines("legacy_fedinfo_populated.hex.txt")[1].1);
    let req = frame(&capture_lines("legacy_scontrol_fed.hex.txt")[0].1);
    for (v, hdr, body) in [
        (
            ProtocolVersion::V22_05,
            "2025_populated_to_2050_v2205.header.hex",
            "2025_populated_to_2050_v2205.body.hex",
        ),
        (
            ProtocolVersion::V24_11,
            "2025_populated_to_2050_v2411.header.hex",
            "2025_populated_to_2050_v2411.body.hex",
        ),
    ] {
        let mut rh = req.header().unwrap().clone();
        rh.version = v;
        let out = legacy_2025_to_slurm_2050(&reply, &rh, IDS).unwrap();
        let typed = check_2050(&out, hdr, body, v);
        // The federation facts, read back through Slurm's layout.
        let fed = typed.federation.expect("a federation");
        assert_eq!(fed.name.text().as_deref(), Some("fed1"));
        let clusters: Vec<_> = fed
            .cluster_list
            .0
            .unwrap()
            .into_iter()
            .map(|c| c.unwrap())
            .collect();
        let facts: Vec<_> = clusters
            .iter()
            .map(|c| {
                (
                    c.name.text().unwrap(),
                    c.control_host.text().unwrap(),
                    c.control_port,
                    c.fed_id,
                    c.fed_state,
                )
            })
            .collect();
        assert_eq!(
            facts,
            [
                (
                    "legacy".into(),
                    "flurm-head".into(),
                    6817,
                    1,
                    FedState(FedState::ACTIVE)
                ),
                (
                    "alpha".into(),
                    "127.0.0.1".into(),
                    6817,
                    2,
                    FedState(FedState::ACTIVE)
                ),
            ]
        );
        assert_eq!(
            clusters[0].fed_feature_list.0.as_ref().unwrap()[0]
                .text()
                .as_deref(),
            Some("gpu")
        );
    }
}

#[test]
fn twelve_zero_legacy_2025_becomes_no_federation() {
    let reply = frame(&capture_lines("legacy_fedinfo_zero.hex.txt")[1].1);
    let req = frame(&capture_lines("legacy_scontrol_fed.hex.txt")[0].1);
    let out = legacy_2025_to_slurm_2050(&reply, req.header().unwrap(), IDS).unwrap();
    let typed = check_2050(
        &out,
        "2025_zero_to_2050_v2205.header.hex",
        "2025_zero_to_2050_v2205.body.hex",
        ProtocolVersion::V22_05,
    );
    assert_eq!(typed.federation, None);
    // The spec's test vector for this exact body (§6.2).
    assert_eq!(
        hex(&out.k12_payload()[1..]),
        "42bd88d624efb02ca73185b0597a9e2579fbf1d0bd69c82928820cef64540d07"
    );
}

#[test]
fn legacy_2024_becomes_an_empty_slurm_2049() {
    let req = frame(&capture_lines("legacy_fedinfo_populated.hex.txt")[0].1);
    let out = legacy_2024_to_slurm_2049(&req, ProtocolVersion::V22_05).unwrap();
    let mut h = Vec::new();
    out.header.encode(&mut h);
    assert_eq!(hex(&h), hex(&fixture("2024_to_2049_v2205.header.hex")));
    assert!(out.body.is_empty());
    let f = Frame::decode(out.seal_munge("MUNGE:x:"), Framing::Normal).unwrap();
    assert!(matches!(f.message(), Some(Message::FedInfoRequest(_))));
}

#[test]
fn wrong_inputs_are_typed_errors() {
    let zero = capture_lines("legacy_fedinfo_zero.hex.txt");
    // A 2024 request where a 2049 is expected and vice versa.
    let e = slurm_2049_to_legacy_2024(&frame(&zero[0].1)).unwrap_err();
    assert_eq!(
        e,
        LegacyError::WrongMsgType {
            expected: 2049,
            got: 2024
        }
    );
    // A 2025 whose body is neither layout.
    let mut bad = zero[1].1.clone();
    let n = bad.len();
    bad[n - 1] = 7; // last byte of the 12 zeros: count becomes 7 with no clusters
    let req = frame(&capture_lines("legacy_scontrol_fed.hex.txt")[0].1);
    let e = legacy_2025_to_slurm_2050(&frame(&bad), req.header().unwrap(), IDS).unwrap_err();
    assert_eq!(e.reason(), "decode");
}

#[test]
fn state_mapping_both_ways() {
    assert_eq!(
        legacy_state_to_fed_state(&LegacyClusterState::Up),
        FedState(1)
    );
    assert_eq!(
        legacy_state_to_fed_state(&LegacyClusterState::Down),
        FedState(2)
    );
    assert_eq!(
        legacy_state_to_fed_state(&LegacyClusterState::Drain),
        FedState(0x11)
    );
    for s in [
        LegacyClusterState::Up,
        LegacyClusterState::Down,
        LegacyClusterState::Drain,
    ] {
        assert_eq!(fed_state_to_legacy_state(legacy_state_to_fed_state(&s)), s);
    }
    assert_eq!(
        fed_state_to_legacy_state(FedState(0x21)),
        LegacyClusterState::Down
    );
}
