//! The per-connection state machine (spec §3.2, §3.3, §9.2): normal framing until a
//! REQUEST_PERSIST_INIT is answered with PERSIST_RC rc 0, persist framing in both
//! directions afterwards. Sans-IO: the caller feeds bytes per direction and gets
//! events back.
//!
//! A connection seen from its first byte is decoded strictly. One picked up in the
//! middle (a capture started late) has its framing recognised from the bytes and
//! its client side told from the message types (requests flow client → server).

use bytes::Bytes;

use crate::deframe::{Deframed, Deframer, MAX_MSG_SIZE};
use crate::error::DecodeError;
use crate::frame::{BodyDecoding, Frame, Framing, FramingKind};
use crate::msg::{Message, PersistInit, PersistType};
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::Direction;

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

    fn of(t: PersistType) -> ConnKind {
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
}

impl ObservedFrame {
    /// Re-encodes the decoded frame and compares with the wire bytes.
    pub fn is_exact(&self) -> bool {
        self.frame.to_bytes() == self.raw
    }
}

#[derive(Clone, Debug)]
pub enum ConnEvent {
    Frame(ObservedFrame),
    /// A frame too large to hold whole: only its start was decoded (if at all).
    Oversized { dir: Direction, stream_offset: u64, len: u32, msg_type: Option<MsgType>, framing: FramingKind },
    /// Decoding failed; this direction is opaque from here on (bytes still flow).
    Error { dir: Direction, stream_offset: u64, error: DecodeError },
    /// The connection opened with an HTTP request, not a Slurm frame: both
    /// directions are passed through undecoded. `request_line` is its first line.
    Http { dir: Direction, request_line: String },
    /// Bytes skipped to find the first frame boundary (mid-stream start only).
    Resync { dir: Direction, skipped: usize },
    /// The side the caller called "client" is the server: directions are swapped
    /// from here on (mid-stream start only; events already carry true directions).
    Reoriented,
    /// A PERSIST_INIT was accepted: both directions now use persist framing.
    PersistEstablished { kind: ConnKind, version: ProtocolVersion, init: PersistInit },
    /// A PERSIST_INIT was refused (the connection will close).
    PersistRefused { rc: i32, init: PersistInit },
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
        ConnConfig { start: StreamStart::Beginning, max_buffered: 1 << 20, version_hint: None, bodies: BodyDecoding::All }
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
            deframer: [Deframer::new(cfg.max_buffered), Deframer::new(cfg.max_buffered)],
            flipped: false,
            oriented: cfg.start != StreamStart::MidStream,
            kind: ConnKind::Unknown,
            pending_init: None,
            peer: None,
            persist_version: None,
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

    fn true_dir(&self, dir: Direction) -> Direction {
        if self.flipped { dir.reverse() } else { dir }
    }

    /// Feeds bytes that travelled in `dir` (as the caller sees it); decoded frames
    /// and state changes are appended to `out`.
    pub fn feed(&mut self, dir: Direction, data: &[u8], out: &mut Vec<ConnEvent>) {
        let d = self.true_dir(dir);
        if self.state[d.index()] == DirState::Opaque {
            return;
        }
        self.deframer[d.index()].push(data);
        self.drain(d, out);
    }

    /// Marks a direction opaque from outside (e.g. the relay gave up on it).
    pub fn set_opaque(&mut self, dir: Direction) {
        let d = self.true_dir(dir);
        self.state[d.index()] = DirState::Opaque;
        self.deframer[d.index()].clear();
    }

    fn drain(&mut self, mut d: Direction, out: &mut Vec<ConnEvent>) {
        loop {
            let i = d.index();
            let framing = match self.state[i] {
                DirState::Opaque => return,
                DirState::Framed(f) => f,
                DirState::Sniff => match self.sniff(d, out) {
                    Some(f) => {
                        self.state[i] = DirState::Framed(f);
                        f
                    }
                    None => return,
                },
            };
            let (min, max) = match framing {
                Framing::Normal => (2, MAX_MSG_SIZE),
                Framing::Persist { .. } => (2, MAX_MSG_SIZE),
            };
            let offset = self.deframer[i].stream_offset();
            let item = match self.deframer[i].next(min, max) {
                None => return,
                Some(Ok(item)) => item,
                Some(Err(e)) if offset == 0 && e.kind == crate::error::ErrorKind::Http => {
                    return self.http(d, out);
                }
                Some(Err(e)) => return self.fail(d, offset, e, out),
            };
            match item {
                Deframed::Frame(raw) => match Frame::decode_with(raw.clone(), framing, self.cfg.bodies) {
                    Ok(frame) => {
                        if !self.oriented {
                            self.orient(d, &frame, out);
                            if self.flipped {
                                // Re-home this direction's state and buffer.
                                self.state.swap(0, 1);
                                self.deframer.swap(0, 1);
                                d = d.reverse();
                            }
                        }
                        self.frames[d.index()] += 1;
                        self.advance(d, &frame, out);
                        out.push(ConnEvent::Frame(ObservedFrame { dir: d, stream_offset: offset, raw, frame }));
                    }
                    Err(e) => return self.fail(d, offset, e, out),
                },
                Deframed::Oversized { len, head } => {
                    let msg_type = peek_msg_type(&head, framing);
                    let framing_kind = match framing {
                        Framing::Normal => FramingKind::Normal,
                        Framing::Persist { ns: Namespace::Dbd, .. } => FramingKind::Dbd,
                        Framing::Persist { .. } => FramingKind::Persist,
                    };
                    out.push(ConnEvent::Oversized { dir: d, stream_offset: offset, len, msg_type, framing: framing_kind });
                }
            }
        }
    }

    fn fail(&mut self, d: Direction, stream_offset: u64, error: DecodeError, out: &mut Vec<ConnEvent>) {
        self.state[d.index()] = DirState::Opaque;
        self.deframer[d.index()].clear();
        out.push(ConnEvent::Error { dir: d, stream_offset, error });
    }

    fn http(&mut self, d: Direction, out: &mut Vec<ConnEvent>) {
        let buf = self.deframer[d.index()].peek();
        let end = buf.iter().take(256).position(|&b| b == b'\r' || b == b'\n').unwrap_or(buf.len().min(256));
        let request_line = String::from_utf8_lossy(&buf[..end]).into_owned();
        self.kind = ConnKind::Http;
        for i in 0..2 {
            self.state[i] = DirState::Opaque;
            self.deframer[i].clear();
        }
        out.push(ConnEvent::Http { dir: d, request_line });
    }

    /// Mid-stream: decides framing from the first bytes, skipping to the first
    /// plausible frame boundary if the stream starts inside a frame.
    fn sniff(&mut self, d: Direction, out: &mut Vec<ConnEvent>) -> Option<Framing> {
        let buf = self.deframer[d.index()].peek();
        if buf.len() < 6 {
            return None;
        }
        // Look for a boundary within the first 64 KiB held (captures only).
        let limit = match self.cfg.start {
            StreamStart::MidStream => buf.len().saturating_sub(6).min(64 * 1024),
            _ => 0,
        };
        if limit == 0 && classify(buf).is_none() {
            // Accepted connections: decode as normal framing, which names the
            // problem precisely (HTTP, insane length, unsupported version, …).
            return Some(Framing::Normal);
        }
        let (skip, found) = (0..=limit).find_map(|skip| classify(&buf[skip..]).map(|f| (skip, f)))?;
        if skip > 0 {
            self.skip_bytes(d, skip);
            out.push(ConnEvent::Resync { dir: d, skipped: skip });
        }
        // A persist frame's namespace and version follow the other direction's
        // (PERSIST_RC 1433 exists in both numberings).
        Some(match (found, self.state[d.reverse().index()]) {
            (Framing::Persist { .. }, DirState::Framed(other @ Framing::Persist { .. })) => other,
            (f, _) => self.complete(f),
        })
    }

    fn skip_bytes(&mut self, d: Direction, n: usize) {
        let held = self.deframer[d.index()].peek()[n..].to_vec();
        let offset = self.deframer[d.index()].stream_offset() + n as u64;
        let mut fresh = Deframer::new(self.cfg.max_buffered);
        fresh.set_offset(offset);
        fresh.push(&held);
        self.deframer[d.index()] = fresh;
    }

    /// Fills in what sniffing cannot know: the persist version from the hint.
    fn complete(&self, f: Framing) -> Framing {
        match f {
            Framing::Persist { ns, version: None } => {
                Framing::Persist { ns, version: self.persist_version.or(self.cfg.version_hint) }
            }
            f => f,
        }
    }

    /// Mid-stream: requests flow from the client. Decides once, on the first frame
    /// whose type says which side sent it.
    fn orient(&mut self, d: Direction, frame: &Frame, out: &mut Vec<ConnEvent>) {
        let t = frame.msg_type();
        let ns = frame.namespace();
        if t.name_in(ns).is_none() {
            return;
        }
        let sent_by_server = t.is_reply(ns);
        self.oriented = true;
        if sent_by_server == (d == Direction::ClientToServer) {
            self.flipped = true;
            out.push(ConnEvent::Reoriented);
        }
        if self.kind == ConnKind::Unknown {
            self.kind = match frame.framing_kind() {
                FramingKind::Normal => ConnKind::Oneshot,
                FramingKind::Dbd => ConnKind::DbdPersist,
                FramingKind::Persist => ConnKind::FedPersist,
            };
        }
    }

    /// Framing transitions driven by what was just decoded.
    fn advance(&mut self, d: Direction, frame: &Frame, out: &mut Vec<ConnEvent>) {
        match (d, frame.message()) {
            (Direction::ClientToServer, Some(Message::PersistInit(init)))
                if matches!(frame.head, crate::frame::FrameHead::Normal { .. }) =>
            {
                // The reply is already persist-framed; requests switch once accepted.
                let ns = if init.persist_type == PersistType::Dbd { Namespace::Dbd } else { Namespace::Slurm };
                self.state[Direction::ServerToClient.index()] =
                    DirState::Framed(Framing::Persist { ns, version: None });
                self.pending_init = Some(init.clone());
            }
            (Direction::ServerToClient, Some(Message::PersistRc(rc))) if self.pending_init.is_some() => {
                let init = self.pending_init.take().expect("checked");
                match rc.negotiated_version() {
                    Some(version) => {
                        let ns = if init.persist_type == PersistType::Dbd { Namespace::Dbd } else { Namespace::Slurm };
                        let f = DirState::Framed(Framing::Persist { ns, version: Some(version) });
                        self.state = [f, f];
                        self.kind = ConnKind::of(init.persist_type);
                        self.persist_version = Some(version);
                        self.peer = Some(init.clone());
                        out.push(ConnEvent::PersistEstablished { kind: self.kind, version, init });
                    }
                    None => {
                        self.state[Direction::ServerToClient.index()] = DirState::Framed(Framing::Normal);
                        out.push(ConnEvent::PersistRefused { rc: rc.rc, init });
                    }
                }
            }
            _ => {
                if self.kind == ConnKind::Unknown {
                    self.kind = match frame.framing_kind() {
                        FramingKind::Normal => ConnKind::Oneshot,
                        FramingKind::Dbd => ConnKind::DbdPersist,
                        FramingKind::Persist => ConnKind::FedPersist,
                    };
                }
            }
        }
    }
}

/// Recognises a frame start: `u32 L` then a header version (normal), a slurmdbd
/// msg_type prefix + version (normal, dbd form), or a known message type (persist).
fn classify(buf: &[u8]) -> Option<Framing> {
    if buf.len() < 6 {
        return None;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !(2..=MAX_MSG_SIZE).contains(&len) {
        return None;
    }
    let first = MsgType(u16::from_be_bytes([buf[4], buf[5]]));
    if ProtocolVersion(first.0).is_known() && len >= 16 {
        return Some(Framing::Normal);
    }
    if buf.len() >= 8 && ProtocolVersion(u16::from_be_bytes([buf[6], buf[7]])).is_known() && len >= 18 {
        return Some(Framing::Normal);
    }
    let dbd_only = first.name_in(Namespace::Dbd).is_some() && first.name().is_none();
    if dbd_only {
        return Some(Framing::Persist { ns: Namespace::Dbd, version: None });
    }
    if first.name().is_some() {
        return Some(Framing::Persist { ns: Namespace::Slurm, version: None });
    }
    None
}

/// The msg_type of an oversized frame, from its first bytes.
fn peek_msg_type(head: &[u8], framing: Framing) -> Option<MsgType> {
    let at = match framing {
        Framing::Persist { .. } => 4,
        Framing::Normal => {
            let v = u16::from_be_bytes([*head.get(4)?, *head.get(5)?]);
            let base = if ProtocolVersion(v).is_known() { 4 } else { 6 };
            let ver = ProtocolVersion(u16::from_be_bytes([*head.get(base)?, *head.get(base + 1)?]));
            base + 4 + if ver.has_msg_index() { 2 } else { 0 }
        }
    };
    Some(MsgType(u16::from_be_bytes([*head.get(at)?, *head.get(at + 1)?])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persist_rc() -> Vec<u8> {
        vec![0, 0, 0, 0x0e, 0x05, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x26, 0]
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
        let mut c = Connection::new(ConnConfig { start: StreamStart::Accepted, ..ConnConfig::default() });
        let mut ev = Vec::new();
        // A reply type arriving client → server: orientation is known, so it stays.
        c.feed(Direction::ClientToServer, &persist_rc(), &mut ev);
        assert_eq!(frames(&ev), vec![(Direction::ClientToServer, MsgType::PERSIST_RC)]);
        assert!(!c.is_flipped());
    }

    #[test]
    fn mid_stream_reorients_from_a_reply() {
        let mut c = Connection::new(ConnConfig { start: StreamStart::MidStream, ..ConnConfig::default() });
        let mut ev = Vec::new();
        c.feed(Direction::ClientToServer, &persist_rc(), &mut ev);
        assert!(c.is_flipped());
        assert_eq!(frames(&ev), vec![(Direction::ServerToClient, MsgType::PERSIST_RC)]);
    }

    #[test]
    fn mid_stream_skips_to_the_first_frame_boundary() {
        let mut c = Connection::new(ConnConfig { start: StreamStart::MidStream, ..ConnConfig::default() });
        let mut ev = Vec::new();
        let mut data = vec![0xaa, 0xbb, 0xcc]; // tail of a frame the capture missed
        data.extend_from_slice(&ping_request());
        c.feed(Direction::ClientToServer, &data, &mut ev);
        assert!(matches!(ev[0], ConnEvent::Resync { skipped: 3, .. }));
        assert_eq!(frames(&ev), vec![(Direction::ClientToServer, MsgType::REQUEST_PING)]);
    }

    #[test]
    fn a_decode_error_makes_only_that_direction_opaque() {
        let mut c = Connection::new(ConnConfig::default());
        let mut ev = Vec::new();
        c.feed(Direction::ClientToServer, &[0x7f, 0xff, 0xff, 0xff, 0, 0], &mut ev);
        assert!(matches!(&ev[0], ConnEvent::Error { error, .. } if error.reason() == "length_over_limit"));
        assert!(c.is_opaque(Direction::ClientToServer));
        assert!(!c.is_opaque(Direction::ServerToClient));
        ev.clear();
        c.feed(Direction::ServerToClient, &ping_request(), &mut ev);
        assert_eq!(frames(&ev).len(), 1);
    }
}
