//! REQUEST_CTLD_MULT_MSG (4500) / RESPONSE_CTLD_MULT_MSG (4501), spec §8.6
//! (`_pack_buf_list_msg`, unchanged 22.05 → 26.05):
//!
//! ```text
//! u32 count
//! count × { u32 size, u32 size again (packmem length), size bytes = u16 msg_type ‖ body }
//! ```
//!
//! Each item is decoded recursively as a [`Message`] at the enclosing message's
//! version when its type is modelled and decodes exactly; otherwise it stays raw
//! (still delimited). Both size fields are kept so odd input round-trips.

use bytes::BufMut;

use crate::error::{DecodeError, Result};
use crate::msg::Message;
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::wire::{put_packmem, Decode, Encode, Reader};

use super::common::RawBytes;

/// The body of 4500 and 4501.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CtldMultMsg {
    pub items: Vec<CtldItem>,
}

/// One length-delimited sub-message.
#[derive(Clone, Debug, PartialEq)]
pub struct CtldItem {
    /// The first size field when it differs from the packmem length (Slurm always
    /// writes them equal); `None` = equal, re-derived on encode.
    pub declared_size: Option<u32>,
    pub content: ItemContent,
}

/// What a sub-message holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemContent {
    /// A modelled type that decoded exactly.
    Typed(Box<Message>),
    /// Not modelled, not decodable (`error` says why), or shorter than a msg_type.
    Raw {
        msg_type: Option<MsgType>,
        body: RawBytes,
        error: Option<DecodeError>,
    },
}

impl CtldItem {
    pub fn typed(m: Message) -> CtldItem {
        CtldItem {
            declared_size: None,
            content: ItemContent::Typed(Box::new(m)),
        }
    }

    pub fn msg_type(&self) -> Option<MsgType> {
        match &self.content {
            ItemContent::Typed(m) => Some(m.msg_type()),
            ItemContent::Raw { msg_type, .. } => *msg_type,
        }
    }

    pub fn message(&self) -> Option<&Message> {
        match &self.content {
            ItemContent::Typed(m) => Some(m),
            ItemContent::Raw { .. } => None,
        }
    }

    /// Short text for a conversation view: the message's summary, or
    /// `REQUEST_X raw 12B`.
    pub fn summary(&self) -> String {
        match &self.content {
            ItemContent::Typed(m) => m.summary(),
            ItemContent::Raw { msg_type, body, .. } => match msg_type {
                Some(t) => format!("{} raw {}B", t.display_in(Namespace::Slurm), body.len()),
                None => format!("raw {}B", body.len()),
            },
        }
    }

    fn content_bytes(&self, v: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.content {
            ItemContent::Typed(m) => {
                out.put_u16(m.msg_type().0);
                m.encode(&mut out, v);
            }
            ItemContent::Raw { msg_type, body, .. } => {
                if let Some(t) = msg_type {
                    out.put_u16(t.0);
                }
                out.extend_from_slice(&body.0);
            }
        }
        out
    }
}

impl serde::Serialize for CtldItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CtldItem", 4)?;
        st.serialize_field(
            "msg_type",
            &self.msg_type().map(|t| t.display_in(Namespace::Slurm)),
        )?;
        if let Some(d) = self.declared_size {
            st.serialize_field("declared_size", &d)?;
        }
        match &self.content {
            ItemContent::Typed(m) => st.serialize_field("body", m)?,
            ItemContent::Raw { body, error, .. } => {
                st.serialize_field("raw", body)?;
                if let Some(e) = error {
                    st.serialize_field(
                        "error",
                        &format!("{} at offset {}: {}", e.reason(), e.offset, e.kind),
                    )?;
                }
            }
        }
        st.end()
    }
}

impl CtldMultMsg {
    /// Fewest bytes an item takes: two sizes (a sub-message may be empty).
    const MIN_ITEM: usize = 8;

    /// `[SIB_MSG FED_JOB_COMPLETE job …, SEND_DEP job …]`
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.items.iter().map(CtldItem::summary).collect();
        format!("[{}]", parts.join(", "))
    }
}

impl Decode for CtldMultMsg {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        // A plain count: NO_VAL and above are rejected like any count the bytes
        // cannot cover.
        let at = r.offset();
        let n = r.u32()?;
        if (n as usize).saturating_mul(Self::MIN_ITEM) > r.remaining() {
            return Err(DecodeError::new(at, crate::error::ErrorKind::BadCount(n)));
        }
        let mut items = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let size = r.u32()?;
            let base = r.offset() + 4;
            let data = r.packmem()?;
            let declared_size = (size as usize != data.len()).then_some(size);
            let content = if data.len() < 2 {
                ItemContent::Raw {
                    msg_type: None,
                    body: RawBytes(data),
                    error: None,
                }
            } else {
                let msg_type = MsgType(u16::from_be_bytes([data[0], data[1]]));
                let body = data.slice(2..);
                if matches!(
                    msg_type,
                    MsgType::REQUEST_CTLD_MULT_MSG | MsgType::RESPONSE_CTLD_MULT_MSG
                ) {
                    // Never nested by Slurm; kept raw so recursion depth stays 1.
                    ItemContent::Raw {
                        msg_type: Some(msg_type),
                        body: RawBytes(body),
                        error: None,
                    }
                } else {
                    match Message::decode(msg_type, Namespace::Slurm, v, body.clone(), base + 2) {
                        Some(Ok(m)) => ItemContent::Typed(Box::new(m)),
                        Some(Err(e)) => ItemContent::Raw {
                            msg_type: Some(msg_type),
                            body: RawBytes(body),
                            error: Some(e),
                        },
                        None => ItemContent::Raw {
                            msg_type: Some(msg_type),
                            body: RawBytes(body),
                            error: None,
                        },
                    }
                }
            };
            items.push(CtldItem {
                declared_size,
                content,
            });
        }
        Ok(CtldMultMsg { items })
    }
}

impl Encode for CtldMultMsg {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.items.len() as u32);
        for item in &self.items {
            let data = item.content_bytes(v);
            w.put_u32(item.declared_size.unwrap_or(data.len() as u32));
            put_packmem(w, &data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::rc::{ReturnCode, SlurmRc};
    use bytes::Bytes;

    #[test]
    fn spec_8_6_response_example() {
        // Spec §8.6: 00 00 00 14 11 95 | 00 00 00 01 00 00 00 06 00 00 00 06 1f 41 00 00 00 00
        let want: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 6, 0x1f, 0x41, 0, 0, 0, 0];
        let m = CtldMultMsg {
            items: vec![CtldItem::typed(Message::SlurmRc(SlurmRc {
                return_code: ReturnCode(0),
            }))],
        };
        for v in ProtocolVersion::MODERN {
            let mut out = Vec::new();
            m.encode(&mut out, v);
            assert_eq!(out, want);
            assert_eq!(
                CtldMultMsg::decode(&mut Reader::new(Bytes::from(out)), v).unwrap(),
                m
            );
        }
        assert_eq!(m.describe(), "[SLURM_RC 0]");
    }

    #[test]
    fn odd_items_stay_raw_and_roundtrip() {
        // size 7 ≠ packmem length 6; an unmodelled type; a 1-byte item; an undecodable SLURM_RC.
        let wire: &[u8] = &[
            0, 0, 0, 4, //
            0, 0, 0, 7, 0, 0, 0, 6, 0x1f, 0x41, 0, 0, 0, 9, //
            0, 0, 0, 3, 0, 0, 0, 3, 0x0f, 0xa5, 0xaa, //
            0, 0, 0, 1, 0, 0, 0, 1, 0x55, //
            0, 0, 0, 3, 0, 0, 0, 3, 0x1f, 0x41, 0, //
        ];
        let v = ProtocolVersion::V22_05;
        let m = CtldMultMsg::decode(&mut Reader::new(Bytes::from_static(wire)), v).unwrap();
        assert_eq!(m.items[0].declared_size, Some(7));
        assert!(m.items[0].message().is_some());
        assert!(matches!(
            &m.items[1].content,
            ItemContent::Raw {
                msg_type: Some(MsgType(4005)),
                error: None,
                ..
            }
        ));
        assert!(matches!(
            &m.items[2].content,
            ItemContent::Raw { msg_type: None, .. }
        ));
        match &m.items[3].content {
            ItemContent::Raw { error: Some(e), .. } => {
                assert_eq!((e.offset, e.reason()), (48, "truncated"))
            }
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        m.encode(&mut out, v);
        assert_eq!(out, wire);
    }

    #[test]
    fn count_past_the_bytes_is_an_error() {
        let e = CtldMultMsg::decode(
            &mut Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe])),
            ProtocolVersion::V22_05,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "bad_count");
    }
}
