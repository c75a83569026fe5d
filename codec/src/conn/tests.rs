//! Connection tests: the strict state machine and mid-stream recovery.

use super::*;

fn persist_rc() -> Vec<u8> {
    vec![
        0, 0, 0, 0x0e, 0x05, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x26, 0,
    ]
}

fn ping_request() -> Vec<u8> {
    let mut v = vec![0, 0, 0, 16 + 8];
    v.extend_from_slice(&[0x26, 0, 0, 0, 0x03, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 101, 0, 0, 0, 0]); // auth/munge, NULL credential
    v
}

fn frames(ev: &[ConnEvent]) -> Vec<(Direction, MsgType)> {
    ev.iter()
        .filter_map(|e| match e {
            ConnEvent::Frame(o) => Some((o.dir, o.frame.msg_type())),
            _ => None,
        })
        .collect()
}

#[test]
fn accepted_connection_sniffs_persist_framing_but_never_flips() {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::Accepted,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    // A reply type arriving client → server: orientation is known, so it stays.
    c.feed(Direction::ClientToServer, &persist_rc(), &mut ev);
    assert_eq!(
        frames(&ev),
        vec![(Direction::ClientToServer, MsgType::PERSIST_RC)]
    );
    assert!(!c.is_flipped());
}

#[test]
fn mid_stream_reorients_from_a_reply() {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::MidStream,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &persist_rc(), &mut ev);
    assert!(c.is_flipped());
    assert_eq!(
        frames(&ev),
        vec![(Direction::ServerToClient, MsgType::PERSIST_RC)]
    );
}

#[test]
fn mid_stream_skips_to_the_first_frame_boundary() {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::MidStream,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    let mut data = vec![0xaa, 0xbb, 0xcc]; // tail of a frame the capture missed
    data.extend_from_slice(&ping_request());
    c.feed(Direction::ClientToServer, &data, &mut ev);
    assert!(matches!(ev[0], ConnEvent::Resync { skipped: 3, .. }));
    assert_eq!(
        frames(&ev),
        vec![(Direction::ClientToServer, MsgType::REQUEST_PING)]
    );
}

#[test]
fn a_decode_error_makes_only_that_direction_opaque() {
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(
        Direction::ClientToServer,
        &[0x7f, 0xff, 0xff, 0xff, 0, 0],
        &mut ev,
    );
    assert!(
        matches!(&ev[0], ConnEvent::Error { error, .. } if error.reason() == "length_over_limit")
    );
    assert!(c.is_opaque(Direction::ClientToServer));
    assert!(!c.is_opaque(Direction::ServerToClient));
    ev.clear();
    c.feed(Direction::ServerToClient, &ping_request(), &mut ev);
    assert_eq!(frames(&ev).len(), 1);
}

fn persist_init_request() -> Vec<u8> {
    // 22.05 REQUEST_PERSIST_INIT: header (flag 0x1), NULL munge credential, body
    // version 0x2600, "c1", FED, port 26817.
    let body = [0x26, 0, 0, 0, 0, 3, b'c', b'1', 0, 0, 2, 0x68, 0xc1];
    let mut v = vec![0, 0, 0, (16 + 8 + body.len()) as u8];
    v.extend_from_slice(&[
        0x26,
        0,
        0,
        1,
        0x19,
        0x64,
        0,
        0,
        0,
        body.len() as u8,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    v.extend_from_slice(&[0, 0, 0, 101, 0, 0, 0, 0]);
    v.extend_from_slice(&body);
    v
}

#[test]
fn a_persist_init_refused_with_a_normal_frame_is_not_read_as_persist() {
    // 24.11+ answers an unauthenticated PERSIST_INIT with SLURM_RC 1007, normal
    // framing, no credential.
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &persist_init_request(), &mut ev);
    let reply = [
        0, 0, 0, 0x14, 0x2a, 0, 0, 0x41, 0x1f, 0x41, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xef,
    ];
    c.feed(Direction::ServerToClient, &reply, &mut ev);
    assert_eq!(
        frames(&ev)[1],
        (Direction::ServerToClient, MsgType::RESPONSE_SLURM_RC)
    );
    assert!(ev
        .iter()
        .any(|e| matches!(e, ConnEvent::PersistRefused { rc: 1007, .. })));
    assert_eq!(c.kind(), ConnKind::Oneshot);
}

#[test]
fn an_accepted_persist_init_switches_both_directions() {
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &persist_init_request(), &mut ev);
    c.feed(Direction::ServerToClient, &persist_rc(), &mut ev);
    assert_eq!(c.kind(), ConnKind::FedPersist);
    // A persist-framed request from the opener now decodes.
    c.feed(
        Direction::ClientToServer,
        &[0, 0, 0, 2, 0x03, 0xf0],
        &mut ev,
    );
    assert_eq!(
        frames(&ev).last(),
        Some(&(Direction::ClientToServer, MsgType::REQUEST_PING))
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        ConnEvent::PersistEstablished {
            version: ProtocolVersion::V22_05,
            ..
        }
    )));
}

#[test]
fn mid_stream_resyncs_even_from_a_six_byte_first_read() {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::MidStream,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    c.feed(
        Direction::ClientToServer,
        &[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
        &mut ev,
    );
    c.feed(Direction::ClientToServer, &ping_request(), &mut ev);
    assert_eq!(
        frames(&ev),
        vec![(Direction::ClientToServer, MsgType::REQUEST_PING)]
    );
}

#[test]
fn mid_stream_gives_up_after_64_kib_without_a_frame_start() {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::MidStream,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &vec![0xff; 70 * 1024], &mut ev);
    assert!(matches!(&ev[..], [ConnEvent::Error { .. }]));
    assert_eq!(c.buffered(), 0);
}

#[test]
fn a_gap_drops_the_partial_frame_and_resyncs() {
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    let ping = ping_request();
    c.feed(Direction::ClientToServer, &ping[..10], &mut ev); // then bytes were lost
    c.gap(Direction::ClientToServer);
    let mut rest = ping[20..].to_vec(); // tail of the broken frame
    rest.extend_from_slice(&ping);
    c.feed(Direction::ClientToServer, &rest, &mut ev);
    assert_eq!(
        frames(&ev),
        vec![(Direction::ClientToServer, MsgType::REQUEST_PING)]
    );
}

#[test]
fn slurmdbd_acct_update_connection_uses_slurm_numbering_in_persist_frames() {
    // 23.02+: slurmdbd opens a persist_type 5 (ACCT_UPDATE) connection to slurmctld.
    let body = [
        0x27, 0, 0, 0, 0, 5, b's', b'd', b'b', b'd', 0, 0, 5, 0x1a, 0xa3,
    ];
    let mut init = vec![0, 0, 0, (16 + 8 + body.len()) as u8];
    init.extend_from_slice(&[
        0x27,
        0,
        0,
        1,
        0x19,
        0x64,
        0,
        0,
        0,
        body.len() as u8,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    init.extend_from_slice(&[0, 0, 0, 101, 0, 0, 0, 0]);
    init.extend_from_slice(&body);
    let rc = [
        0, 0, 0, 0x0e, 0x05, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x27, 0,
    ];
    let update = [0, 0, 0, 6, 0x27, 0x11, 0, 0, 0, 0]; // ACCOUNTING_UPDATE_MSG, 0 updates
    let reply = [0, 0, 0, 6, 0x1f, 0x41, 0, 0, 0, 0];
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &init, &mut ev);
    c.feed(Direction::ServerToClient, &rc, &mut ev);
    c.feed(Direction::ClientToServer, &update, &mut ev);
    c.feed(Direction::ServerToClient, &reply, &mut ev);
    assert_eq!(c.kind(), ConnKind::OtherPersist);
    assert_eq!(
        frames(&ev),
        vec![
            (Direction::ClientToServer, MsgType::REQUEST_PERSIST_INIT),
            (Direction::ServerToClient, MsgType::PERSIST_RC),
            (Direction::ClientToServer, MsgType::ACCOUNTING_UPDATE_MSG),
            (Direction::ServerToClient, MsgType::RESPONSE_SLURM_RC),
        ]
    );
    assert!(ev.iter().all(|e| !matches!(e, ConnEvent::Error { .. })));
}

#[test]
fn a_2411_reply_without_credential_decodes() {
    // 24.11+ replies carry no auth section (flag 0x40).
    let reply = [
        0, 0, 0, 0x14, 0x2a, 0, 0, 0x40, 0x1f, 0x41, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ServerToClient, &reply, &mut ev);
    match &ev[..] {
        [ConnEvent::Frame(o)] => {
            assert!(o.is_exact());
            assert!(matches!(
                o.frame.head,
                crate::frame::FrameHead::Normal {
                    auth: crate::auth::AuthSection::NoCredential,
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
}

/// The version ranges of the frames of a connection fed `frames` (all
/// server → client) as accepted by a proxy or seen mid-stream.
fn ranges(
    hint: Option<ProtocolVersion>,
    frames: &[Vec<u8>],
) -> Vec<Option<(ProtocolVersion, ProtocolVersion)>> {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::Accepted,
        version_hint: hint,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    for f in frames {
        c.feed(Direction::ServerToClient, f, &mut ev);
    }
    ev.iter()
        .filter_map(|e| match e {
            ConnEvent::Frame(o) => {
                assert!(o.is_exact());
                Some(o.version_range)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_persist_frame_laid_out_alike_everywhere_claims_a_range_not_the_oldest() {
    // PERSIST_RC without its handshake: every release lays it out alike.
    let got = ranges(None, &[persist_rc()]);
    assert_eq!(
        got,
        vec![Some((ProtocolVersion::V22_05, ProtocolVersion::V26_05))]
    );
}

#[test]
fn the_version_learned_from_the_rest_of_the_capture_is_reported() {
    let got = ranges(Some(ProtocolVersion::V24_11), &[persist_rc(), persist_rc()]);
    let v = Some((ProtocolVersion::V24_11, ProtocolVersion::V24_11));
    assert_eq!(got, vec![v, v]);
}

#[test]
fn a_hint_naming_no_known_release_is_not_claimed() {
    // A hint that is no release (a guess gone wrong) never becomes a claim.
    let bogus = ProtocolVersion(0x2650);
    let got = ranges(Some(bogus), &[persist_rc()]);
    assert_eq!(
        got,
        vec![Some((ProtocolVersion::V22_05, ProtocolVersion::V26_05))]
    );
}

#[test]
fn the_answer_to_a_seen_persist_init_carries_its_version() {
    // PERSIST_RC answering the handshake (ret_info 0x2A00): that frame is 24.11.
    let mut rc = persist_rc();
    rc[16] = 0x2a;
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &persist_init_request(), &mut ev);
    c.feed(Direction::ServerToClient, &rc, &mut ev);
    let v = ev.iter().find_map(|e| match e {
        ConnEvent::Frame(o) if o.frame.msg_type() == MsgType::PERSIST_RC => Some(o.version_range),
        _ => None,
    });
    let want = (ProtocolVersion::V24_11, ProtocolVersion::V24_11);
    assert_eq!(v, Some(Some(want)));
}

#[test]
fn bytes_of_an_opaque_direction_still_advance_its_offsets() {
    // Fuzz finding (conn_beginning): after an error, a capture gap resyncs the
    // direction; frames found then must carry their true stream offsets.
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &[0x4d, 0, 0, 0, 0, 0], &mut ev);
    assert!(c.is_opaque(Direction::ClientToServer));
    c.feed(Direction::ClientToServer, &[0; 30], &mut ev);
    c.gap(Direction::ClientToServer);
    ev.clear();
    c.feed(Direction::ClientToServer, &ping_request(), &mut ev);
    match &ev[..] {
        [ConnEvent::Frame(o)] => assert_eq!(o.stream_offset, 36),
        other => panic!("{other:?}"),
    }
}

fn error_reasons(ev: &[ConnEvent]) -> Vec<&'static str> {
    ev.iter()
        .filter_map(|e| match e {
            ConnEvent::Error { error, .. } => Some(error.reason()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_tls_client_hello_is_reported_as_tls() {
    // TLS 1.2 record header, handshake type 1 (ClientHello), in every start mode.
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    for start in [
        StreamStart::Beginning,
        StreamStart::Accepted,
        StreamStart::MidStream,
    ] {
        let mut c = Connection::new(ConnConfig {
            start,
            ..ConnConfig::default()
        });
        let mut ev = Vec::new();
        c.feed(Direction::ClientToServer, &hello, &mut ev);
        assert_eq!(error_reasons(&ev), ["tls"], "{start:?}");
        assert_eq!(c.buffered(), 0);
    }
}

#[test]
fn a_frame_cut_off_at_eof_is_truncated() {
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, &ping_request()[..20], &mut ev);
    assert!(ev.is_empty());
    c.eof(Direction::ClientToServer, &mut ev);
    match &ev[..] {
        [ConnEvent::Error { error, .. }] => assert_eq!(
            error.kind,
            crate::error::ErrorKind::Truncated {
                needed: 28,
                available: 20
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.buffered(), 0);
    // A direction that ended on a frame boundary reports nothing.
    c.eof(Direction::ServerToClient, &mut ev);
    assert_eq!(ev.len(), 1);
}

#[test]
fn fewer_than_six_bytes_then_eof_is_truncated_in_every_mode() {
    for start in [
        StreamStart::Beginning,
        StreamStart::Accepted,
        StreamStart::MidStream,
    ] {
        let mut c = Connection::new(ConnConfig {
            start,
            ..ConnConfig::default()
        });
        let mut ev = Vec::new();
        c.feed(Direction::ClientToServer, &[0, 0, 0], &mut ev);
        c.eof(Direction::ClientToServer, &mut ev);
        assert_eq!(error_reasons(&ev), ["truncated"], "{start:?}");
    }
}

#[test]
fn the_unseen_rest_of_an_oversized_frame_is_truncated_at_eof() {
    let mut c = Connection::new(ConnConfig {
        max_buffered: 64,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    let mut big = vec![0, 0, 4, 0, 0x26, 0, 0, 0, 0x03, 0xf0];
    big.resize(100, 0);
    c.feed(Direction::ClientToServer, &big, &mut ev);
    assert!(matches!(ev[..], [ConnEvent::Oversized { len: 1024, .. }]));
    c.eof(Direction::ClientToServer, &mut ev);
    assert_eq!(error_reasons(&ev), ["truncated"]);
}

#[test]
fn oversized_data_without_a_header_is_an_error_not_a_message() {
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    let mut garbage = vec![0x3f, 0xff, 0xff, 0xf0];
    garbage.resize(2 << 20, 0xab);
    c.feed(Direction::ClientToServer, &garbage, &mut ev);
    assert_eq!(error_reasons(&ev), ["unsupported_version"]);
    assert!(!ev.iter().any(|e| matches!(e, ConnEvent::Oversized { .. })));
    assert!(c.is_opaque(Direction::ClientToServer));
    // The reproducer of issue 10 (a real header, oversized) is still Oversized.
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    let mut big = vec![0x3f, 0xff, 0xff, 0xf0, 0x26, 0, 0, 0, 0x08, 0x01];
    big.resize(2 << 20, 0);
    c.feed(Direction::ClientToServer, &big, &mut ev);
    assert!(matches!(
        ev[..],
        [ConnEvent::Oversized {
            msg_type: Some(MsgType(2049)),
            ..
        }]
    ));
}
