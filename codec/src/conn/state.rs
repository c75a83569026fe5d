//! The strict state machine: bytes in, frames and handshake transitions out.
//! Normal framing until a PERSIST_INIT is accepted, persist framing after; a
//! decode error turns only its direction opaque.

use crate::deframe::{Deframed, MAX_MSG_SIZE};
use crate::error::DecodeError;
use crate::frame::{Frame, Framing};
use crate::msg::Message;
use crate::msg_type::MsgType;
use crate::version::ProtocolVersion;
use crate::Direction;

use super::recovery::kind_of;
use super::{ConnEvent, ConnKind, Connection, DirState, ObservedFrame, StreamStart};

impl Connection {
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

    pub(super) fn drain(&mut self, mut d: Direction, out: &mut Vec<ConnEvent>) {
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

    pub(super) fn fail(
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

/// True for the first u16 of a normal header: a version, or NO_VAL16 (what a
/// 24.11+ reply to an unparsable request may carry).
fn starts_header(v: u16) -> bool {
    ProtocolVersion(v).is_known() || v == 0xFFFE
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
