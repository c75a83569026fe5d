//! Offline decoding of a capture: every TCP connection through the codec's
//! connection state machine, every frame re-encoded and compared.

use std::collections::HashMap;
use std::net::SocketAddr;

use slurm_codec::conn::{ConnConfig, ConnEvent, ConnKind, Connection, StreamStart};
use slurm_codec::frame::{Frame, FramingKind};
use slurm_codec::msg::PersistInit;
use slurm_codec::{DecodeError, Direction, MsgType, ProtocolVersion};

use tcpflow::{Capture, TcpConnection};

/// Offline, frames are held whole up to this size (a live proxy uses less).
const REPLAY_MAX_FRAME: usize = 64 << 20;

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct ReplayedFrame {
    pub dir: Direction,
    /// Capture time of the packet that completed the frame.
    pub ts: f64,
    pub stream_offset: u64,
    pub frame_len: usize,
    pub frame: Frame,
    pub exact: bool,
    /// Persist frame of a connection seen without its handshake: the releases
    /// it can be packed at (one when known), from the codec's inference.
    pub version_range: Option<(ProtocolVersion, ProtocolVersion)>,
}

impl ReplayedFrame {
    /// A decoded frame, compared with its captured bytes.
    pub fn observed(o: slurm_codec::conn::ObservedFrame, ts: f64) -> ReplayedFrame {
        ReplayedFrame {
            exact: o.is_exact(),
            dir: o.dir,
            ts,
            stream_offset: o.stream_offset,
            frame_len: o.raw.len(),
            version_range: o.version_range,
            frame: o.frame,
        }
    }
}

/// A frame too large to decode whole (only its type is known).
#[derive(Debug, Clone)]
pub struct OversizedFrame {
    pub dir: Direction,
    pub ts: f64,
    pub len: u32,
    pub msg_type: Option<MsgType>,
    pub framing: FramingKind,
}

#[derive(Debug, Clone)]
pub struct ReplayError {
    pub dir: Direction,
    pub ts: f64,
    pub stream_offset: u64,
    pub error: DecodeError,
}

/// One TCP connection, decoded.
#[derive(Debug, Clone)]
pub struct ReplayedConnection {
    pub id: usize,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub saw_syn: bool,
    pub first_ts: f64,
    pub kind: ConnKind,
    /// The PERSIST_INIT that opened it, when seen.
    pub persist_init: Option<PersistInit>,
    /// The version its PERSIST_RC negotiated, when seen.
    pub negotiated_version: Option<ProtocolVersion>,
    pub frames: Vec<ReplayedFrame>,
    pub oversized: Vec<OversizedFrame>,
    pub errors: Vec<ReplayError>,
    pub resynced_bytes: usize,
    pub missing_bytes: u64,
    /// Bytes of a frame still incomplete when the capture ended.
    pub incomplete_bytes: usize,
    /// First line of an HTTP request, when the connection was HTTP, not Slurm.
    pub http_request: Option<String>,
    /// Client and server were told apart from the content (no SYN seen).
    pub reoriented: bool,
}

/// Decodes every connection of a capture. Connections seen from their SYN go
/// first; the header version they use is the hint for persistent connections
/// picked up mid-stream (whose negotiated version was never seen).
pub fn replay_capture(mut capture: Capture) -> Vec<ReplayedConnection> {
    replay_connections(&mut capture)
}

/// As [`replay_capture`], leaving the capture's connections oriented as decoded
/// (client = the side that sent requests), for a live replay of the same bytes.
pub fn replay_connections(capture: &mut Capture) -> Vec<ReplayedConnection> {
    let mut out: Vec<Option<ReplayedConnection>> = vec![None; capture.connections.len()];
    // Persistent connections run at the version their PERSIST_RC negotiated (the
    // older side's); header versions are the fallback guess.
    // Counted per pair of hosts: in a mixed-version federation each pair runs
    // its own version, so a capture-wide majority would be wrong for some.
    let mut negotiated: HashMap<HostPair, HashMap<ProtocolVersion, usize>> = HashMap::new();
    let mut headers: HashMap<HostPair, HashMap<ProtocolVersion, usize>> = HashMap::new();
    for (i, c) in capture
        .connections
        .iter_mut()
        .enumerate()
        .filter(|(_, c)| c.saw_syn)
    {
        let r = replay_connection(c, None);
        let pair = host_pair(&r.client, &r.server);
        if let Some(v) = r.negotiated_version {
            *negotiated.entry(pair).or_default().entry(v).or_default() += 1;
        }
        for f in &r.frames {
            if let Some(h) = f.frame.header() {
                *headers
                    .entry(pair)
                    .or_default()
                    .entry(h.version)
                    .or_default() += 1;
            }
        }
        out[i] = Some(r);
    }
    let most = |m: Option<&HashMap<ProtocolVersion, usize>>| {
        m?.iter().max_by_key(|&(v, n)| (n, v)).map(|(v, _)| *v)
    };
    for (i, c) in capture
        .connections
        .iter_mut()
        .enumerate()
        .filter(|(_, c)| !c.saw_syn)
    {
        // A persistent connection between two hosts runs at the version their
        // other persistent connections negotiated; failing that, the header
        // versions between them. Nothing known about the pair: no hint (the
        // codec then reports the range the layouts allow).
        let pair = host_pair(&c.client, &c.server);
        let hint = most(negotiated.get(&pair)).or(most(headers.get(&pair)));
        out[i] = Some(replay_connection(c, hint));
    }
    out.into_iter().flatten().collect()
}

/// The two hosts of a connection, in a fixed order.
type HostPair = (std::net::IpAddr, std::net::IpAddr);
fn host_pair(a: &SocketAddr, b: &SocketAddr) -> HostPair {
    let (a, b) = (a.ip(), b.ip());
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Decodes one connection, flipping its orientation if the content says the
/// provisional client is the server.
pub fn replay_connection(
    c: &mut TcpConnection,
    version_hint: Option<ProtocolVersion>,
) -> ReplayedConnection {
    let start = if c.saw_syn {
        StreamStart::Beginning
    } else {
        StreamStart::MidStream
    };
    let mut conn = Connection::new(ConnConfig {
        start,
        max_buffered: REPLAY_MAX_FRAME,
        version_hint,
        ..ConnConfig::default()
    });
    let mut r = ReplayedConnection {
        id: c.id,
        client: c.client,
        server: c.server,
        saw_syn: c.saw_syn,
        first_ts: c.first_ts,
        kind: ConnKind::Unknown,
        persist_init: None,
        negotiated_version: None,
        frames: Vec::new(),
        oversized: Vec::new(),
        errors: Vec::new(),
        resynced_bytes: 0,
        missing_bytes: c.missing_bytes(),
        incomplete_bytes: 0,
        http_request: None,
        reoriented: false,
    };
    let mut events = Vec::new();
    for (idx, seg) in c.segments.iter().enumerate() {
        // Bytes the capture lost before this segment: resynchronise that direction.
        for g in c.gaps.iter().filter(|g| g.before_segment == idx) {
            conn.gap(g.dir);
        }
        // An opaque direction (after an error) ignores what it is fed.
        conn.feed(seg.dir, &seg.data, &mut events);
        for ev in events.drain(..) {
            match ev {
                ConnEvent::Frame(o) => r.frames.push(ReplayedFrame::observed(o, seg.ts)),
                ConnEvent::Oversized {
                    dir,
                    len,
                    msg_type,
                    framing,
                    ..
                } => r.oversized.push(OversizedFrame {
                    dir,
                    ts: seg.ts,
                    len,
                    msg_type,
                    framing,
                }),
                ConnEvent::Error {
                    dir,
                    stream_offset,
                    error,
                } => r.errors.push(ReplayError {
                    dir,
                    ts: seg.ts,
                    stream_offset,
                    error,
                }),
                ConnEvent::Resync { skipped, .. } => r.resynced_bytes += skipped,
                ConnEvent::Reoriented => r.reoriented = true,
                ConnEvent::PersistEstablished { init, version, .. } => {
                    r.persist_init = Some(init);
                    r.negotiated_version = Some(version);
                }
                ConnEvent::PersistRefused { .. } => {}
                ConnEvent::Http { request_line, .. } => r.http_request = Some(request_line),
            }
        }
    }
    r.incomplete_bytes = conn.buffered();
    r.kind = conn.kind();
    if r.reoriented {
        c.flip();
        r.client = c.client;
        r.server = c.server;
    }
    r
}
