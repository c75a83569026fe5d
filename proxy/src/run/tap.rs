//! The live tap (`GET /tap` on the admin server, `fedproxy tap`): the decoded
//! messages a running proxy relays, as JSON lines, to any number of subscribers.
//!
//! Relaying never waits for a subscriber: each has a bounded queue, a message that
//! does not fit is dropped and counted, and the subscriber is told how many it
//! missed (a `{"dropped": N}` line, N counted since it subscribed). With no
//! subscriber the relay pays one atomic load per frame ([`TapHub::is_active`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use slurm_codec::msg_type::{MsgType, Namespace};
use tokio::sync::mpsc;

/// Lines a subscriber may have queued before new ones are dropped.
pub const DEFAULT_QUEUE: usize = 1024;

/// What a subscriber asked for; an absent part matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TapFilter {
    /// A number (`4500`) or a name (`REQUEST_CTLD_MULT_MSG`, or without its
    /// REQUEST_/RESPONSE_ prefix: `CTLD_MULT_MSG` matches both).
    pub msg_type: Option<String>,
    /// A cluster name: matches connections whose PERSIST_INIT named it.
    pub cluster: Option<String>,
    /// `oneshot`, `fed_persist`, `dbd_persist`, `other_persist`, …
    pub conn_kind: Option<String>,
}

/// Why a `/tap` query was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TapQueryError {
    #[error("unknown query parameter {0:?} (use msg_type, cluster, conn_kind)")]
    UnknownParameter(String),
    #[error("bad percent-encoding in the query")]
    BadEncoding,
}

impl TapFilter {
    /// Parses `msg_type=…&cluster=…&conn_kind=…` (percent-decoded).
    pub fn from_query(query: Option<&str>) -> Result<TapFilter, TapQueryError> {
        let mut f = TapFilter::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or(TapQueryError::BadEncoding)?;
            let v = (!v.is_empty()).then_some(v);
            match k {
                "msg_type" => f.msg_type = v,
                "cluster" => f.cluster = v,
                "conn_kind" => f.conn_kind = v,
                other => return Err(TapQueryError::UnknownParameter(other.to_string())),
            }
        }
        Ok(f)
    }

    /// The query string of this filter (for `fedproxy tap`).
    pub fn to_query(&self) -> String {
        let parts: Vec<String> = [
            ("msg_type", &self.msg_type),
            ("cluster", &self.cluster),
            ("conn_kind", &self.conn_kind),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v))))
        .collect();
        parts.join("&")
    }

    pub fn matches(&self, m: &TapMessage) -> bool {
        if let Some(want) = &self.conn_kind {
            if want != m.conn_kind {
                return false;
            }
        }
        if let Some(want) = &self.cluster {
            if m.cluster != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(want) = &self.msg_type {
            let name = m.msg_type.display_in(m.ns);
            let short = name
                .strip_prefix("REQUEST_")
                .or_else(|| name.strip_prefix("RESPONSE_"))
                .unwrap_or(&name);
            let by_number = want.parse::<u16>().ok() == Some(m.msg_type.0);
            if !(by_number || *want == name || want == short) {
                return false;
            }
        }
        true
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            c => format!("%{c:02X}"),
        })
        .collect()
}

/// One decoded message offered to the tap: what filters look at, and its line.
pub struct TapMessage<'a> {
    pub msg_type: MsgType,
    pub ns: Namespace,
    pub conn_kind: &'static str,
    /// The cluster the connection's PERSIST_INIT named, if any.
    pub cluster: Option<&'a str>,
}

/// Builds one message's line (one JSON object, no newline). Queued as is: the
/// decoding and serializing happen in the subscriber's task, not the relay's.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

struct Subscriber {
    filter: TapFilter,
    tx: mpsc::Sender<Render>,
    dropped: Arc<AtomicU64>,
}

/// The subscribers of one proxy.
#[derive(Default)]
pub struct TapHub {
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    active: AtomicUsize,
    next_id: AtomicU64,
}

impl TapHub {
    /// True when someone listens: the only cost of the tap otherwise.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    pub fn subscribers(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// A new subscriber with a queue of `queue` lines; dropping the returned body
    /// unsubscribes.
    pub fn subscribe(self: &Arc<Self>, filter: TapFilter, queue: usize) -> TapBody {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.insert(
            id,
            Subscriber {
                filter,
                tx,
                dropped: dropped.clone(),
            },
        );
        self.active.store(subs.len(), Ordering::Relaxed);
        TapBody {
            rx,
            dropped,
            reported: 0,
            pending: None,
            hub: Arc::downgrade(self),
            id,
        }
    }

    fn unsubscribe(&self, id: u64) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.remove(&id);
        self.active.store(subs.len(), Ordering::Relaxed);
    }

    /// Offers a message: `render` is made only when some subscriber's filter
    /// matches, and run later by each subscriber's stream. Never blocks.
    pub fn publish(&self, m: &TapMessage, render: impl FnOnce() -> Render) {
        let subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        let mut made: Option<Render> = None;
        let mut render = Some(render);
        for s in subs.values().filter(|s| s.filter.matches(m)) {
            let r = made
                .get_or_insert_with(|| (render.take().expect("made once"))())
                .clone();
            if s.tx.try_send(r).is_err() {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The streaming body of one `/tap` response: the subscriber's lines, each
/// preceded by `{"dropped": N}` when N (cumulative) grew since the last line.
pub struct TapBody {
    rx: mpsc::Receiver<Render>,
    dropped: Arc<AtomicU64>,
    reported: u64,
    pending: Option<Bytes>,
    hub: std::sync::Weak<TapHub>,
    id: u64,
}

impl TapBody {
    fn drop_notice(&mut self) -> Option<Bytes> {
        let n = self.dropped.load(Ordering::Relaxed);
        (n > self.reported).then(|| {
            self.reported = n;
            Bytes::from(format!("{{\"dropped\":{n}}}\n"))
        })
    }
}

impl Drop for TapBody {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(self.id);
        }
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(b) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(render)) => {
                let mut line = render();
                line.push('\n');
                let line = Bytes::from(line);
                match self.drop_notice() {
                    Some(notice) => {
                        self.pending = Some(line);
                        Poll::Ready(Some(Ok(Frame::data(notice))))
                    }
                    None => Poll::Ready(Some(Ok(Frame::data(line)))),
                }
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn msg(t: u16, kind: &'static str, cluster: Option<&'static str>) -> TapMessage<'static> {
        TapMessage {
            msg_type: MsgType(t),
            ns: Namespace::Slurm,
            conn_kind: kind,
            cluster,
        }
    }

    #[test]
    fn filters_by_number_name_short_name_cluster_and_kind() {
        let f = TapFilter::from_query(Some("msg_type=CTLD_MULT_MSG&cluster=beta")).unwrap();
        assert!(f.matches(&msg(4500, "fed_persist", Some("beta"))));
        assert!(f.matches(&msg(4501, "fed_persist", Some("beta"))));
        assert!(!f.matches(&msg(4500, "fed_persist", Some("alpha"))));
        assert!(!f.matches(&msg(4502, "fed_persist", Some("beta"))));
        let f = TapFilter::from_query(Some("msg_type=4502&conn_kind=fed_persist")).unwrap();
        assert!(f.matches(&msg(4502, "fed_persist", None)));
        assert!(!f.matches(&msg(4502, "oneshot", None)));
        assert_eq!(
            TapFilter::from_query(Some("msg_type=REQUEST_SIB_MSG")).unwrap(),
            TapFilter {
                msg_type: Some("REQUEST_SIB_MSG".into()),
                ..TapFilter::default()
            }
        );
        assert!(TapFilter::from_query(Some("user=root")).is_err());
        let f = TapFilter {
            cluster: Some("a b".into()),
            ..TapFilter::default()
        };
        assert_eq!(TapFilter::from_query(Some(&f.to_query())).unwrap(), f);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_says_how_many() {
        let hub = Arc::new(TapHub::default());
        assert!(!hub.is_active());
        let mut body = hub.subscribe(TapFilter::default(), 2);
        assert!(hub.is_active());
        for i in 0..5 {
            hub.publish(&msg(1008, "oneshot", None), || {
                Arc::new(move || format!("{{\"n\":{i}}}"))
            });
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            let f = body.frame().await.unwrap().unwrap();
            got.push(String::from_utf8(f.into_data().unwrap().to_vec()).unwrap());
        }
        assert_eq!(got, ["{\"dropped\":3}\n", "{\"n\":0}\n", "{\"n\":1}\n"]);
        drop(body);
        assert!(!hub.is_active());
    }

    #[test]
    fn no_line_is_built_without_a_matching_subscriber() {
        let hub = Arc::new(TapHub::default());
        let _b = hub.subscribe(
            TapFilter {
                conn_kind: Some("fed_persist".into()),
                ..TapFilter::default()
            },
            4,
        );
        hub.publish(&msg(1008, "oneshot", None), || panic!("made for nobody"));
    }
}
