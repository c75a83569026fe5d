//! The object the tap streams for one relayed message: the object of
//! `fedproxy replay --json` for that frame (built by the same function), plus the
//! conversation fields `summary`, `from` and `to`. Only built for a subscriber.
//!
//! Credentials never appear: the replay object shows the auth section as its
//! plugin name (`auth`) only, and this adds its length (`auth_len`).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use fedproxy_replay::conversation::describe;
use fedproxy_replay::json::frame_json;
use fedproxy_replay::{ReplayedConnection, ReplayedFrame};
use serde_json::json;
use slurm_codec::conn::{ConnKind, ObservedFrame};
use slurm_codec::frame::{BodyDecoding, Frame, FrameHead};
use slurm_codec::msg::PersistInit;
use slurm_codec::Direction;

/// Who the two ends of a relayed connection are, as the conversation names them.
pub struct TapConn<'a> {
    pub id: u64,
    pub listener: &'a str,
    pub client: SocketAddr,
    pub upstream: SocketAddr,
    pub kind: ConnKind,
    pub init: Option<&'a PersistInit>,
}

impl TapConn<'_> {
    fn client_label(&self) -> String {
        let name = self.init.and_then(|i| i.cluster_name.text());
        match (self.kind, name) {
            (ConnKind::FedPersist, Some(n)) => format!("{n}(fed persist)"),
            (ConnKind::FedPersist, None) => "ctld(fed persist)".into(),
            (ConnKind::DbdPersist, _) => "slurmctld(dbd persist)".into(),
            _ => format!("client:{}", self.client.port()),
        }
    }
}

/// The JSON line (without newline) of one frame. The observer decodes only the
/// bodies its metrics need; the tap decodes the frame again in full, so that the
/// object equals the offline decode's.
pub fn tap_line(c: &TapConn, f: &ObservedFrame) -> String {
    let frame = Frame::decode_hinted(
        f.raw.clone(),
        f.frame.framing(),
        BodyDecoding::All,
        f.frame.inferred_version,
    )
    .unwrap_or_else(|_| f.frame.clone());
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let conn = ReplayedConnection {
        id: c.id as usize,
        client: c.client,
        server: c.upstream,
        saw_syn: true,
        first_ts: ts,
        kind: c.kind,
        persist_init: c.init.cloned(),
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
        dir: f.dir,
        ts,
        stream_offset: f.stream_offset,
        frame_len: f.raw.len(),
        exact: frame.to_bytes() == f.raw,
        frame,
    };
    let mut v = frame_json(&format!("live:{}", c.listener), &conn, &rf);
    let (client, server) = (c.client_label(), c.upstream.to_string());
    let (from, to) = match f.dir {
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
