//! Slurm 2050 → legacy 2025: the real RESPONSE_FED_INFO of the 22.05 lab
//! (`captures/slurm-22.05/fed_info.pcap`) against hand-derived expected bytes
//! (`fixtures/legacy/2050_to_2025.*.hex`).

use std::path::Path;

use fedproxy_replay::replay_capture;
use slurm_codec::legacy::translate::slurm_2050_to_legacy_2025;
use slurm_codec::legacy::{LegacyClusterState, LegacyFedInfoResponse};
use slurm_codec::MsgType;
use tcpflow::read_capture;

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/legacy")
        .join(name);
    let text: String = std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
        })
        .collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn real_slurm_2050_becomes_the_legacy_2025_layout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/slurm-22.05/fed_info.pcap");
    let frame = replay_capture(read_capture(&root).unwrap())
        .into_iter()
        .flat_map(|c| c.frames)
        .map(|f| f.frame)
        .find(|f| f.msg_type() == MsgType(2050))
        .expect("a RESPONSE_FED_INFO in fed_info.pcap");
    let out = slurm_2050_to_legacy_2025(&frame, Some("alpha")).unwrap();
    let mut h = Vec::new();
    out.header.encode(&mut h);
    assert_eq!(h, fixture("2050_to_2025.header.hex"));
    assert_eq!(out.body.to_vec(), fixture("2050_to_2025.body.hex"));
    // And legacy's layout reads back to the same facts.
    let LegacyFedInfoResponse::Record(r) =
        LegacyFedInfoResponse::decode_body(out.body.clone(), 0).unwrap()
    else {
        panic!("record expected")
    };
    let facts: Vec<_> = r
        .clusters
        .iter()
        .map(|c| {
            (
                c.name.text().unwrap(),
                c.host.text().unwrap(),
                c.port,
                c.state.clone(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        [
            (
                "alpha".to_string(),
                "127.0.0.1".to_string(),
                6817,
                LegacyClusterState::Up
            ),
            (
                "beta".to_string(),
                "127.0.0.1".to_string(),
                7817,
                LegacyClusterState::Up
            ),
        ]
    );
}
