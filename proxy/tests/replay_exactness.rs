//! A frame that does not re-encode exactly is reported (summary line, JSON
//! `"exact": false`), counted (`Totals::exact`), and makes `fedproxy replay` exit 1.

use std::path::Path;

use bytes::Bytes;
use fedproxy::replay::exit_status;
use fedproxy_replay::{replay_capture, ReplayedConnection, ReplayedFrame, Totals};
use slurm_codec::conn::ObservedFrame;
use tcpflow::read_capture;

fn fed_info() -> Vec<ReplayedConnection> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/slurm-22.05/fed_info.pcap");
    replay_capture(read_capture(&path).unwrap())
}

/// The first frame of the capture, reported against wire bytes that differ from
/// its re-encoding in one byte (what a codec bug that changes bytes looks like).
fn make_first_frame_inexact(conns: &mut [ReplayedConnection]) -> (usize, u64) {
    let c = conns.iter_mut().find(|c| !c.frames.is_empty()).unwrap();
    let f = &c.frames[0];
    let mut wire = f.frame.to_bytes().to_vec();
    *wire.last_mut().unwrap() ^= 0x01;
    let observed = ObservedFrame {
        dir: f.dir,
        stream_offset: f.stream_offset,
        raw: Bytes::from(wire),
        frame: f.frame.clone(),
        version_range: None,
    };
    let ts = f.ts;
    c.frames[0] = ReplayedFrame::observed(observed, ts);
    (c.id, c.frames[0].stream_offset)
}

#[test]
fn the_bundled_capture_is_exact_and_exits_0() {
    let conns = fed_info();
    let mut t = Totals::default();
    t.add(&conns);
    assert!(t.frames > 0);
    assert_eq!(t.exact, t.frames);
    assert_eq!(exit_status(&t, true), 0);
}

#[test]
fn a_non_exact_frame_is_reported_counted_and_exits_1() {
    let mut conns = fed_info();
    let (conn_id, offset) = make_first_frame_inexact(&mut conns);
    let c = conns.iter().find(|c| c.id == conn_id).unwrap();
    assert!(
        !c.frames[0].exact,
        "ReplayedFrame::observed must compare the bytes"
    );

    let mut t = Totals::default();
    t.add(&conns);
    assert_eq!(t.exact, t.frames - 1, "counted");
    assert!(!t.ok());
    assert_eq!(exit_status(&t, true), 1, "fedproxy replay exits 1");

    let text = fedproxy_replay::summary::render("fed_info.pcap", &conns);
    let line = format!("  not exact: conn {conn_id} ");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&line) && l.contains(&format!("stream offset {offset} "))),
        "reported:\n{text}"
    );
    assert!(text.contains(&format!("{}/{} byte-exact", t.frames - 1, t.frames)));

    let json = fedproxy_replay::json::frame_json("fed_info.pcap", c, &c.frames[0]);
    assert_eq!(json["exact"], serde_json::json!(false));
}

#[test]
fn a_failed_live_replay_exits_1_too() {
    let mut t = Totals::default();
    t.add(&fed_info());
    assert_eq!(exit_status(&t, false), 1);
}
