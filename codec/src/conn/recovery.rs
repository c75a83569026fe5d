//! Mid-stream recovery, which only a connection seen without its start needs
//! (a capture that began late, a capture gap, a proxy's connection whose
//! PERSIST_INIT went by before): the framing recognised from the bytes, the
//! client side told from the message types, resync on the next frame start, and
//! the kind of a connection whose handshake was not seen.

use bytes::Bytes;

use crate::deframe::{Deframer, MAX_MSG_SIZE};
use crate::error::DecodeError;
use crate::frame::{BodyDecoding, Frame, Framing, FramingKind};
use crate::msg::Message;
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::Direction;

use super::{ConnEvent, ConnKind, Connection, DirState, StreamStart};

impl Connection {
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

    /// Decides framing from the first bytes. Mid-stream (or after a capture gap)
    /// it skips to the first plausible frame start — one whose following frame
    /// start, if already buffered, is plausible too — within 64 KiB.
    pub(super) fn sniff(&mut self, d: Direction, out: &mut Vec<ConnEvent>) -> Option<Framing> {
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
    pub(super) fn orient(&mut self, d: Direction, frame: &Frame, out: &mut Vec<ConnEvent>) {
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
    /// The version a PERSIST_RC answering the pending PERSIST_INIT carries in
    /// ret_info (also when it refuses): the version that frame is packed at.
    pub(super) fn handshake_answer(&self, d: Direction, frame: &Frame) -> Option<ProtocolVersion> {
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
    pub(super) fn infer_version(
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
pub(super) fn kind_of(frame: &Frame) -> ConnKind {
    match frame.framing_kind() {
        FramingKind::Normal => ConnKind::Oneshot,
        FramingKind::Dbd => ConnKind::DbdPersist,
        FramingKind::Persist if frame.msg_type() == MsgType::ACCOUNTING_UPDATE_MSG => {
            ConnKind::OtherPersist
        }
        FramingKind::Persist => ConnKind::FedPersist,
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
