//! Typed message bodies, one module per message family (spec §8). A body the codec
//! does not model stays raw bytes; that is never an error by itself.
//!
//! To add a family: write its module with `Decode`/`Encode` impls, then add one
//! line to the `messages!` table below.

use bytes::{BufMut, Bytes};

use crate::error::Result;
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, Reader};

pub mod persist;

pub use persist::{PersistInit, PersistRc, PersistType};

macro_rules! messages {
    ($( $variant:ident($ty:ty) = $msg_type:ident ),* $(,)?) => {
        /// A decoded body of a modelled message type.
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum Message {
            $( $variant($ty), )*
        }

        impl Message {
            /// Decodes `body` as `msg_type` at `version`; `None` when the type is not
            /// modelled (the body stays raw). The whole body must be consumed.
            /// `base` = the body's offset in its frame (for error offsets).
            pub fn decode(
                msg_type: MsgType,
                ns: Namespace,
                version: ProtocolVersion,
                body: Bytes,
                base: usize,
            ) -> Option<Result<Message>> {
                if ns == Namespace::Dbd && !matches!(msg_type.0, 1433 | 6500) {
                    return None; // DBD bodies are not modelled
                }
                let mut r = Reader::with_base(body, base);
                let decoded = match msg_type {
                    $( MsgType::$msg_type => <$ty>::decode(&mut r, version).map(Message::$variant), )*
                    _ => return None,
                };
                Some(decoded.and_then(|m| r.finish().map(|_| m)))
            }

            /// Encodes the body at `version` (the frame's header version, or the
            /// persistent connection's negotiated version).
            pub fn encode(&self, w: &mut impl BufMut, version: ProtocolVersion) {
                match self {
                    $( Message::$variant(m) => m.encode(w, version), )*
                }
            }

            pub fn msg_type(&self) -> MsgType {
                match self {
                    $( Message::$variant(_) => MsgType::$msg_type, )*
                }
            }

            /// Whether `msg_type` has a typed model.
            pub fn is_modelled(msg_type: MsgType) -> bool {
                matches!(msg_type, $( MsgType::$msg_type )|*)
            }
        }
    };
}

messages! {
    PersistInit(PersistInit) = REQUEST_PERSIST_INIT,
    PersistRc(PersistRc) = PERSIST_RC,
}
