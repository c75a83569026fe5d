//! The per-connection translator: complete frames in, bytes to send out.
//!
//! A relay creates one [`Translator`] per TCP connection whose remote end is a
//! configured legacy FLURM peer, feeds it every complete frame (length prefix
//! included) from either side, and sends what the returned [`Action`] says.
//! Frames that are not part of the fed-info pair come back unchanged.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use slurm_codec::auth::AuthSection;
use slurm_codec::body_hash;
use slurm_codec::flags::HeaderFlags;
use slurm_codec::frame::{Frame, FrameHead, Framing};
use slurm_codec::header::Header;
use slurm_codec::legacy::translate::{
    legacy_2024_to_slurm_2049, legacy_2025_to_slurm_2050, slurm_2049_to_legacy_2024,
    slurm_2050_to_legacy_2025, Unsigned,
};
use slurm_codec::legacy::{
    classify_2024, Kind2024, LEGACY_REQUEST_FED_INFO, LEGACY_RESPONSE_FED_INFO, LEGACY_VERSION,
    SLURM_REQUEST_FED_INFO, SLURM_RESPONSE_FED_INFO,
};
use slurm_codec::wire::PackStr;
use slurm_codec::{MsgType, ProtocolVersion};

use super::config::{LegacyConfig, Peer, PeerTable};
use super::metrics::LegacyMetrics;
use crate::munge::{Decoded, Munge, MungeError};

/// SLURM_PROTOCOL_AUTHENTICATION_ERROR.
pub const SLURM_PROTOCOL_AUTHENTICATION_ERROR: u32 = 1007;
/// RESPONSE_SLURM_RC.
pub const RESPONSE_SLURM_RC: MsgType = MsgType(8001);

/// Minting and verifying credentials (libmunge in production).
pub trait Credentials: Send + Sync {
    fn mint(&self, payload: &[u8], uid_restriction: Option<u32>) -> Result<String, MungeError>;
    fn verify(&self, credential: &[u8]) -> Result<Decoded, MungeError>;
}

impl Credentials for Munge {
    fn mint(&self, payload: &[u8], uid_restriction: Option<u32>) -> Result<String, MungeError> {
        self.encode(payload, uid_restriction)
    }
    fn verify(&self, credential: &[u8]) -> Result<Decoded, MungeError> {
        self.decode(credential)
    }
}

/// Which end of the connection is the legacy peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Slurm clients/controllers → proxy → legacy FLURM controller (upstream).
    ToLegacy,
    /// Legacy FLURM (client) → proxy → real slurmctld (upstream).
    FromLegacy,
}

/// What to do with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes on to the other side (the original bytes when nothing
    /// was translated).
    Forward(Bytes),
    /// Refused: send these bytes (RESPONSE_SLURM_RC, authentication error) to the
    /// client, then close the connection.
    Refuse(Bytes),
}

/// What every translator of one proxy shares: configuration, credentials, metrics.
pub struct TranslationContext {
    pub peers: PeerTable,
    pub config: LegacyConfig,
    pub credentials: Arc<dyn Credentials>,
    pub metrics: LegacyMetrics,
}

enum Pending {
    None,
    /// A Slurm 2049 went to the legacy peer as 2024.
    SlurmFedInfo {
        request: Header,
        requester_uid: u32,
    },
    /// A legacy 2024 went to slurmctld as 2049.
    LegacyFedInfo,
}

pub struct Translator {
    role: Role,
    peer: Peer,
    addr: SocketAddr,
    context: Arc<TranslationContext>,
    pending: Pending,
}

struct Refusal {
    reason: &'static str,
    detail: String,
}

fn refuse(reason: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        detail: detail.into(),
    }
}

impl Translator {
    /// `peer` = the legacy peer (from [`PeerTable::legacy_peer`]), `addr` = its address.
    pub fn new(role: Role, peer: Peer, addr: SocketAddr, context: Arc<TranslationContext>) -> Self {
        Translator {
            role,
            peer,
            addr,
            context,
            pending: Pending::None,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    pub fn metrics(&self) -> &LegacyMetrics {
        &self.context.metrics
    }

    /// A complete frame from the client (length prefix included).
    pub fn on_client_frame(&mut self, raw: Bytes) -> Action {
        let Ok(frame) = Frame::decode(raw.clone(), Framing::Normal) else {
            return Action::Forward(raw);
        };
        let Some(header) = frame.header().cloned() else {
            return Action::Forward(raw);
        };
        let result = match (self.role, header.msg_type) {
            (Role::ToLegacy, SLURM_REQUEST_FED_INFO) => {
                self.slurm_request_to_legacy(&frame, &header)
            }
            (Role::FromLegacy, LEGACY_REQUEST_FED_INFO) => match classify_2024(&frame) {
                Kind2024::LegacyFedInfo => self.legacy_request_to_slurm(&frame),
                kind => {
                    self.passthrough(if kind == Kind2024::SlurmReservationInfo {
                        "slurm_2024"
                    } else {
                        "unrecognised_2024"
                    });
                    return Action::Forward(raw);
                }
            },
            (Role::ToLegacy, LEGACY_REQUEST_FED_INFO) => {
                // Slurm's REQUEST_RESERVATION_INFO toward the legacy controller:
                // the collision case, never translated.
                self.passthrough(if classify_2024(&frame) == Kind2024::SlurmReservationInfo {
                    "slurm_2024"
                } else {
                    "unrecognised_2024"
                });
                return Action::Forward(raw);
            }
            (Role::FromLegacy, _)
                if matches!(
                    frame.head,
                    FrameHead::Normal {
                        auth: AuthSection::Absent,
                        ..
                    }
                ) =>
            {
                // An unsigned legacy frame of another type would need minting: never.
                self.passthrough("unsigned_other_type");
                return Action::Forward(raw);
            }
            _ => return Action::Forward(raw),
        };
        match result {
            Ok(bytes) => Action::Forward(bytes),
            Err(r) => self.refused(r, Some(&header)),
        }
    }

    /// A complete frame from the upstream (length prefix included).
    pub fn on_upstream_frame(&mut self, raw: Bytes) -> Action {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        if matches!(pending, Pending::None) {
            return Action::Forward(raw);
        }
        let Ok(frame) = Frame::decode(raw.clone(), Framing::Normal) else {
            return Action::Forward(raw);
        };
        let msg_type = frame.msg_type();
        let result = match (&pending, msg_type) {
            (
                Pending::SlurmFedInfo {
                    request,
                    requester_uid,
                },
                LEGACY_RESPONSE_FED_INFO,
            ) => self.legacy_reply_to_slurm(&frame, request, *requester_uid),
            (Pending::LegacyFedInfo, SLURM_RESPONSE_FED_INFO) => self.slurm_reply_to_legacy(&frame),
            _ => {
                // e.g. RESPONSE_SLURM_RC from a legacy release that answers 2024
                // with rc -1: signed by the peer for its own msg_type, left alone.
                self.passthrough("other_reply");
                return Action::Forward(raw);
            }
        };
        match result {
            Ok(bytes) => Action::Forward(bytes),
            Err(r) => {
                let req = match &pending {
                    Pending::SlurmFedInfo { request, .. } => Some(request.clone()),
                    _ => None,
                };
                let uid = match &pending {
                    Pending::SlurmFedInfo { requester_uid, .. } => Some(*requester_uid),
                    _ => None,
                };
                self.refused_with_uid(r, req.as_ref(), uid)
            }
        }
    }

    fn passthrough(&self, reason: &str) {
        self.context
            .metrics
            .passthrough
            .with_label_values(&[&self.peer.name, reason])
            .inc();
    }

    fn count(&self, direction: &str, from: &str, to: &str) {
        self.context
            .metrics
            .translations
            .with_label_values(&[direction, from, to])
            .inc();
    }

    fn mint(&self, unsigned: &Unsigned, uid: Option<u32>) -> Result<Bytes, Refusal> {
        let cred = self
            .context
            .credentials
            .mint(&unsigned.k12_payload(), uid)
            .map_err(|e| refuse("mint_failed", e.to_string()))?;
        self.context
            .metrics
            .credentials_minted
            .with_label_values(&[&unsigned.msg_type().0.to_string()])
            .inc();
        Ok(unsigned.seal_munge(&cred))
    }

    /// The uid restriction of a reply, as slurmctld sets it: the requester's uid,
    /// or none when the requester is root or SlurmUser.
    fn reply_restriction(&self, uid: u32) -> Option<u32> {
        (uid != 0 && Some(uid) != self.context.config.slurm_user_uid).then_some(uid)
    }

    /// Verifies a frame's MUNGE credential against its own body and msg_type.
    fn verify(&self, frame: &Frame) -> Result<Decoded, Refusal> {
        let FrameHead::Normal { auth, header } = &frame.head else {
            return Err(refuse("not_normal_framing", ""));
        };
        let credential = match auth {
            AuthSection::Munge {
                credential: PackStr(Some(c)),
            } if c.len() > 1 => c,
            AuthSection::Munge { .. } => {
                return Err(refuse(
                    "empty_credential",
                    "auth/munge with an empty credential",
                ))
            }
            other => {
                return Err(refuse(
                    "missing_credential",
                    format!("auth section {}", other.label()),
                ))
            }
        };
        let decoded = self
            .context
            .credentials
            .verify(credential)
            .map_err(|e| Refusal {
                reason: e.reason(),
                detail: e.to_string(),
            })?;
        if !body_hash::payload_matches(&decoded.payload, header.msg_type, &frame.body_bytes()) {
            return Err(refuse(
                "body_hash_mismatch",
                format!("payload of {} bytes", decoded.payload.len()),
            ));
        }
        Ok(decoded)
    }

    fn slurm_request_to_legacy(
        &mut self,
        frame: &Frame,
        header: &Header,
    ) -> Result<Bytes, Refusal> {
        let who = self.verify(frame)?;
        let out =
            slurm_2049_to_legacy_2024(frame).map_err(|e| refuse(e.reason(), e.to_string()))?;
        self.pending = Pending::SlurmFedInfo {
            request: header.clone(),
            requester_uid: who.uid,
        };
        self.count("to_legacy", "slurm_2049", "legacy_2024");
        Ok(out)
    }

    fn legacy_request_to_slurm(&mut self, frame: &Frame) -> Result<Bytes, Refusal> {
        let v = ProtocolVersion(self.context.config.upstream_version);
        let unsigned =
            legacy_2024_to_slurm_2049(frame, v).map_err(|e| refuse(e.reason(), e.to_string()))?;
        let out = self.mint(&unsigned, None)?;
        self.pending = Pending::LegacyFedInfo;
        self.count("from_legacy", "legacy_2024", "slurm_2049");
        Ok(out)
    }

    fn legacy_reply_to_slurm(
        &mut self,
        frame: &Frame,
        request: &Header,
        uid: u32,
    ) -> Result<Bytes, Refusal> {
        if self.context.config.require_peer_credential {
            self.verify(frame)?;
        }
        let ids = self.context.peers.fed_ids_for(&self.peer, None);
        let unsigned = legacy_2025_to_slurm_2050(frame, request, &ids)
            .map_err(|e| refuse(e.reason(), e.to_string()))?;
        let out = self.mint(&unsigned, self.reply_restriction(uid))?;
        self.count("from_legacy", "legacy_2025", "slurm_2050");
        Ok(out)
    }

    fn slurm_reply_to_legacy(&mut self, frame: &Frame) -> Result<Bytes, Refusal> {
        self.verify(frame)?;
        let local = self.context.config.local_cluster.as_deref();
        let unsigned = slurm_2050_to_legacy_2025(frame, local)
            .map_err(|e| refuse(e.reason(), e.to_string()))?;
        let out = self.mint(&unsigned, None)?;
        self.count("to_legacy", "slurm_2050", "legacy_2025");
        Ok(out)
    }

    fn refused(&self, r: Refusal, request: Option<&Header>) -> Action {
        self.refused_with_uid(r, request, None)
    }

    fn refused_with_uid(&self, r: Refusal, request: Option<&Header>, uid: Option<u32>) -> Action {
        self.context
            .metrics
            .refusals
            .with_label_values(&[&self.peer.name, r.reason])
            .inc();
        tracing::warn!(
            peer = %self.peer.name, addr = %self.addr, reason = r.reason, detail = %r.detail,
            "legacy FLURM translation refused; caller answered with SLURM_PROTOCOL_AUTHENTICATION_ERROR"
        );
        Action::Refuse(self.auth_error_reply(request, uid))
    }

    /// RESPONSE_SLURM_RC with SLURM_PROTOCOL_AUTHENTICATION_ERROR, at the request's
    /// version and flags (legacy framing when there is no Slurm request), signed
    /// when munged is reachable.
    pub fn auth_error_reply(&self, request: Option<&Header>, uid: Option<u32>) -> Bytes {
        let (version, mut flags) =
            request.map_or((LEGACY_VERSION, HeaderFlags(0)), |h| (h.version, h.flags));
        flags.0 &= !HeaderFlags::NO_AUTH_CRED;
        let mut body = BytesMut::new();
        body.put_u32(SLURM_PROTOCOL_AUTHENTICATION_ERROR);
        let unsigned = Unsigned {
            header: Header::new(version, flags, RESPONSE_SLURM_RC, 4),
            body: body.freeze(),
        };
        let restrict = uid.and_then(|u| self.reply_restriction(u));
        match self
            .context
            .credentials
            .mint(&unsigned.k12_payload(), restrict)
        {
            Ok(c) => {
                self.context
                    .metrics
                    .credentials_minted
                    .with_label_values(&[&RESPONSE_SLURM_RC.0.to_string()])
                    .inc();
                unsigned.seal_munge(&c)
            }
            // No munged: FLURM's own fallback shape (plugin 101, empty credential).
            Err(_) => unsigned.seal(&AuthSection::Munge {
                credential: PackStr::from_text(""),
            }),
        }
    }
}
