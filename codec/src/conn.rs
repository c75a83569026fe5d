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

    /// Feeds bytes that travelled in `dir` (as the caller sees it); decoded frames
    /// and state changes are appended to `out`.
    pub fn feed(&mut self, dir: Direction, data: &[u8], out: &mut Vec<ConnEvent>) {
        let d = self.true_dir(dir);
        let deframer = &mut self.deframer[d.index()];
        if self.state[d.index()] == DirState::Opaque {
            // Counted, not decoded: offsets stay true if a gap resyncs later.
            deframer.set_offset(deframer.stream_offset() + data.len() as u64);
            return;
        }
        deframer.push(data);
        self.drain(d, out);
    }

    /// Bytes of `dir` were lost (a capture gap): drop the partial frame and look
    /// for the next frame start, keeping what is known of the connection's framing.
    pub fn gap(&mut self, dir: Direction) {
        let d = self.true_dir(dir);
        let i = d.index();
        if self.state[i] == DirState::Opaque && self.frames[i] == 0 && self.kind == ConnKind::Http {
            return;
        }
        self.deframer[i].clear();
        self.resync[i] = true;
        self.state[i] = DirState::Sniff;
    }

    /// The peer finished sending in `dir` (EOF). Bytes still held are a frame cut
    /// off: reported as `truncated`, including a start too short to classify
    /// (under 6 bytes) and the unseen rest of an oversized frame.
    pub fn eof(&mut self, dir: Direction, out: &mut Vec<ConnEvent>) {
        let d = self.true_dir(dir);
        let i = d.index();
        if self.state[i] == DirState::Opaque {
            return;
        }
        let deframer = &self.deframer[i];
        let held = deframer.buffered();
        let missing = deframer.pending_skip();
        if held == 0 && missing == 0 {
            return;
        }
        let needed = match deframer.peek_len() {
            _ if missing > 0 => held + missing as usize,
            Some(len) => 4 + len as usize,
            None => 6,
        };
        let offset = deframer.stream_offset();
        let e = DecodeError::new(
            held,
            crate::error::ErrorKind::Truncated {
                needed,
                available: held,
            },
        );
        self.fail(d, offset, e, out);
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
            // The answer to a PERSIST_INIT is PERSIST_RC in persist framing, unless
            // the server refused it with a normal-framed RPC (24.11+: SLURM_RC 1007).
            let framing = match framing {
                Framing::Persist { .. }
                    if self.pending_init.is_some() && d == Direction::ServerToClient =>
                {
                    match self.deframer[i].peek().get(4..6) {
                        Some(&[a, b]) if starts_header(u16::from_be_bytes([a, b])) => {
                            Framing::Normal
                        }
                        _ => framing,
                    }
                }
                f => f,
            };
            let offset = self.deframer[i].stream_offset();
            let item = match self.deframer[i].next(2, MAX_MSG_SIZE) {
                None => return,
                Some(Ok(item)) => item,
                Some(Err(e)) if offset == 0 && e.kind == crate::error::ErrorKind::Http => {
                    return self.http(d, out);
                }
                Some(Err(e)) => return self.fail(d, offset, e, out),
            };
            match item {
                Deframed::Frame(raw) => match Frame::decode_hinted(
                    raw.clone(),
                    framing,
                    self.cfg.bodies,
                    self.version_guess,
                ) {
                    Ok(mut frame) => {
                        let version_range = match self.handshake_answer(d, &frame) {
                            Some(v) => {
                                // PERSIST_RC names the version it negotiates
                                frame.inferred_version = Some(v);
                                Some((v, v))
                            }
                            None => self.infer_version(&raw, framing, &frame),
                        };
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
                        out.push(ConnEvent::Frame(ObservedFrame {
                            dir: d,
                            stream_offset: offset,
                            raw,
                            frame,
                            version_range,
                        }));
                    }
                    Err(e) if self.cfg.start == StreamStart::MidStream && self.frames[i] > 0 => {
                        // A capture picked up mid-stream may have resynced on a false
                        // boundary: report, then look for the next frame start.
                        out.push(ConnEvent::Error {
                            dir: d,
                            stream_offset: offset,
                            error: e,
                        });
                        self.resync[i] = true;
                        self.state[i] = DirState::Sniff;
                    }
                    Err(e) => return self.fail(d, offset, e, out),
                },
                Deframed::Oversized { len, head } => {
                    if framing == Framing::Normal {
                        // Too large to hold, and its header does not even start with a
                        // version: garbage, not a message of an unknown type. (Other
                        // header errors may come from the head being cut short.)
                        let mut r = crate::wire::Reader::with_base(head.slice(4..), 4);
                        if let Err(e) = crate::header::Header::decode(&mut r) {
                            if matches!(e.kind, crate::error::ErrorKind::UnsupportedVersion(_)) {
                                return self.fail(d, offset, e, out);
                            }
                        }
                    }
                    let msg_type = peek_msg_type(&head, framing);
                    out.push(ConnEvent::Oversized {
                        dir: d,
                        stream_offset: offset,
                        len,
                        msg_type,
                        framing: framing.kind(),
                    });
                }
            }
        }
    }

    /// The version a PERSIST_RC answering the pending PERSIST_INIT carries in
    /// ret_info (also when it refuses): the version that frame is packed at.
    fn handshake_answer(&self, d: Direction, frame: &Frame) -> Option<ProtocolVersion> {
        if self.pending_init.is_none()
            || d != Direction::ServerToClient
            || frame.version().is_some()
        {
            return None;
        }
        match frame.message() {
            Some(Message::PersistRc(rc)) => {
                Some(ProtocolVersion(rc.ret_info)).filter(|v| v.is_known())
            }
            _ => None,
        }
    }

    /// The releases a persist frame of unknown version can be packed at. The
    /// caller's hint (learned from the rest of a capture, e.g. the header
    /// versions between the same two hosts) is taken when the body decodes with
    /// it. Otherwise every release whose layout types the body completely and
    /// re-encodes it byte-exact is kept, intersected over the connection's
    /// frames: one left is the connection's version from then on; several are a
    /// range (PERSIST_RC, CTLD_MULT_MSG and sib messages are laid out alike in
    /// several releases), never the oldest of them alone.
    fn infer_version(
        &mut self,
        raw: &Bytes,
        framing: Framing,
        frame: &Frame,
    ) -> Option<(ProtocolVersion, ProtocolVersion)> {
        let used = frame.inferred_version?;
        if self.cfg.bodies != BodyDecoding::All {
            return None; // a proxy's observer only needs the body typed
        }
        if self.cfg.version_hint == Some(used)
            && ProtocolVersion::MODERN.contains(&used)
            && layout_fits(raw, framing, used)
        {
            return Some((used, used));
        }
        let fits: Vec<ProtocolVersion> = ProtocolVersion::MODERN
            .iter()
            .copied()
            .filter(|&v| layout_fits(raw, framing, v))
            .collect();
        if fits.is_empty() {
            return Some((used, used)); // only partly typed: the layout that got furthest
        }
        let narrowed: Vec<ProtocolVersion> = match &self.fitting {
            Some(before) => {
                let both: Vec<_> = before
                    .iter()
                    .copied()
                    .filter(|v| fits.contains(v))
                    .collect();
                if both.is_empty() {
                    fits // inconsistent with earlier frames: this frame's own range
                } else {
                    both
                }
            }
            None => fits,
        };
        let range = (narrowed[0], narrowed[narrowed.len() - 1]);
        if narrowed.len() == 1 {
            self.version_guess = Some(narrowed[0]);
        }
        self.fitting = Some(narrowed);
        Some(range)
    }

    fn fail(
        &mut self,
        d: Direction,
        stream_offset: u64,
        error: DecodeError,
        out: &mut Vec<ConnEvent>,
    ) {
        self.state[d.index()] = DirState::Opaque;
        self.deframer[d.index()].clear();
        out.push(ConnEvent::Error {
            dir: d,
            stream_offset,
            error,
        });
    }

    fn http(&mut self, d: Direction, out: &mut Vec<ConnEvent>) {
        let buf = self.deframer[d.index()].peek();
        let end = buf
            .iter()
            .take(256)
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(buf.len().min(256));
        let request_line = String::from_utf8_lossy(&buf[..end]).into_owned();
        self.kind = ConnKind::Http;
        for i in 0..2 {
            self.state[i] = DirState::Opaque;
            self.deframer[i].clear();
        }
        out.push(ConnEvent::Http {
            dir: d,
            request_line,
        });
    }

    /// Decides framing from the first bytes. Mid-stream (or after a capture gap)
    /// it skips to the first plausible frame start — one whose following frame
    /// start, if already buffered, is plausible too — within 64 KiB.
    fn sniff(&mut self, d: Direction, out: &mut Vec<ConnEvent>) -> Option<Framing> {
        let i = d.index();
        let buf = self.deframer[i].peek();
        if buf.len() < 6 {
            return None;
        }
        let may_skip = self.cfg.start == StreamStart::MidStream || self.resync[i];
        if !may_skip {
            // Accepted connections: a start that does not look like a frame is
            // decoded as normal framing, which names the problem precisely.
            return Some(self.complete(d, classify(buf).unwrap_or(Framing::Normal)));
        }
        if self.frames[i] == 0
            && (crate::deframe::looks_like_http(buf) || crate::deframe::looks_like_tls(buf))
        {
            return Some(Framing::Normal); // the deframer reports it as HTTP or TLS
        }
        const WINDOW: usize = 64 * 1024;
        let found = (0..=buf.len() - 6).take(WINDOW).find_map(|skip| {
            let f = classify(&buf[skip..])?;
            let len = u32::from_be_bytes([buf[skip], buf[skip + 1], buf[skip + 2], buf[skip + 3]])
                as usize;
            let next = skip + 4 + len;
            let confirmed =
                next >= buf.len() || buf.len() - next < 6 || classify(&buf[next..]).is_some();
            confirmed.then_some((skip, f))
        });
        let Some((skip, f)) = found else {
            if buf.len() > WINDOW {
                let offset = self.deframer[i].stream_offset();
                let e = DecodeError::new(
                    0,
                    crate::error::ErrorKind::Malformed("no frame start in the first 64 KiB"),
                );
                self.fail(d, offset, e, out);
            }
            return None;
        };
        if skip > 0 {
            self.skip_bytes(d, skip);
            out.push(ConnEvent::Resync {
                dir: d,
                skipped: skip,
            });
        }
        self.resync[i] = false;
        Some(self.complete(d, f))
    }

    fn skip_bytes(&mut self, d: Direction, n: usize) {
        let held = self.deframer[d.index()].peek()[n..].to_vec();
        let offset = self.deframer[d.index()].stream_offset() + n as u64;
        let mut fresh = Deframer::new(self.cfg.max_buffered);
        fresh.set_offset(offset);
        fresh.push(&held);
        self.deframer[d.index()] = fresh;
    }

    /// Fills in what sniffing cannot know: a persist frame's namespace and version
    /// follow the handshake or the other direction (PERSIST_RC 1433 exists in both
    /// numberings). A hint is only a guess and stays out of the framing.
    fn complete(&self, d: Direction, f: Framing) -> Framing {
        match (f, self.state[d.reverse().index()]) {
            (Framing::Persist { .. }, DirState::Framed(other @ Framing::Persist { .. })) => other,
            (Framing::Persist { ns, version: None }, _) => Framing::Persist {
                ns,
                version: self.persist_version,
            },
            (f, _) => f,
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
            self.kind = kind_of(frame);
        }
    }

    /// Framing transitions driven by what was just decoded.
    fn advance(&mut self, d: Direction, frame: &Frame, out: &mut Vec<ConnEvent>) {
        match (d, frame.message()) {
            (Direction::ClientToServer, Some(Message::PersistInit(init)))
                if matches!(frame.head, crate::frame::FrameHead::Normal { .. }) =>
            {
                // The reply is already persist-framed; requests switch once accepted.
                let ns = init.persist_type.namespace();
                self.state[Direction::ServerToClient.index()] =
                    DirState::Framed(Framing::Persist { ns, version: None });
                self.pending_init = Some(init.clone());
            }
            (Direction::ServerToClient, _)
                if self.pending_init.is_some() && frame.header().is_some() =>
            {
                // Refused before the handshake: a normal-framed reply (e.g. SLURM_RC 1007).
                let init = self.pending_init.take().expect("checked");
                let rc = match frame.message() {
                    Some(Message::SlurmRc(r)) => r.return_code.0,
                    _ => -1,
                };
                self.state[Direction::ServerToClient.index()] = DirState::Framed(Framing::Normal);
                self.kind = ConnKind::Oneshot;
                out.push(ConnEvent::PersistRefused { rc, init });
            }
            (Direction::ServerToClient, Some(Message::PersistRc(rc)))
                if self.pending_init.is_some() =>
            {
                let init = self.pending_init.take().expect("checked");
                match rc.negotiated_version() {
                    Some(version) => {
                        let ns = init.persist_type.namespace();
                        let f = DirState::Framed(Framing::Persist {
                            ns,
                            version: Some(version),
                        });
                        self.state = [f, f];
                        self.kind = ConnKind::of(init.persist_type);
                        self.persist_version = Some(version);
                        self.peer = Some(init.clone());
                        out.push(ConnEvent::PersistEstablished {
                            kind: self.kind,
                            version,
                            init,
                        });
                    }
                    None => {
                        self.state[Direction::ServerToClient.index()] =
                            DirState::Framed(Framing::Normal);
                        self.kind = ConnKind::Oneshot;
                        out.push(ConnEvent::PersistRefused { rc: rc.rc, init });
                    }
                }
            }
            _ => {
                if self.kind == ConnKind::Unknown {
                    self.kind = kind_of(frame);
                }
            }
        }
    }
}

/// True when a persist frame's body decodes completely typed at `v` and
/// re-encodes to the same bytes.
fn layout_fits(raw: &Bytes, framing: Framing, v: ProtocolVersion) -> bool {
    let Framing::Persist { ns, .. } = framing else {
        return false;
    };
    let at = Framing::Persist {
        ns,
        version: Some(v),
    };
    match Frame::decode_hinted(raw.clone(), at, BodyDecoding::All, None) {
        Ok(f) => {
            f.body_error.is_none()
                && f.message().is_some_and(Message::is_fully_typed)
                && f.to_bytes() == *raw
        }
        Err(_) => false,
    }
}

/// The kind of a connection whose handshake was not seen, from one of its frames:
/// slurmdbd's ACCOUNTING_UPDATE_MSG travels on its own persist type (23.02+).
fn kind_of(frame: &Frame) -> ConnKind {
    match frame.framing_kind() {
        FramingKind::Normal => ConnKind::Oneshot,
        FramingKind::Dbd => ConnKind::DbdPersist,
        FramingKind::Persist if frame.msg_type() == MsgType::ACCOUNTING_UPDATE_MSG => {
            ConnKind::OtherPersist
        }
        FramingKind::Persist => ConnKind::FedPersist,
    }
}

/// True for the first u16 of a normal header: a version, or NO_VAL16 (what a
/// 24.11+ reply to an unparsable request may carry).
fn starts_header(v: u16) -> bool {
    ProtocolVersion(v).is_known() || v == 0xFFFE
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
    if buf.len() >= 8
        && ProtocolVersion(u16::from_be_bytes([buf[6], buf[7]])).is_known()
        && len >= 18
    {
        return Some(Framing::Normal);
    }
    let dbd_only = first.name_in(Namespace::Dbd).is_some() && first.name().is_none();
    if dbd_only {
        return Some(Framing::Persist {
            ns: Namespace::Dbd,
            version: None,
        });
    }
    if first.name().is_some() {
        return Some(Framing::Persist {
            ns: Namespace::Slurm,
            version: None,
        });
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
    Some(MsgType(u16::from_be_bytes([
        *head.get(at)?,
        *head.get(at + 1)?,
    ])))
}

#[cfg(test)]
mod tests {
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
            0, 0, 0, 0x14, 0x2a, 0, 0, 0x41, 0x1f, 0x41, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x03,
            0xef,
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
            ConnEvent::Frame(o) if o.frame.msg_type() == MsgType::PERSIST_RC => {
                Some(o.version_range)
            }
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
}
