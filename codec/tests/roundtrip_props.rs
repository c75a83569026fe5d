//! Property tests: headers, auth sections and frames built from arbitrary fields,
//! at every protocol version, encode then decode to the same fields and bytes.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use slurm_codec::auth::AuthSection;
use slurm_codec::frame::{Body, Frame, FrameHead, Framing};
use slurm_codec::header::{Forward, ForwardFields, Header, RetEntry, SlurmAddr};
use slurm_codec::msg_type::Namespace;
use slurm_codec::wire::{PackStr, Reader};
use slurm_codec::{HeaderFlags, MsgType, ProtocolVersion};

fn packstr() -> impl Strategy<Value = PackStr> {
    prop_oneof![
        Just(PackStr::NULL),
        "[a-z0-9,=:]{0,12}".prop_map(|s| PackStr::from_text(&s)),
        // Raw bytes without a NUL (22.05 accepts them): must survive untouched.
        proptest::collection::vec(any::<u8>(), 1..8).prop_map(|v| PackStr(Some(Bytes::from(v)))),
    ]
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    proptest::sample::select(ProtocolVersion::ALL.to_vec())
}

fn addr() -> impl Strategy<Value = SlurmAddr> {
    prop_oneof![
        Just(SlurmAddr::UNSPEC),
        (any::<[u8; 4]>(), any::<[u8; 2]>())
            .prop_map(|(raw, port_raw)| SlurmAddr::Inet { raw, port_raw }),
        (any::<[u8; 16]>(), any::<[u8; 2]>())
            .prop_map(|(addr, port_raw)| SlurmAddr::Inet6 { addr, port_raw }),
    ]
}

prop_compose! {
    fn header()(
        v in version(),
        flags in any::<u16>(),
        dbd in any::<bool>(),
        msg_index in any::<u16>(),
        // Message numbers never collide with version values (0x2400..=0x2D00):
        // that is what lets a decoder tell the slurmdbd prefix from a version.
        msg_type in prop_oneof![1000u16..9000, 10001u16..10004],
        body_length in 0u32..64,
        fwd_cnt in prop_oneof![Just(0u16), 1u16..4],
        nodelist in packstr(),
        net_cred in packstr(),
        timeout in any::<u32>(),
        width in any::<u16>(),
        depth in any::<u16>(),
        rets in proptest::collection::vec((any::<u32>(), packstr(), any::<u32>()), 0..3),
        orig_addr in addr(),
    ) -> Header {
        let flags = HeaderFlags(if dbd { flags | HeaderFlags::SLURMDBD_CONNECTION } else { flags });
        let fields = (fwd_cnt > 0).then(|| ForwardFields {
            nodelist,
            timeout_ms: timeout,
            tree_width: width,
            net_cred: (flags.contains(HeaderFlags::PACK_ADDRS) && v >= ProtocolVersion::V23_11).then_some(net_cred),
            tree_depth: (v >= ProtocolVersion::V24_11).then_some(depth),
        });
        Header {
            dbd_msg_type: dbd.then_some(MsgType(msg_type)),
            version: v,
            flags,
            msg_index: v.has_msg_index().then_some(msg_index),
            msg_type: MsgType(msg_type),
            body_length,
            forward: Forward { cnt: fwd_cnt, fields },
            ret_list: rets.into_iter().map(|(err, node_name, rc)| RetEntry {
                err, msg_type: MsgType::RESPONSE_SLURM_RC, node_name, body: Bytes::copy_from_slice(&rc.to_be_bytes()),
            }).collect(),
            orig_addr,
        }
    }
}

fn auth() -> impl Strategy<Value = AuthSection> {
    prop_oneof![
        packstr().prop_map(|credential| AuthSection::Munge { credential }),
        (any::<u32>(), any::<u32>(), packstr())
            .prop_map(|(uid, gid, hostname)| AuthSection::None { uid, gid, hostname }),
        (packstr(), packstr()).prop_map(|(token, username)| AuthSection::Jwt { token, username }),
        packstr().prop_map(|token| AuthSection::Slurm { token }),
        (200u32..1000, proptest::collection::vec(any::<u8>(), 0..16)).prop_map(
            |(plugin_id, raw)| AuthSection::Unknown {
                plugin_id,
                raw: Bytes::from(raw)
            }
        ),
    ]
}

proptest! {
    #[test]
    fn header_roundtrips_at_every_version(h in header()) {
        let mut out = BytesMut::new();
        h.encode(&mut out);
        prop_assert_eq!(out.len(), h.wire_len());
        let mut r = Reader::new(out.clone().freeze());
        let back = Header::decode(&mut r).unwrap();
        prop_assert!(r.is_empty());
        prop_assert_eq!(back, h);
    }

    #[test]
    fn normal_frame_roundtrips(mut h in header(), a in auth(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        // Unmodelled message type so the body stays raw; flag 0x40 must agree with the auth.
        h.msg_type = MsgType(1999);
        h.dbd_msg_type = h.dbd_msg_type.map(|_| MsgType(1999));
        h.flags = HeaderFlags(h.flags.0 & !HeaderFlags::NO_AUTH_CRED);
        h.body_length = body.len() as u32;
        let frame = Frame { head: FrameHead::Normal { header: h, auth: a }, body: Body::Raw(Bytes::from(body)), trailing: Bytes::new(), body_error: None, inferred_version: None };
        let wire = frame.to_bytes();
        let back = Frame::decode(wire.clone(), Framing::Normal).unwrap();
        prop_assert_eq!(back.to_bytes(), wire);
        prop_assert_eq!(back, frame);
    }

    #[test]
    fn persist_frame_roundtrips(t in 1000u16..11000, v in version(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let framing = Framing::Persist { ns: Namespace::Slurm, version: Some(v) };
        let mut wire = ((body.len() + 2) as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&t.to_be_bytes());
        wire.extend_from_slice(&body);
        let wire = Bytes::from(wire);
        // Any persist frame decodes (typed or raw) and re-encodes exactly.
        let f = Frame::decode(wire.clone(), framing).unwrap();
        prop_assert_eq!(f.msg_type(), MsgType(t));
        prop_assert_eq!(f.to_bytes(), wire);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_ok_means_exact(data in proptest::collection::vec(any::<u8>(), 0..96), persist in any::<bool>()) {
        let mut wire = (data.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&data);
        let wire = Bytes::from(wire);
        let framing = if persist { Framing::Persist { ns: Namespace::Slurm, version: None } } else { Framing::Normal };
        if let Ok(f) = Frame::decode(wire.clone(), framing) {
            prop_assert_eq!(f.to_bytes(), wire);
        }
    }
}

#[test]
fn frame_built_from_fields_has_real_slurm_layout() {
    // A 22.05 REQUEST_PING as scontrol sends it: 16-byte header, munge auth, empty body.
    let cred = PackStr::from_text("MUNGE:abc:");
    let frame = Frame {
        head: FrameHead::Normal {
            header: Header::new(
                ProtocolVersion::V22_05,
                HeaderFlags(0),
                MsgType::REQUEST_PING,
                0,
            ),
            auth: AuthSection::Munge { credential: cred },
        },
        body: Body::Raw(Bytes::new()),
        trailing: Bytes::new(),
        body_error: None,
        inferred_version: None,
    };
    let wire = frame.to_bytes();
    let mut expected = vec![0, 0, 0, 16 + 4 + 4 + 11];
    expected.extend_from_slice(&[
        0x26, 0x00, 0x00, 0x00, 0x03, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expected.extend_from_slice(&[0, 0, 0, 101, 0, 0, 0, 11]);
    expected.extend_from_slice(b"MUNGE:abc:\0");
    assert_eq!(&wire[..], &expected[..]);
}

/// A forwarded reply whose ret_list carries entries of types without a known body
/// layout: their bodies are delimited by what must follow (next entry, or orig_addr +
/// auth + body_length bytes), and the frame round-trips.
#[test]
fn ret_list_entries_of_unmodelled_types_are_delimited_and_exact() {
    let entry = |t: u16, node: &str, body: &[u8]| {
        let mut v = vec![0, 0, 0, 0];
        v.extend_from_slice(&t.to_be_bytes());
        PackStr::from_text(node).encode(&mut v);
        v.extend_from_slice(body);
        v
    };
    for no_cred in [false, true] {
        let body = [0u8, 0, 0, 0];
        let mut payload = vec![
            0x26,
            0x00,
            0x00,
            if no_cred { 0x40 } else { 0 },
            0x1f,
            0x41,
            0,
            0,
            0,
            4,
            0,
            0,
            0,
            3,
        ];
        // RESPONSE_ACCT_GATHER_UPDATE (1018) twice, RESPONSE_PING_SLURMD (1016) last.
        payload.extend(entry(1018, "n1", &[1, 2, 3, 4, 5, 6, 7, 8, 9]));
        payload.extend(entry(1018, "n2", &[0; 17]));
        payload.extend(entry(1020, "n3", &[0xff; 5]));
        payload.extend_from_slice(&[0, 0]); // orig_addr AF_UNSPEC
        if !no_cred {
            payload.extend_from_slice(&[0, 0, 0, 101]);
            PackStr::from_text("MUNGE:cred:").encode(&mut payload);
        }
        payload.extend_from_slice(&body);
        let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&payload);
        let wire = Bytes::from(wire);
        let f = Frame::decode(wire.clone(), Framing::Normal).unwrap();
        let h = f.header().unwrap();
        let lens: Vec<usize> = h.ret_list.iter().map(|e| e.body.len()).collect();
        assert_eq!(lens, vec![9, 17, 5], "no_cred={no_cred}");
        assert_eq!(f.to_bytes(), wire);
    }
}
