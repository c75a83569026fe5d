//! Sans-IO codec for Slurm's RPC wire protocol, 22.05 → 26.05.
//!
//! The crate reads and writes bytes only: no sockets, no async runtime. A relay or a
//! capture reader feeds it the bytes of a TCP connection and gets frames back
//! ([`conn::Connection`]); every frame re-encodes to exactly the bytes it came from.
//!
//! Layout follows the spec (`docs/slurm-wire-protocol.md` of the project):
//! primitives ([`wire`]), header ([`header`]), auth section ([`auth`]), body hash
//! ([`body_hash`]), framing ([`frame`], [`deframe`]), the per-connection state
//! machine ([`conn`]), the message-type table ([`msg_type`]) and one module per
//! message family under [`msg`].

pub mod auth;
pub mod body_hash;
pub mod conn;
pub mod deframe;
pub mod error;
pub mod flags;
pub mod frame;
pub mod header;
pub mod legacy;
pub mod msg;
pub mod msg_type;
pub mod version;
pub mod wire;

pub use error::{DecodeError, ErrorKind};
pub use flags::HeaderFlags;
pub use msg_type::MsgType;
pub use version::ProtocolVersion;

/// Which way bytes flow on a TCP connection: the client is the side that opened it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Direction {
    #[serde(rename = "c2s")]
    ClientToServer,
    #[serde(rename = "s2c")]
    ServerToClient,
}

impl Direction {
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
