//! The frame-rewriting stage the daemon's relay runs a legacy connection through.
//!
//! The relay hands the stage every chunk it reads; the stage cuts each direction
//! into frames on the u32 length prefix and runs them through the
//! [`Translator`]. HTTP (legacy FLURM's federation probes) and anything that
//! cannot be framed (a length over [`MAX_TRANSLATED_FRAME`]) switch that
//! direction to byte pass-through for the rest of the connection. The stage does
//! no I/O: it says what to write on, what to refuse, and what the observer sees.
//!
//! The daemon's observer (message metrics, decode errors) is fed what the **Slurm
//! side** of the connection sends and receives: the Slurm client's frames and what
//! the proxy answers it (to a legacy peer), or what the proxy sends the real
//! slurmctld and its replies (from a legacy peer). That is Slurm's own numbering,
//! so a legacy REQUEST_FED_INFO is counted as the REQUEST_FED_INFO slurmctld
//! receives, never as the REQUEST_RESERVATION_INFO its number means in Slurm. The
//! legacy side is counted by the `fedproxy_legacy_*` metrics. HTTP probes are not
//! fed (they are counted as legacy probes, with the peer's name).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use slurm_codec::deframe::looks_like_http;
use slurm_codec::Direction;

use super::metrics::ProbeLog;
use super::translator::{Action, Role, TranslationContext, Translator};

/// Frames longer than this are not held for translation (fed-info frames are
/// a few KiB); the direction becomes a byte pipe.
pub const MAX_TRANSLATED_FRAME: usize = 1 << 20;

/// How one direction of a legacy connection is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamMode {
    /// Cut into frames, each through the translator.
    Frames,
    /// Bytes passed on unchanged (HTTP, an oversized frame).
    Pipe,
}

/// What the stage made of the bytes read in one direction.
#[derive(Debug, Default)]
pub struct Rewrite {
    /// Bytes to write on, in the direction they were read.
    pub forward: BytesMut,
    /// Bytes for the daemon's observer, each with the direction it counts in
    /// (the Slurm side of the connection, see the module doc).
    pub observe: Vec<(Direction, Bytes)>,
    /// A refusal for the client: write it to the client after `forward`, then
    /// close both sides.
    pub refuse: Option<Bytes>,
}

/// One legacy connection's translation state, shared by both relay directions.
pub struct LegacyStage {
    translator: Translator,
    client_addr: SocketAddr,
    probes: Option<Arc<ProbeLog>>,
    /// Per direction ([`Direction::index`]): bytes not yet a whole frame.
    pending: [BytesMut; 2],
    mode: [StreamMode; 2],
    /// Frames read from the client and from the upstream.
    frames: [u64; 2],
    http: bool,
    /// The client is the Slurm end ([`Role::ToLegacy`]); else the upstream is.
    slurm_is_client: bool,
    /// Off after HTTP: nothing more for the observer on this connection.
    observing: bool,
}

impl LegacyStage {
    /// `probes` counts HTTP from the client (with the peer's name).
    pub fn new(
        translator: Translator,
        client_addr: SocketAddr,
        probes: Option<Arc<ProbeLog>>,
    ) -> LegacyStage {
        LegacyStage {
            slurm_is_client: translator.role() == Role::ToLegacy,
            translator,
            client_addr,
            probes,
            pending: [BytesMut::new(), BytesMut::new()],
            mode: [StreamMode::Frames; 2],
            frames: [0; 2],
            http: false,
            observing: true,
        }
    }

    /// Frames read from the client and from the upstream so far.
    pub fn frames(&self) -> [u64; 2] {
        self.frames
    }

    /// Bytes read in direction `dir`: whole frames translated, the rest held
    /// (or passed on in pipe mode).
    pub fn on_bytes(&mut self, dir: Direction, bytes: &[u8]) -> Rewrite {
        let i = dir.index();
        self.pending[i].extend_from_slice(bytes);
        let mut out = Rewrite::default();
        while let Some(frame) = self.next_frame(i) {
            self.frames[i] += 1;
            let action = match dir {
                Direction::ClientToServer => self.translator.on_client_frame(frame.clone()),
                Direction::ServerToClient => self.translator.on_upstream_frame(frame.clone()),
            };
            self.watch_frame(dir, &frame, &action, &mut out);
            match action {
                Action::Forward(b) => out.forward.extend_from_slice(&b),
                Action::Refuse(b) => {
                    out.refuse = Some(b);
                    return out;
                }
            }
        }
        if self.mode[i] == StreamMode::Pipe && !self.pending[i].is_empty() {
            if dir == Direction::ClientToServer {
                self.notice_http();
            }
            self.pass_raw(dir, &mut out);
        }
        out
    }

    /// EOF in direction `dir`: a partial frame is passed on as it is.
    pub fn on_eof(&mut self, dir: Direction) -> Rewrite {
        let mut out = Rewrite::default();
        self.pass_raw(dir, &mut out);
        out
    }

    /// The first complete frame held for direction `i`, or a switch to pipe mode.
    fn next_frame(&mut self, i: usize) -> Option<Bytes> {
        let buf = &mut self.pending[i];
        if self.mode[i] == StreamMode::Pipe || buf.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if looks_like_http(buf) || len > MAX_TRANSLATED_FRAME {
            self.mode[i] = StreamMode::Pipe;
            return None;
        }
        (buf.len() >= 4 + len).then(|| buf.split_to(4 + len).freeze())
    }

    /// HTTP as the client's first bytes: a legacy FLURM probe, counted once.
    fn notice_http(&mut self) {
        let buf = &self.pending[Direction::ClientToServer.index()];
        if self.frames[0] != 0 || self.http || !looks_like_http(buf) {
            return;
        }
        self.http = true;
        self.observing = false;
        if let Some(p) = &self.probes {
            p.observe(
                self.translator.metrics(),
                &self.translator.peer().name,
                self.client_addr.ip(),
                &request_line(buf),
            );
        }
    }

    /// Passes the bytes held for `dir` on untranslated.
    fn pass_raw(&mut self, dir: Direction, out: &mut Rewrite) {
        let held = self.pending[dir.index()].split().freeze();
        if held.is_empty() {
            return;
        }
        self.watch(dir, held.clone(), out);
        out.forward.extend_from_slice(&held);
    }

    /// What the observer sees of one frame and what the translator made of it.
    fn watch_frame(&self, dir: Direction, original: &Bytes, action: &Action, out: &mut Rewrite) {
        use Direction::{ClientToServer as C2S, ServerToClient as S2C};
        match (dir, self.slurm_is_client, action) {
            (C2S, true, Action::Forward(_)) => self.watch(C2S, original.clone(), out),
            (C2S, true, Action::Refuse(reply)) => {
                self.watch(C2S, original.clone(), out);
                self.watch(S2C, reply.clone(), out);
            }
            (C2S, false, Action::Forward(sent)) => self.watch(C2S, sent.clone(), out),
            // Refused before anything reached slurmctld.
            (C2S, false, Action::Refuse(_)) => {}
            (S2C, true, Action::Forward(sent) | Action::Refuse(sent)) => {
                self.watch(S2C, sent.clone(), out)
            }
            (S2C, false, _) => self.watch(S2C, original.clone(), out),
        }
    }

    fn watch(&self, dir: Direction, bytes: Bytes, out: &mut Rewrite) {
        if self.observing {
            out.observe.push((dir, bytes));
        }
    }
}

/// The first line of an HTTP request (at most 200 bytes, lossy), for the probe log.
pub fn request_line(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len())
        .min(200);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Which translator (if any) a connection from `client` to `upstream` gets: the
/// upstream being a legacy peer makes it [`Role::ToLegacy`], else the client being
/// one makes it [`Role::FromLegacy`]; otherwise `None` (plain byte relay).
pub fn translator_for(
    context: &Arc<TranslationContext>,
    client: SocketAddr,
    upstream: SocketAddr,
) -> Option<Translator> {
    if let Some(p) = context.peers.legacy_peer(upstream.ip(), None) {
        return Some(Translator::new(
            Role::ToLegacy,
            p.clone(),
            upstream,
            context.clone(),
        ));
    }
    context
        .peers
        .legacy_peer(client.ip(), None)
        .map(|p| Translator::new(Role::FromLegacy, p.clone(), client, context.clone()))
}
