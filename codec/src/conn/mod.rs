//! The per-connection state machine (spec §3.2, §3.3, §9.2): normal framing until a
//! REQUEST_PERSIST_INIT is answered with PERSIST_RC rc 0, persist framing in both
//! directions afterwards. Sans-IO: the caller feeds bytes per direction and gets
//! events back.
//!
//! A connection seen from its first byte is decoded strictly. One picked up in the
//! middle (a capture started late) has its framing recognised from the bytes and
//! its client side told from the message types (requests flow client → server).
//!
//! * this module: the types (events, config, kinds) and the [`Connection`] itself;
//! * `state`: the strict state machine — feeding, deframing, decoding, the
//!   PERSIST_INIT handshake, errors, end of stream;
//! * `recovery`: what only a connection seen without its start needs — framing
//!   and side recognition, resync after a capture gap, the kind of a connection
//!   whose handshake was not seen.

use bytes::Bytes;

use crate::deframe::Deframer;
use crate::error::DecodeError;
use crate::frame::{BodyDecoding, Frame, Framing, FramingKind};
use crate::msg::{PersistInit, PersistType};
use crate::msg_type::MsgType;
use crate::version::ProtocolVersion;
use crate::Direction;

mod recovery;
mod state;
#[cfg(test)]
mod tests;

/// Where the bytes fed to a [`Connection`] start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StreamStart {
    /// At the connection's first byte (a proxy, or a capture that saw the SYN).
    Beginning,
    /// Somewhere later: framing and orientation are recognised from the bytes.
    MidStream,
    /// A connection a proxy accepted: the client side is known (it connected), but
    /// the framing is recognised from the first bytes, so a persistent connection
    /// replayed or resumed without its PERSIST_INIT is still decoded. No bytes are
    /// ever skipped: what does not look like a frame start is an error.
    Accepted,
}

/// What kind of connection this turned out to be (a closed set, for metrics).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnKind {
    /// Nothing decoded yet.
    Unknown,
    /// One request, at most one reply.
    Oneshot,
    /// controller ↔ controller federation connection (persist_type FED).
    FedPersist,
    /// slurmdbd persistent connection (persist_type DBD).
    DbdPersist,
    /// Any other persistent connection (ACCT_UPDATE, HA, …).
    OtherPersist,
    /// Not Slurm at all: an HTTP request (e.g. a legacy FLURM federation probe).
    Http,
}

impl ConnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnKind::Unknown => "unknown",
            ConnKind::Oneshot => "oneshot",
            ConnKind::FedPersist => "fed_persist",
            ConnKind::DbdPersist => "dbd_persist",
            ConnKind::OtherPersist => "other_persist",
            ConnKind::Http => "http",
        }
    }

    pub const ALL: [ConnKind; 6] = [
        ConnKind::Unknown,
        ConnKind::Oneshot,
        ConnKind::FedPersist,
        ConnKind::DbdPersist,
        ConnKind::OtherPersist,
        ConnKind::Http,
    ];

    /// The kind a PERSIST_INIT of this type asks for.
    pub fn of(t: PersistType) -> ConnKind {
        match t {
            PersistType::Fed => ConnKind::FedPersist,
            PersistType::Dbd => ConnKind::DbdPersist,
            _ => ConnKind::OtherPersist,
        }
    }
}

/// One decoded frame with where it was on the connection.
#[derive(Clone, Debug)]
pub struct ObservedFrame {
    pub dir: Direction,
    /// Offset of the frame's first byte in its direction's stream.
    pub stream_offset: u64,
    /// The bytes as they were on the wire.
    pub raw: Bytes,
    pub frame: Frame,
    /// For a persist frame whose connection was seen without its handshake:
    /// the releases its connection can be running, as far as the capture shows
    /// (`(v, v)` once known; see [`Connection`]'s version inference). `None` for
    /// frames that carry their version, raw bodies, and a proxy's observer.
    pub version_range: Option<(ProtocolVersion, ProtocolVersion)>,
}

impl ObservedFrame {
    /// Re-encodes the decoded frame and compares with the wire bytes.
    pub fn is_exact(&self) -> bool {
        self.frame.to_bytes() == self.raw
    }
}

// A frame is the common event: boxing it would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ConnEvent {
    Frame(ObservedFrame),
    /// A frame too large to hold whole: only its start was decoded (if at all).
    Oversized {
        dir: Direction,
        stream_offset: u64,
        len: u32,
        msg_type: Option<MsgType>,
        framing: FramingKind,
    },
    /// Decoding failed; this direction is opaque from here on (bytes still flow).
    Error {
        dir: Direction,
        stream_offset: u64,
        error: DecodeError,
    },
    /// The connection opened with an HTTP request, not a Slurm frame: both
    /// directions are passed through undecoded. `request_line` is its first line.
    Http {
        dir: Direction,
        request_line: String,
    },
    /// Bytes skipped to find the first frame boundary (mid-stream start only).
    Resync {
        dir: Direction,
        skipped: usize,
    },
    /// The side the caller called "client" is the server: directions are swapped
    /// from here on (mid-stream start only; events already carry true directions).
    Reoriented,
    /// A PERSIST_INIT was accepted: both directions now use persist framing.
    PersistEstablished {
        kind: ConnKind,
        version: ProtocolVersion,
        init: PersistInit,
    },
    /// A PERSIST_INIT was refused (the connection will close).
    PersistRefused {
        rc: i32,
        init: PersistInit,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum DirState {
    /// Framing not known yet (mid-stream start, nothing decoded).
    Sniff,
    Framed(Framing),
    /// After an error: bytes are counted, not decoded.
    Opaque,
}

/// Limits for one connection.
#[derive(Copy, Clone, Debug)]
pub struct ConnConfig {
    pub start: StreamStart,
    /// Frames longer than this are not held whole (bounded memory per connection).
    pub max_buffered: usize,
    /// Persist-frame version to assume when the handshake was not seen.
    pub version_hint: Option<ProtocolVersion>,
    /// Which bodies to type (a proxy needs only a few).
    pub bodies: BodyDecoding,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            start: StreamStart::Beginning,
            max_buffered: 1 << 20,
            version_hint: None,
            bodies: BodyDecoding::All,
        }
    }
}

pub struct Connection {
    cfg: ConnConfig,
    state: [DirState; 2],
    deframer: [Deframer; 2],
    /// Caller's directions are reversed (decided once, from content).
    flipped: bool,
    oriented: bool,
    kind: ConnKind,
    pending_init: Option<PersistInit>,
    peer: Option<PersistInit>,
    persist_version: Option<ProtocolVersion>,
    /// Body layout to try first on persist frames of unknown version: the hint
    /// (what the rest of a capture says), then the version the layouts narrowed
    /// down to (kept for the connection).
    version_guess: Option<ProtocolVersion>,
    /// Releases whose layout fitted every typed persist frame of unknown version
    /// so far (oldest first); `None` before the first. Never the oldest
    /// candidate alone: where layouts agree, the range stays open.
    fitting: Option<Vec<ProtocolVersion>>,
    /// Directions that lost bytes (a capture gap) and must find a frame start again.
    resync: [bool; 2],
    frames: [u64; 2],
}

impl Connection {
    pub fn new(cfg: ConnConfig) -> Self {
        let initial = match cfg.start {
            StreamStart::Beginning => DirState::Framed(Framing::Normal),
            StreamStart::MidStream | StreamStart::Accepted => DirState::Sniff,
        };
        Connection {
            cfg,
            state: [initial; 2],
            deframer: [
                Deframer::new(cfg.max_buffered),
                Deframer::new(cfg.max_buffered),
            ],
            flipped: false,
            oriented: cfg.start != StreamStart::MidStream,
            kind: ConnKind::Unknown,
            pending_init: None,
            peer: None,
            persist_version: None,
            version_guess: cfg.version_hint,
            fitting: None,
            resync: [false; 2],
            frames: [0; 2],
        }
    }

    pub fn kind(&self) -> ConnKind {
        self.kind
    }

    /// The PERSIST_INIT that opened this connection (who the opener says it is).
    pub fn persist_init(&self) -> Option<&PersistInit> {
        self.peer.as_ref()
    }

    /// True when the caller's "client" turned out to be the server.
    pub fn is_flipped(&self) -> bool {
        self.flipped
    }

    /// True when a direction has stopped decoding after an error.
    pub fn is_opaque(&self, dir: Direction) -> bool {
        self.state[self.true_dir(dir).index()] == DirState::Opaque
    }

    /// Bytes waiting for the rest of a frame, both directions.
    pub fn buffered(&self) -> usize {
        self.deframer[0].buffered() + self.deframer[1].buffered()
    }

    /// Bytes waiting for the rest of a frame in `dir`.
    pub fn buffered_in(&self, dir: Direction) -> usize {
        self.deframer[self.true_dir(dir).index()].buffered()
    }

    /// Memory the buffers take, both directions (at least [`Connection::buffered`]).
    pub fn memory(&self) -> usize {
        self.deframer[0].capacity() + self.deframer[1].capacity()
    }

    fn true_dir(&self, dir: Direction) -> Direction {
        if self.flipped {
            dir.reverse()
        } else {
            dir
        }
    }
}
