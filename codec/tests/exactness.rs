//! `ObservedFrame::is_exact` is false when the re-encoding differs from the wire
//! bytes (it must not be a constant), and the 22.05.0 – 22.05.10 trailing-bytes
//! case (body_length shorter than what follows the auth section; those releases
//! ignore the rest) decodes and re-encodes exactly.

use bytes::Bytes;
use slurm_codec::conn::{ConnConfig, ConnEvent, Connection, ObservedFrame};
use slurm_codec::frame::{Frame, Framing};
use slurm_codec::msg::Message;
use slurm_codec::{Direction, MsgType};

/// REQUEST_PING at 22.05 with a NULL munge credential, then `trailing` bytes
/// that body_length (0) does not cover.
fn ping_with_trailing(trailing: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, (24 + trailing.len()) as u8];
    v.extend_from_slice(&[0x26, 0, 0, 0, 0x03, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 101, 0, 0, 0, 0]);
    v.extend_from_slice(trailing);
    v
}

/// RESPONSE_SLURM_RC rc 0 (typed body, 4 bytes) followed by trailing bytes.
fn slurm_rc_with_trailing(trailing: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, (28 + trailing.len()) as u8];
    v.extend_from_slice(&[0x26, 0, 0, 0, 0x1f, 0x41, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 101, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(trailing);
    v
}

fn observe(bytes: &[u8]) -> ObservedFrame {
    let mut c = Connection::new(ConnConfig::default());
    let mut ev = Vec::new();
    c.feed(Direction::ClientToServer, bytes, &mut ev);
    match ev.into_iter().next() {
        Some(ConnEvent::Frame(o)) => o,
        other => panic!("{other:?}"),
    }
}

#[test]
fn trailing_bytes_of_22_05_0_to_10_are_kept_and_reencoded_exactly() {
    for trailing in [&[0xde][..], &[0xde, 0xad, 0xbe, 0xef][..]] {
        let ping = observe(&ping_with_trailing(trailing));
        assert_eq!(ping.frame.msg_type(), MsgType::REQUEST_PING);
        assert_eq!(&ping.frame.trailing[..], trailing);
        assert!(ping.is_exact());

        let rc = observe(&slurm_rc_with_trailing(trailing));
        assert!(matches!(rc.frame.message(), Some(Message::SlurmRc(_))));
        assert_eq!(&rc.frame.trailing[..], trailing);
        assert!(rc.is_exact());
    }
}

#[test]
fn a_frame_whose_reencoding_differs_is_not_exact() {
    let wire = ping_with_trailing(&[1, 2, 3, 4]);
    let frame = Frame::decode(Bytes::from(wire.clone()), Framing::Normal).unwrap();
    // The same frame reported against other wire bytes: one byte differs.
    let mut other = wire.clone();
    *other.last_mut().unwrap() ^= 0xff;
    let o = ObservedFrame {
        dir: Direction::ClientToServer,
        stream_offset: 0,
        raw: Bytes::from(other),
        frame: frame.clone(),
        version_range: None,
    };
    assert!(!o.is_exact());
    // A frame that lost its trailing bytes is not exact either.
    let mut dropped = frame;
    dropped.trailing = Bytes::new();
    let o = ObservedFrame {
        dir: Direction::ClientToServer,
        stream_offset: 0,
        raw: Bytes::from(wire),
        frame: dropped,
        version_range: None,
    };
    assert!(!o.is_exact());
}
