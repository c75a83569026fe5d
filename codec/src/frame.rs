//! Frames (spec §3): normal (`u32 L ‖ header ‖ auth ‖ body`) and persist
//! (`u32 L ‖ u16 msg_type ‖ body`). `Frame::decode` + `Frame::encode` are exact
//! inverses: the length prefix, header and auth section are re-encoded from their
//! fields, and modelled bodies from their typed fields.

use bytes::{BufMut, Bytes, BytesMut};

use crate::auth::AuthSection;
use crate::error::{DecodeError, ErrorKind, Result};
use crate::flags::HeaderFlags;
use crate::header::Header;
use crate::msg::Message;
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::wire::Reader;

/// How a connection direction is framed right now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    Normal,
    /// After PERSIST_INIT. `version` = the negotiated one (None when the handshake
    /// was not seen, e.g. a capture that starts mid-connection).
    Persist {
        ns: Namespace,
        version: Option<ProtocolVersion>,
    },
}

impl Framing {
    /// The output label of frames under this framing (a normal frame with the
    /// slurmdbd prefix is refined by [`Frame::framing_kind`]).
    pub fn kind(self) -> FramingKind {
        match self {
            Framing::Normal => FramingKind::Normal,
            Framing::Persist {
                ns: Namespace::Dbd, ..
            } => FramingKind::Dbd,
            Framing::Persist { .. } => FramingKind::Persist,
        }
    }
}

/// The framing label used in output: "normal", "persist" or "dbd" (anything
/// slurmdbd-specific: the msg_type-prefixed header or a DBD persistent connection).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FramingKind {
    Normal,
    Persist,
    Dbd,
}

impl FramingKind {
    /// The msg_type namespace of frames with this framing.
    pub fn namespace(self) -> Namespace {
        match self {
            FramingKind::Dbd => Namespace::Dbd,
            FramingKind::Normal | FramingKind::Persist => Namespace::Slurm,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FramingKind::Normal => "normal",
            FramingKind::Persist => "persist",
            FramingKind::Dbd => "dbd",
        }
    }
}

/// What precedes the body.
// Normal is by far the common head: boxing it would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum FrameHead {
    Normal {
        header: Header,
        auth: AuthSection,
    },
    Persist {
        msg_type: MsgType,
        ns: Namespace,
        version: Option<ProtocolVersion>,
    },
}

/// A body: typed when modelled and decodable, else the raw bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Raw(Bytes),
    Msg(Box<Message>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub head: FrameHead,
    pub body: Body,
    /// Bytes after body_length (accepted by upstream 22.05.0–22.05.10 only).
    pub trailing: Bytes,
    /// Why a modelled body stayed raw (the frame itself still round-trips).
    pub body_error: Option<DecodeError>,
    /// The layout a typed body was decoded with when the frame's own version was
    /// unknown (a persistent connection seen without its handshake).
    pub inferred_version: Option<ProtocolVersion>,
}

/// Which bodies to decode into typed messages.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum BodyDecoding {
    /// Every modelled type (replay, conversation, JSON).
    #[default]
    All,
    /// Only what a proxy's observer needs: the persist handshake (framing) and
    /// the federation batch and sib messages (metrics by sib_msg_type). Other
    /// bodies stay raw, which keeps the per-frame cost of relaying low.
    Observe,
}

impl BodyDecoding {
    fn wants(self, t: MsgType) -> bool {
        match self {
            BodyDecoding::All => true,
            BodyDecoding::Observe => matches!(t.0, 1433 | 4500..=4504 | 6500),
        }
    }
}

impl Frame {
    /// Decodes one whole frame (length prefix included) under `framing`.
    pub fn decode(raw: Bytes, framing: Framing) -> Result<Frame> {
        Frame::decode_with(raw, framing, BodyDecoding::All)
    }

    /// As [`Frame::decode`], typing only the bodies `bodies` asks for.
    pub fn decode_with(raw: Bytes, framing: Framing, bodies: BodyDecoding) -> Result<Frame> {
        Frame::decode_hinted(raw, framing, bodies, None)
    }

    /// As [`Frame::decode_with`]; a persist frame of unknown version tries the
    /// `guess` layout first (the connection's earlier finding, or a hint).
    pub fn decode_hinted(
        raw: Bytes,
        framing: Framing,
        bodies: BodyDecoding,
        guess: Option<ProtocolVersion>,
    ) -> Result<Frame> {
        let mut r = Reader::new(raw);
        let len = r.u32()?;
        if len as usize != r.remaining() {
            return Err(DecodeError::new(
                0,
                ErrorKind::Truncated {
                    needed: len as usize + 4,
                    available: r.remaining() + 4,
                },
            ));
        }
        match framing {
            Framing::Normal => {
                let header = Header::decode(&mut r)?;
                let auth = AuthSection::decode(
                    &mut r,
                    header.body_length,
                    header.flags.contains(HeaderFlags::NO_AUTH_CRED),
                )?;
                let base = r.offset();
                let body = r.bytes(header.body_length as usize)?;
                let trailing = r.rest();
                let ns = if header.dbd_msg_type.is_some() {
                    Namespace::Dbd
                } else {
                    Namespace::Slurm
                };
                let (body, body_error, _) = if bodies.wants(header.msg_type) {
                    typed_body(header.msg_type, ns, Some(header.version), body, base, None)
                } else {
                    (Body::Raw(body), None, None)
                };
                Ok(Frame {
                    head: FrameHead::Normal { header, auth },
                    body,
                    trailing,
                    body_error,
                    inferred_version: None,
                })
            }
            Framing::Persist { ns, version } => {
                let at = r.offset();
                let msg_type = MsgType(r.u16().map_err(|_| {
                    DecodeError::new(
                        at,
                        ErrorKind::LengthUnderMinimum {
                            len: len as u64,
                            min: 2,
                        },
                    )
                })?);
                let base = r.offset();
                let body = r.rest();
                let (body, body_error, inferred) = if bodies.wants(msg_type) {
                    typed_body(msg_type, ns, version, body, base, guess)
                } else {
                    (Body::Raw(body), None, None)
                };
                let inferred_version = if version.is_none() { inferred } else { None };
                Ok(Frame {
                    head: FrameHead::Persist {
                        msg_type,
                        ns,
                        version,
                    },
                    body,
                    trailing: Bytes::new(),
                    body_error,
                    inferred_version,
                })
            }
        }
    }

    /// Re-encodes the frame: prefix, head and body from their fields.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u32(0);
        match &self.head {
            FrameHead::Normal { header, auth } => {
                header.encode(out);
                auth.encode(out);
            }
            FrameHead::Persist { msg_type, .. } => out.put_u16(msg_type.0),
        }
        match &self.body {
            Body::Raw(b) => out.put_slice(b),
            Body::Msg(m) => m.encode(out, self.body_version()),
        }
        out.put_slice(&self.trailing);
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    pub fn msg_type(&self) -> MsgType {
        match &self.head {
            FrameHead::Normal { header, .. } => header.msg_type,
            FrameHead::Persist { msg_type, .. } => *msg_type,
        }
    }

    /// The version the body is packed at, if known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        match &self.head {
            FrameHead::Normal { header, .. } => Some(header.version),
            FrameHead::Persist { version, .. } => *version,
        }
    }

    /// The version a typed body is packed at: the frame's, or the inferred one.
    fn body_version(&self) -> ProtocolVersion {
        self.version()
            .or(self.inferred_version)
            .unwrap_or(ProtocolVersion::V22_05)
    }

    pub fn namespace(&self) -> Namespace {
        match &self.head {
            FrameHead::Normal { header, .. } if header.dbd_msg_type.is_some() => Namespace::Dbd,
            FrameHead::Normal { .. } => Namespace::Slurm,
            FrameHead::Persist { ns, .. } => *ns,
        }
    }

    pub fn framing_kind(&self) -> FramingKind {
        match &self.head {
            FrameHead::Normal { header, .. } if header.dbd_msg_type.is_some() => FramingKind::Dbd,
            FrameHead::Normal { .. } => FramingKind::Normal,
            FrameHead::Persist { .. } => self.framing().kind(),
        }
    }

    /// The framing this frame was decoded under (decode it again with this).
    pub fn framing(&self) -> Framing {
        match &self.head {
            FrameHead::Normal { .. } => Framing::Normal,
            FrameHead::Persist { ns, version, .. } => Framing::Persist {
                ns: *ns,
                version: *version,
            },
        }
    }

    pub fn header(&self) -> Option<&Header> {
        match &self.head {
            FrameHead::Normal { header, .. } => Some(header),
            FrameHead::Persist { .. } => None,
        }
    }

    pub fn message(&self) -> Option<&Message> {
        match &self.body {
            Body::Msg(m) => Some(m),
            Body::Raw(_) => None,
        }
    }

    /// The body's wire bytes (re-encoded when typed).
    pub fn body_bytes(&self) -> Bytes {
        match &self.body {
            Body::Raw(b) => b.clone(),
            Body::Msg(m) => {
                let mut out = BytesMut::new();
                m.encode(&mut out, self.body_version());
                out.freeze()
            }
        }
    }
}

/// Decodes a body when its type is modelled. With an unknown version (persist
/// frames seen without their handshake) each release's layout is tried, oldest
/// first, preferring one under which every nested item is typed too (a batch's
/// outer layout is the same in every release). Returns the version that worked.
fn typed_body(
    msg_type: MsgType,
    ns: Namespace,
    version: Option<ProtocolVersion>,
    body: Bytes,
    base: usize,
    guess: Option<ProtocolVersion>,
) -> (Body, Option<DecodeError>, Option<ProtocolVersion>) {
    if !Message::is_modelled(msg_type) {
        return (Body::Raw(body), None, None);
    }
    let mut order = [ProtocolVersion::V22_05; 9];
    let candidates: &[ProtocolVersion] = match (&version, guess) {
        (Some(v), _) => std::slice::from_ref(v),
        (None, Some(g)) => {
            order[0] = g;
            let rest = ProtocolVersion::MODERN.iter().filter(|&&v| v != g);
            let n = 1 + rest.clone().count();
            for (slot, v) in order[1..].iter_mut().zip(rest) {
                *slot = *v;
            }
            &order[..n]
        }
        (None, None) => &ProtocolVersion::MODERN,
    };
    let mut first_err = None;
    let mut partial = None;
    for &v in candidates {
        match Message::decode(msg_type, ns, v, body.clone(), base) {
            None => return (Body::Raw(body), None, None),
            Some(Ok(m)) if m.is_fully_typed() || version.is_some() => {
                return (Body::Msg(Box::new(m)), None, Some(v))
            }
            Some(Ok(m)) => {
                partial.get_or_insert((m, v));
            }
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match partial {
        Some((m, v)) => (Body::Msg(Box::new(m)), None, Some(v)),
        None => (Body::Raw(body), first_err, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_2024_without_auth_roundtrips() {
        // Legacy FLURM's 2024: 16-byte header, no auth section, u32 show_flags.
        let wire = Bytes::from_static(&[
            0, 0, 0, 0x14, 0x26, 0, 0, 0, 0x07, 0xe8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let f = Frame::decode(wire.clone(), Framing::Normal).unwrap();
        assert_eq!(
            f.head,
            FrameHead::Normal {
                header: Header::new(ProtocolVersion::V22_05, HeaderFlags(0), MsgType(2024), 4),
                auth: AuthSection::Absent,
            }
        );
        assert_eq!(f.to_bytes(), wire);
    }

    #[test]
    fn persist_rc_is_typed_and_exact() {
        let wire = Bytes::from_static(&[
            0, 0, 0, 0x0e, 0x05, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x26, 0,
        ]);
        let f = Frame::decode(
            wire.clone(),
            Framing::Persist {
                ns: Namespace::Slurm,
                version: None,
            },
        )
        .unwrap();
        assert!(matches!(f.message(), Some(Message::PersistRc(rc)) if rc.rc == 0));
        assert_eq!(f.to_bytes(), wire);
    }
}
