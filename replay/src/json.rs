//! `fedproxy replay --json`: one JSON object per top-level message, one per line.

use serde_json::{json, Map, Value};
use slurm_codec::frame::{Body, FrameHead};

use super::decode::{ReplayError, ReplayedConnection, ReplayedFrame};

/// The JSON object of one frame.
pub fn frame_json(file: &str, c: &ReplayedConnection, f: &ReplayedFrame) -> Value {
    let frame = &f.frame;
    let ns = frame.namespace();
    let mut o = Map::new();
    o.insert("file".into(), json!(file));
    o.insert("conn".into(), json!(c.id));
    o.insert("dir".into(), json!(f.dir.as_str()));
    o.insert("ts".into(), json!(f.ts));
    o.insert("client".into(), json!(c.client.to_string()));
    o.insert("server".into(), json!(c.server.to_string()));
    o.insert("conn_kind".into(), json!(c.kind.as_str()));
    o.insert("framing".into(), json!(frame.framing_kind().as_str()));
    o.insert(
        "version".into(),
        json!(frame.version().map(|v| v.to_string())),
    );
    if let Some(v) = frame.inferred_version {
        // Handshake not seen: the body layout that decoded it.
        o.insert("inferred_version".into(), json!(v.to_string()));
    }
    match &frame.head {
        FrameHead::Normal { header, auth } => {
            o.insert("flags".into(), json!(header.flags.names()));
            o.insert("body_length".into(), json!(header.body_length));
            o.insert("auth".into(), json!(auth.label()));
            if header.forward.cnt > 0 {
                o.insert("forward_cnt".into(), json!(header.forward.cnt));
            }
            if !header.ret_list.is_empty() {
                o.insert("ret_cnt".into(), json!(header.ret_list.len()));
            }
            o.insert("orig_addr".into(), json!(header.orig_addr.display()));
        }
        FrameHead::Persist { .. } => {
            o.insert("flags".into(), Value::Null);
        }
    }
    o.insert("msg_type".into(), json!(frame.msg_type().0));
    o.insert("msg_name".into(), json!(frame.msg_type().display_in(ns)));
    o.insert("frame_len".into(), json!(f.frame_len));
    o.insert("exact".into(), json!(f.exact));
    match &frame.body {
        Body::Msg(m) => {
            o.insert(
                "body".into(),
                serde_json::to_value(m).unwrap_or(Value::Null),
            );
        }
        Body::Raw(b) => {
            o.insert("body_raw_len".into(), json!(b.len()));
        }
    }
    if let Some(e) = &frame.body_error {
        o.insert(
            "body_error".into(),
            json!({"offset": e.offset, "reason": e.reason(), "message": e.kind.to_string()}),
        );
    }
    Value::Object(o)
}

/// The JSON object of a decode error.
pub fn error_json(file: &str, c: &ReplayedConnection, e: &ReplayError) -> Value {
    json!({
        "file": file,
        "conn": c.id,
        "dir": e.dir.as_str(),
        "ts": e.ts,
        "client": c.client.to_string(),
        "server": c.server.to_string(),
        "error": {
            "stream_offset": e.stream_offset,
            "offset": e.error.offset,
            "reason": e.error.reason(),
            "message": e.error.kind.to_string(),
        }
    })
}
