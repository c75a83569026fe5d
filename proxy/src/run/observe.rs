//! Observation: a copy of each connection's bytes goes through one
//! `slurm_codec::conn::Connection` (shared by both directions); its events drive
//! the metrics. Decoding never affects the relayed bytes: after a decode error the
//! codec turns that direction opaque and the relay carries on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use prometheus::IntGauge;
use slurm_codec::conn::{ConnConfig, ConnEvent, ConnKind, Connection, ObservedFrame, StreamStart};
use slurm_codec::frame::BodyDecoding;
use slurm_codec::frame::{Body, Frame, FrameHead, FramingKind};
use slurm_codec::msg::{Message, PersistInit, SibMsg, SibMsgType};
use slurm_codec::msg_type::MsgType;
use slurm_codec::DecodeError;
use slurm_codec::Direction;
use tracing::{debug, info, warn};

use super::metrics::{msg_type_label, Metrics, UNKNOWN};
use super::tap::{TapHub, TapMessage};
use super::tap_json::TapSource;
use crate::observe_budget::{ObserveBudget, Share};

/// `fedproxy_decode_errors_total` reason: the observation budget was exhausted.
pub const MEMORY_BUDGET: &str = "memory_budget";

/// `fedproxy_decode_errors_total` reason: a partial frame sat idle past
/// `relay.partial_idle_secs`; its direction is relayed unobserved.
pub const IDLE_PARTIAL: &str = "idle_partial";

/// An idle partial frame is logged once per process.
static IDLE_PARTIAL_LOGGED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The budget's exhaustion is logged once per process.
static BUDGET_LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What the relay knows about a connection, for logs and labels.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub listener: Arc<str>,
    pub client: SocketAddr,
    pub upstream: SocketAddr,
}

/// Per-connection observer. Lives behind a `Mutex` shared by the two relay
/// directions (uncontended: both run in one task, and Slurm is request/reply).
pub struct Observer {
    /// None when decoding is off (`relay.observe = false`): accounting only.
    conn: Option<Connection>,
    metrics: Arc<Metrics>,
    info: ConnInfo,
    /// The conn_kind under which this connection is counted in `connections_active`.
    kind: ConnKind,
    active: IntGauge,
    error_logged: bool,
    /// A normal-framed request waiting for its reply: (request type label, when).
    pending_rpc: Option<(&'static str, Instant)>,
    /// Header version of the last normal-framed request (a refusal answered at
    /// an older version is a version mismatch).
    request_version: Option<slurm_codec::version::ProtocolVersion>,
    /// `federation_peer_connected` series to decrement when the connection ends.
    peer_gauge: Option<IntGauge>,
    /// Events waiting to be handled, per direction.
    events: [Vec<ConnEvent>; 2],
    /// The live tap, offered every decoded frame while someone subscribes.
    tap: Option<Arc<TapHub>>,
    /// This connection's part of the process-wide observation budget.
    budget: Share,
    /// `relay.partial_idle_secs`.
    partial_idle: Option<std::time::Duration>,
}

impl Observer {
    /// `max_buffered`: `Some(relay.max_observed_frame)` to decode, `None` to only
    /// account for the connection.
    pub fn new(metrics: Arc<Metrics>, info: ConnInfo, max_buffered: Option<usize>) -> Observer {
        let active = metrics
            .connections_active
            .with_label_values(&[&info.listener, ConnKind::Unknown.as_str()]);
        active.inc();
        Observer {
            conn: max_buffered.map(|max_buffered| {
                Connection::new(ConnConfig {
                    start: StreamStart::Accepted,
                    max_buffered,
                    version_hint: None,
                    // Only the handshake and sib messages need typed bodies here.
                    bodies: BodyDecoding::Observe,
                })
            }),
            metrics,
            info,
            kind: ConnKind::Unknown,
            active,
            error_logged: false,
            pending_rpc: None,
            request_version: None,
            peer_gauge: None,
            events: [Vec::new(), Vec::new()],
            tap: None,
            budget: Share::new(ObserveBudget::global()),
            partial_idle: None,
        }
    }

    /// How long a partial frame may wait for its next byte (`None` = forever).
    pub fn with_partial_idle(mut self, limit: Option<std::time::Duration>) -> Observer {
        self.partial_idle = limit;
        self
    }

    /// How long the relay of `dir` may wait for bytes before calling
    /// [`Observer::idle_partial`]: `Some` only while `dir` holds a partial frame.
    pub fn partial_idle_limit(&self, dir: Direction) -> Option<std::time::Duration> {
        let c = self.conn.as_ref()?;
        let waiting = !c.is_opaque(dir) && c.buffered_in(dir) > 0;
        self.partial_idle.filter(|_| waiting)
    }

    /// The partial frame of `dir` waited too long: that direction is relayed
    /// unobserved from now on and its buffer freed (counted, logged once).
    pub fn idle_partial(&mut self, dir: Direction) {
        let Some(c) = &mut self.conn else {
            return;
        };
        let held = c.buffered_in(dir);
        c.set_opaque(dir);
        let _ = self.budget.set(c.memory()); // shrinking never fails
        self.metrics
            .decode_errors
            .with_label_values(&[dir.as_str(), IDLE_PARTIAL])
            .inc();
        if !IDLE_PARTIAL_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            warn!(conn = self.info.id, listener = %self.info.listener, client = %self.info.client,
                direction = dir.as_str(), held, limit_secs = self.partial_idle.map(|d| d.as_secs()),
                "a partial frame waited past relay.partial_idle_secs: that direction is relayed unobserved (logged once; counted in fedproxy_decode_errors_total{{reason=\"idle_partial\"}})");
        }
    }

    /// Offers this connection's decoded frames to the live tap.
    pub fn with_tap(mut self, tap: Arc<TapHub>) -> Observer {
        self.tap = Some(tap);
        self
    }

    /// False when nothing is decoded (off, or both directions opaque after
    /// errors): the relay can stop feeding.
    pub fn decoding(&self) -> bool {
        match &self.conn {
            None => false,
            Some(c) => {
                !(c.is_opaque(Direction::ClientToServer) && c.is_opaque(Direction::ServerToClient))
            }
        }
    }

    fn conn_kind(&self) -> ConnKind {
        self.conn
            .as_ref()
            .map_or(ConnKind::Unknown, Connection::kind)
    }

    /// Decodes bytes that travelled in `dir`; call [`Observer::handle`] for `dir`
    /// afterwards (the relay forwards the bytes in between, so that the codec has
    /// seen a request before the peer can possibly answer it).
    pub fn feed(&mut self, dir: Direction, data: &[u8]) {
        let Some(c) = &mut self.conn else {
            return;
        };
        // What the decoder may hold after this feed (checked before, when the
        // bytes could only add to it, and after, when its buffer may have grown
        // by more): over the budget, this direction is relayed unobserved.
        let fits = c.is_opaque(dir) || self.budget.set(c.memory() + data.len()).is_ok();
        if fits {
            c.feed(dir, data, &mut self.events[dir.index()]);
            if self.budget.set(c.memory()).is_ok() {
                return;
            }
        }
        c.set_opaque(dir);
        if !fits {
            c.feed(dir, data, &mut self.events[dir.index()]); // counted, not decoded
        }
        let _ = self.budget.set(c.memory()); // shrinking never fails
        {
            self.metrics
                .decode_errors
                .with_label_values(&[dir.as_str(), MEMORY_BUDGET])
                .inc();
            if !BUDGET_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                warn!(conn = self.info.id, listener = %self.info.listener, client = %self.info.client,
                    limit = ObserveBudget::global().limit(),
                    "observation memory budget (relay.observe_budget) exhausted: directions that would exceed it are relayed unobserved (logged once; counted in fedproxy_decode_errors_total{{reason=\"memory_budget\"}})");
            }
        }
    }

    /// The source of `dir` ended: a frame still incomplete (also a start under
    /// 6 bytes) is reported as `truncated`; call [`Observer::handle`] after.
    pub fn eof(&mut self, dir: Direction) {
        if let Some(c) = &mut self.conn {
            c.eof(dir, &mut self.events[dir.index()]);
            let _ = self.budget.set(c.memory()); // shrinking never fails
        }
    }

    /// After a panic in decoding or metrics code: stop decoding this connection
    /// (the relay keeps forwarding) and count it as a decode error.
    pub fn disable_after_panic(&mut self, dir: Direction) {
        self.conn = None;
        self.events = [Vec::new(), Vec::new()];
        self.metrics
            .decode_errors
            .with_label_values(&[dir.as_str(), "malformed"])
            .inc();
        warn!(conn = self.info.id, listener = %self.info.listener, client = %self.info.client,
            "internal error while decoding (a bug: please report it with a capture); relaying undecoded");
    }

    /// The relay of `dir` has nothing to do: free what it held for events.
    pub fn idle(&mut self, dir: Direction) {
        self.events[dir.index()] = Vec::new();
    }

    /// Turns the events of `dir` into metrics and log lines.
    pub fn handle(&mut self, dir: Direction) {
        if self.events[dir.index()].is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.events[dir.index()]);
        self.handle_events(&mut events);
        self.events[dir.index()] = events;
    }

    /// Every codec event is matched here, so a new one fails to compile until handled.
    fn handle_events(&mut self, events: &mut Vec<ConnEvent>) {
        let now = Instant::now();
        for ev in events.drain(..) {
            match ev {
                ConnEvent::Frame(f) => self.on_frame(&f, now),
                ConnEvent::Oversized {
                    dir,
                    msg_type,
                    framing,
                    len,
                    ..
                } => self.on_oversized(dir, msg_type, framing, len),
                ConnEvent::Error {
                    dir,
                    stream_offset,
                    error,
                } => self.on_decode_error(dir, stream_offset, &error),
                ConnEvent::PersistEstablished {
                    kind,
                    version,
                    init,
                } => self.peer_established(kind, version, &init),
                ConnEvent::PersistRefused { rc, init } => self.on_persist_refused(rc, &init),
                ConnEvent::Http { dir, request_line } => self.on_http(dir, &request_line),
                // Mid-stream only; the proxy always starts at the beginning.
                ConnEvent::Resync { .. } | ConnEvent::Reoriented => {}
            }
        }
        self.sync_kind();
    }

    /// A decoded frame: counted by type and kind; a request starts the RPC timer,
    /// its reply stops it.
    fn on_frame(&mut self, f: &ObservedFrame, now: Instant) {
        let frame = &f.frame;
        let t = msg_type_label(frame.msg_type(), frame.namespace());
        // A PERSIST_INIT is counted under the kind it asks for (the
        // connection only changes kind when the reply accepts it).
        let kind = match frame.message() {
            Some(Message::PersistInit(init)) => ConnKind::of(init.persist_type),
            _ => self.conn_kind(),
        };
        self.metrics.count_message(f.dir, t, kind);
        match f.dir {
            Direction::ClientToServer if matches!(frame.head, FrameHead::Normal { .. }) => {
                self.pending_rpc = Some((t, now));
                self.request_version = frame.version();
            }
            Direction::ServerToClient => {
                if let Some((req, since)) = self.pending_rpc.take() {
                    self.metrics
                        .observe_rpc(req, now.duration_since(since).as_secs_f64());
                }
            }
            Direction::ClientToServer => {}
        }
        if let Some(m) = frame.message() {
            self.count_sib(f.dir, m);
        }
        if let Some(reason) = slurm_refusal(f.dir, frame, self.request_version) {
            self.metrics
                .slurm_refusals
                .with_label_values(&[&*self.info.listener, reason])
                .inc();
        }
        if let Some(tap) = self.tap.as_ref().filter(|t| t.is_active()) {
            self.publish_tap(tap, f, kind);
        }
    }

    /// The tap's work happens only here, only while someone subscribes.
    fn publish_tap(&self, tap: &TapHub, f: &ObservedFrame, kind: ConnKind) {
        let init = self.conn.as_ref().and_then(Connection::persist_init);
        let pending_init = match f.frame.message() {
            Some(Message::PersistInit(i)) => Some(i),
            _ => None,
        };
        let init = init.or(pending_init);
        let cluster = init.and_then(|i| i.cluster_name.text());
        let msg = TapMessage {
            msg_type: f.frame.msg_type(),
            ns: f.frame.namespace(),
            conn_kind: kind.as_str(),
            cluster: cluster.as_deref(),
        };
        tap.publish(&msg, || {
            let source = TapSource {
                id: self.info.id,
                listener: self.info.listener.clone(),
                client: self.info.client,
                upstream: self.info.upstream,
                kind,
                init: init.cloned(),
                dir: f.dir,
                stream_offset: f.stream_offset,
                raw: f.raw.clone(),
                framing: f.frame.framing(),
                inferred_version: f.frame.inferred_version,
                version_range: f.version_range,
                ts: TapSource::now(),
            };
            Arc::new(move || source.line())
        });
    }

    fn on_oversized(
        &mut self,
        dir: Direction,
        msg_type: Option<MsgType>,
        framing: FramingKind,
        len: u32,
    ) {
        let t = msg_type
            .map(|t| msg_type_label(t, framing.namespace()))
            .unwrap_or(UNKNOWN);
        self.metrics
            .oversized_frames
            .with_label_values(&[dir.as_str(), t])
            .inc();
        // Still a message: count it by type too.
        self.metrics
            .messages
            .with_label_values(&[dir.as_str(), t, self.conn_kind().as_str()])
            .inc();
        debug!(conn = self.info.id, listener = %self.info.listener, dir = dir.as_str(), len, msg_type = t,
            "oversized frame relayed, only its start decoded");
    }

    fn on_decode_error(&mut self, dir: Direction, stream_offset: u64, error: &DecodeError) {
        self.metrics
            .decode_errors
            .with_label_values(&[dir.as_str(), error.reason()])
            .inc();
        if !self.error_logged {
            self.error_logged = true;
            let info = &self.info;
            crate::log_limit::limited("decode_error", || {
                warn!(conn = info.id, listener = %info.listener, client = %info.client,
                    upstream = %info.upstream, dir = dir.as_str(), stream_offset, reason = error.reason(),
                    error = %error, "decode error; relaying this direction undecoded from here on")
            });
        }
    }

    fn on_persist_refused(&mut self, rc: i32, init: &PersistInit) {
        let pt = persist_type_label(init.persist_type);
        self.metrics
            .persist_refused
            .with_label_values(&[&*self.info.listener, &pt])
            .inc();
        info!(conn = self.info.id, listener = %self.info.listener, client = %self.info.client,
            cluster = %init.cluster_name.text().unwrap_or_default(), persist_type = %pt, rc,
            "PERSIST_INIT refused");
    }

    fn on_http(&mut self, dir: Direction, request_line: &str) {
        if dir == Direction::ServerToClient {
            // 26.05 answers a frame of a header version it no longer
            // accepts as an HTTP server would ("HTTP/1.1 405 ...").
            self.metrics
                .slurm_refusals
                .with_label_values(&[&*self.info.listener, "http_answer"])
                .inc();
        }
        debug!(conn = self.info.id, listener = %self.info.listener, client = %self.info.client,
            upstream = %self.info.upstream, dir = dir.as_str(), request_line = %request_line,
            "HTTP on a Slurm port; relaying the connection undecoded");
        // Legacy FLURM federates over HTTP: count by path, warn once per address.
        self.metrics.probes.observe(
            &self.metrics.legacy,
            flurm::metrics::UNCONFIGURED,
            self.info.client.ip(),
            request_line,
        );
    }

    fn peer_established(
        &mut self,
        kind: ConnKind,
        version: slurm_codec::version::ProtocolVersion,
        init: &PersistInit,
    ) {
        let name = init.cluster_name.text().unwrap_or_default();
        let (cluster, port) = self.metrics.peers.labels(&name, init.port);
        let pt = persist_type_label(init.persist_type);
        let ver = version.release().unwrap_or("unknown");
        let g = self.metrics.federation_peer_connected.with_label_values(&[
            &*self.info.listener,
            &cluster,
            &port,
            &pt,
            ver,
        ]);
        g.inc();
        if let Some(old) = self.peer_gauge.replace(g) {
            old.dec();
        }
        info!(conn = self.info.id, listener = %self.info.listener, client = %self.info.client, upstream = %self.info.upstream,
            cluster = %name, port = init.port, persist_type = %pt, version = %version, conn_kind = kind.as_str(),
            "persistent connection established");
    }

    /// REQUEST_SIB_MSG / SIB_JOB_LOCK / SIB_JOB_UNLOCK by sib_msg_type, including
    /// the ones batched inside REQUEST_CTLD_MULT_MSG. A sib item the codec could
    /// not type (decode error inside the batch) counts as `UNKNOWN`.
    fn count_sib(&self, dir: Direction, m: &Message) {
        match m {
            Message::SibMsg(s) | Message::SibJobLock(s) | Message::SibJobUnlock(s) => {
                self.count_sib_type(dir, s.sib_msg_type.name());
                self.count_submission(s);
            }
            Message::CtldMultRequest(mm) => {
                for item in &mm.items {
                    match item.message() {
                        Some(
                            Message::SibMsg(s) | Message::SibJobLock(s) | Message::SibJobUnlock(s),
                        ) => {
                            self.count_sib_type(dir, s.sib_msg_type.name());
                            self.count_submission(s);
                        }
                        Some(_) => {}
                        None if is_sib_type(item.msg_type()) => self.count_sib_type(dir, UNKNOWN),
                        None => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// A job handed to a sibling. The origin is the fed id inside the job id
    /// (6 bits: at most 64 label values), never a name from the wire.
    fn count_submission(&self, s: &SibMsg) {
        if !matches!(
            s.sib_msg_type,
            SibMsgType::SubmitBatch | SibMsgType::SubmitInt
        ) {
            return;
        }
        let origin = s
            .job_id
            .or(s.step_id.map(|st| st.job_id))
            .unwrap_or_default();
        self.metrics
            .federated_submissions
            .with_label_values(&[&*self.info.listener, &origin.cluster().to_string()])
            .inc();
    }

    fn count_sib_type(&self, dir: Direction, name: &'static str) {
        self.metrics.count_sib(dir, name);
    }

    /// Moves the connection between `connections_active` series when its kind changes.
    fn sync_kind(&mut self) {
        let now = self.conn_kind();
        if now != self.kind {
            self.active.dec();
            self.active = self
                .metrics
                .connections_active
                .with_label_values(&[&self.info.listener, now.as_str()]);
            self.active.inc();
            self.kind = now;
        }
    }

    /// The kind the connection turned out to be.
    pub fn kind(&self) -> ConnKind {
        self.kind
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.active.dec();
        if let Some(g) = self.peer_gauge.take() {
            g.dec();
        }
    }
}

fn is_sib_type(t: Option<MsgType>) -> bool {
    matches!(
        t,
        Some(
            MsgType::REQUEST_SIB_MSG
                | MsgType::REQUEST_SIB_JOB_LOCK
                | MsgType::REQUEST_SIB_JOB_UNLOCK
        )
    )
}

/// The persist_type label: a closed set (a wire value outside it is `UNKNOWN`).
fn persist_type_label(t: slurm_codec::msg::PersistType) -> String {
    match t {
        slurm_codec::msg::PersistType::Other(_) => super::metrics::UNKNOWN.to_string(),
        t => t.name(),
    }
}

/// Why slurmctld refused a request, when its reply says so (see
/// `fedproxy_slurm_refusals_total`): how a version mismatch between releases
/// shows on the wire. 24.11 refuses a request of a newer release with
/// SLURM_RC 1007 at its own, older version: that is counted as
/// `protocol_version`, like SLURM_RC 1005.
fn slurm_refusal(
    dir: Direction,
    frame: &Frame,
    request_version: Option<slurm_codec::version::ProtocolVersion>,
) -> Option<&'static str> {
    let FrameHead::Normal { header, .. } = &frame.head else {
        return None;
    };
    if dir != Direction::ServerToClient {
        return None;
    }
    if header.version.0 == 0xFFFE {
        return Some("unparsable_request");
    }
    if header.msg_type != MsgType::RESPONSE_SLURM_RC {
        return None;
    }
    let rc = match &frame.body {
        Body::Raw(b) => i32::from_be_bytes(b.get(..4)?.try_into().ok()?),
        Body::Msg(m) => match m.as_ref() {
            Message::SlurmRc(r) => r.return_code.0,
            _ => return None,
        },
    };
    let older_than_request = request_version.is_some_and(|v| header.version < v);
    match rc {
        1005 => Some("protocol_version"),
        1007 if older_than_request => Some("protocol_version"),
        1007 => Some("authentication"),
        _ => None,
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;
    use slurm_codec::frame::Framing;
    use slurm_codec::version::ProtocolVersion;

    /// A 24.11 RESPONSE_SLURM_RC without credential carrying `rc`.
    fn slurm_rc_2411(rc: i32) -> Frame {
        let mut wire = vec![
            0, 0, 0, 0x14, 0x2a, 0, 0, 0x40, 0x1f, 0x41, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
        ];
        wire.extend_from_slice(&rc.to_be_bytes());
        Frame::decode(bytes::Bytes::from(wire), Framing::Normal).unwrap()
    }

    #[test]
    fn an_error_answered_at_an_older_version_is_a_version_refusal() {
        let s2c = Direction::ServerToClient;
        let reply = slurm_rc_2411(1007);
        let newer = Some(ProtocolVersion::V26_05);
        let same = Some(ProtocolVersion::V24_11);
        assert_eq!(slurm_refusal(s2c, &reply, newer), Some("protocol_version"));
        assert_eq!(slurm_refusal(s2c, &reply, same), Some("authentication"));
        assert_eq!(
            slurm_refusal(s2c, &slurm_rc_2411(1005), same),
            Some("protocol_version")
        );
        assert_eq!(slurm_refusal(s2c, &slurm_rc_2411(0), newer), None);
        assert_eq!(
            slurm_refusal(Direction::ClientToServer, &reply, newer),
            None
        );
    }
}
