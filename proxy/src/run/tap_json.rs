//! The object the tap streams for one relayed message: the object of
//! `fedproxy replay --json` for that frame (built by the same function), plus the
//! conversation fields `summary`, `from` and `to`. Built in the subscriber's
//! stream, never on the relay's path.
//!
//! Credentials never appear: the replay object shows the auth section as its
//! plugin name (`auth`) only, and this adds its length (`auth_len`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use fedproxy_replay::conversation::describe;
use fedproxy_replay::json::frame_json;
use fedproxy_replay::{ReplayedConnection, ReplayedFrame};
use serde_json::json;
use slurm_codec::conn::ConnKind;
use slurm_codec::frame::{BodyDecoding, Frame, FrameHead, Framing};
use slurm_codec::msg::PersistInit;
use slurm_codec::{Direction, ProtocolVersion};

/// One relayed frame as the tap keeps it until a subscriber's stream renders it:
/// the wire bytes (shared, not copied) and who the two ends are.
pub struct TapSource {
    pub id: u64,
    pub listener: Arc<str>,
    pub client: SocketAddr,
    pub upstream: SocketAddr,
    pub kind: ConnKind,
    pub init: Option<PersistInit>,
    pub dir: Direction,
    pub stream_offset: u64,
    pub raw: Bytes,
    pub framing: Framing,
    pub inferred_version: Option<ProtocolVersion>,
    /// Releases a persist frame's connection can be running when the proxy
    /// met it without its handshake (as `replay` reports it).
    pub version_range: Option<(ProtocolVersion, ProtocolVersion)>,
    /// When the relay saw it (seconds since the epoch).
    pub ts: f64,
}

impl TapSource {
    pub fn now() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    fn client_label(&self) -> String {
        let name = self.init.as_ref().and_then(|i| i.cluster_name.text());
        match (self.kind, name) {
            (ConnKind::FedPersist, Some(n)) => format!("{n}(fed persist)"),
            (ConnKind::FedPersist, None) => "ctld(fed persist)".into(),
            (ConnKind::DbdPersist, _) => "slurmctld(dbd persist)".into(),
            _ => format!("client:{}", self.client.port()),
        }
    }

    /// The JSON line (without newline). The observer decodes only the bodies its
    /// metrics need; this decodes the frame again in full, so that the object
    /// equals the offline decode's.
    pub fn line(&self) -> String {
        let frame = match Frame::decode_hinted(
            self.raw.clone(),
            self.framing,
            BodyDecoding::All,
            self.inferred_version,
        ) {
            Ok(f) => f,
            Err(e) => return json!({"conn": self.id, "error": e.to_string()}).to_string(),
        };
        let conn = ReplayedConnection {
            id: self.id as usize,
            client: self.client,
            server: self.upstream,
            saw_syn: true,
            first_ts: self.ts,
            kind: self.kind,
            persist_init: self.init.clone(),
            negotiated_version: None,
            frames: Vec::new(),
            oversized: Vec::new(),
            errors: Vec::new(),
            resynced_bytes: 0,
            missing_bytes: 0,
            incomplete_bytes: 0,
            http_request: None,
            reoriented: false,
        };
        let summary = describe(&frame);
        let auth_len = match &frame.head {
            FrameHead::Normal { auth, .. } => Some(auth.wire_len()),
            FrameHead::Persist { .. } => None,
        };
        let rf = ReplayedFrame {
            dir: self.dir,
            ts: self.ts,
            stream_offset: self.stream_offset,
            frame_len: self.raw.len(),
            exact: frame.to_bytes() == self.raw,
            frame,
            version_range: self.version_range,
        };
        let mut v = frame_json(&format!("live:{}", self.listener), &conn, &rf);
        let (client, server) = (self.client_label(), self.upstream.to_string());
        let (from, to) = match self.dir {
            Direction::ClientToServer => (client, server),
            Direction::ServerToClient => (server, client),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("summary".into(), json!(summary));
            o.insert("from".into(), json!(from));
            o.insert("to".into(), json!(to));
            if let Some(n) = auth_len {
                o.insert("auth_len".into(), json!(n));
            }
        }
        v.to_string()
    }
}
