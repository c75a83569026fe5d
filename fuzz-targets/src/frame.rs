//! Frame decode under every framing and version, and each typed body.

use bytes::{Bytes, BytesMut};
use slurm_codec::frame::{BodyDecoding, Frame, Framing};
use slurm_codec::msg::Message;
use slurm_codec::msg_type::{MsgType, Namespace};
use slurm_codec::ProtocolVersion;

/// Every framing a frame can be decoded under: normal, then persist in both
/// numberings with no version (handshake not seen) and at each known version.
pub fn framings() -> Vec<Framing> {
    let mut out = vec![Framing::Normal];
    for ns in [Namespace::Slurm, Namespace::Dbd] {
        out.push(Framing::Persist { ns, version: None });
        for v in ProtocolVersion::ALL {
            out.push(Framing::Persist {
                ns,
                version: Some(v),
            });
        }
    }
    out
}

/// The index of `f` in [`framings`] (for seeds).
pub fn framing_index(f: Framing) -> u8 {
    framings().iter().position(|x| *x == f).unwrap_or(0) as u8
}

/// Input: `framing index ‖ guess index ‖ frame bytes` (length prefix included;
/// the prefix is not fixed up, so length mismatches are exercised too).
pub fn decode(data: &[u8]) {
    let [sel, guess, raw @ ..] = data else {
        return;
    };
    let all = framings();
    let framing = all[*sel as usize % all.len()];
    let guess = ProtocolVersion::ALL.get(*guess as usize % 16).copied();
    let raw = Bytes::copy_from_slice(raw);
    for bodies in [BodyDecoding::All, BodyDecoding::Observe] {
        let Ok(frame) = Frame::decode_hinted(raw.clone(), framing, bodies, guess) else {
            continue;
        };
        let encoded = frame.to_bytes();
        let prefix = u32::from_be_bytes(encoded[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(prefix + 4, encoded.len(), "length prefix does not match");
        if encoded == raw {
            continue;
        }
        // Not exact (e.g. trailing bytes were dropped): the re-encoding must
        // itself be a stable frame under the framing it decoded with.
        let again = Frame::decode_hinted(encoded.clone(), frame.framing(), bodies, guess)
            .unwrap_or_else(|e| panic!("re-encoding does not decode: {e}"));
        assert_eq!(again.to_bytes(), encoded, "re-encoding is not stable");
    }
}

/// The modelled message types, in both numberings where a body model exists.
pub fn modelled() -> Vec<(MsgType, Namespace)> {
    let mut out: Vec<_> = MsgType::all_slurm()
        .map(|(t, _)| t)
        .filter(|t| Message::is_modelled(*t))
        .map(|t| (t, Namespace::Slurm))
        .collect();
    out.push((MsgType::PERSIST_RC, Namespace::Dbd));
    out.push((MsgType(6500), Namespace::Dbd));
    out
}

/// Input: `type index ‖ version index ‖ body`. A body that decodes re-encodes to
/// exactly its bytes (the whole body is consumed by a typed decode).
pub fn typed_body(data: &[u8]) {
    let [t, v, body @ ..] = data else {
        return;
    };
    let types = modelled();
    let (msg_type, ns) = types[*t as usize % types.len()];
    let version = ProtocolVersion::ALL[*v as usize % ProtocolVersion::ALL.len()];
    let body = Bytes::copy_from_slice(body);
    let Some(Ok(m)) = Message::decode(msg_type, ns, version, body.clone(), 0) else {
        return;
    };
    let mut out = BytesMut::new();
    m.encode(&mut out, version);
    assert_eq!(
        out.freeze(),
        body,
        "{msg_type:?} at {version:?} does not re-encode exactly"
    );
    let _ = m.summary();
}
