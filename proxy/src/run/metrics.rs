//! Every metric of `fedproxy run`, declared in one place (documented in
//! README.md, "Metrics"). Label values come from closed sets — message-type names from
//! the codec's table (`UNKNOWN` otherwise), decode-error reasons from
//! `ErrorKind::ALL_REASONS`, listener names from the config — except federation
//! peer names, which are capped ([`PeerLabels`]).

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use slurm_codec::conn::ConnKind;
use slurm_codec::msg_type::{MsgType, Namespace};
use slurm_codec::{Direction, ErrorKind};

/// Content type of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label value for message types outside the codec's table.
pub const UNKNOWN: &str = "UNKNOWN";

/// Label value that replaces peer names (and ports) beyond the cap.
pub const OTHER: &str = "other";

/// Distinct federation cluster names that get their own label value.
pub const MAX_PEER_NAMES: usize = 64;
/// Distinct (cluster, port) pairs that get their own port label value.
pub const MAX_PEER_PORTS: usize = 256;
/// Longest cluster name kept as a label value (longer ones are cut).
pub const MAX_PEER_NAME_LEN: usize = 64;

/// The msg_type label value: the table's name in `ns`, else `UNKNOWN`.
pub fn msg_type_label(t: MsgType, ns: Namespace) -> &'static str {
    t.name_in(ns).unwrap_or(UNKNOWN)
}

/// Cluster names seen, and (cluster, port) pairs seen.
type Seen = (HashSet<String>, HashSet<(String, u16)>);

/// Caps the only open-ended labels: federation peer cluster names and ports.
#[derive(Default)]
pub struct PeerLabels {
    seen: Mutex<Seen>,
}

impl PeerLabels {
    /// The (cluster, port) label values for a peer: the first [`MAX_PEER_NAMES`]
    /// names keep theirs, later ones become `other`; ports likewise per pair.
    pub fn labels(&self, cluster: &str, port: u16) -> (String, String) {
        let mut cluster: String = cluster.chars().take(MAX_PEER_NAME_LEN).collect();
        if cluster.is_empty() {
            cluster = "(null)".into();
        }
        let mut seen = self.seen.lock().unwrap();
        let (names, pairs) = &mut *seen;
        if !names.contains(&cluster) {
            if names.len() >= MAX_PEER_NAMES {
                return (OTHER.into(), OTHER.into());
            }
            names.insert(cluster.clone());
        }
        let key = (cluster.clone(), port);
        if !pairs.contains(&key) {
            if pairs.len() >= MAX_PEER_PORTS {
                return (cluster, OTHER.into());
            }
            pairs.insert(key);
        }
        (cluster, port.to_string())
    }
}

/// The metric families. One instance per running proxy (tests run several).
pub struct Metrics {
    /// Tells instances apart in the per-thread handle caches ([`hot`]).
    id: u64,
    registry: Registry,
    pub messages: IntCounterVec,
    pub bytes: IntCounterVec,
    pub connections_active: IntGaugeVec,
    pub connections_accepted: IntCounterVec,
    pub connections_closed: IntCounterVec,
    pub upstream_connect_failures: IntCounterVec,
    pub orig_dst_failures: IntCounterVec,
    pub decode_errors: IntCounterVec,
    pub oversized_frames: IntCounterVec,
    pub rpc_duration: HistogramVec,
    pub sib_messages: IntCounterVec,
    pub federated_submissions: IntCounterVec,
    pub persist_refused: IntCounterVec,
    pub slurm_refusals: IntCounterVec,
    pub federation_peer_connected: IntGaugeVec,
    pub loop_guard_refusals: IntCounterVec,
    /// 1 while a listener is closed because its upstream refuses connects.
    pub listener_following_upstream: IntGaugeVec,
    /// SIGHUP reloads by `result` (`ok`, `invalid`).
    pub config_reloads: IntCounterVec,
    pub admin_refused: IntCounter,
    pub ready: IntGauge,
    pub peers: PeerLabels,
    /// Legacy FLURM families (`fedproxy_legacy_*`): always registered, so HTTP
    /// probes are counted even before any legacy peer is configured.
    pub legacy: flurm::LegacyMetrics,
    /// Counts HTTP requests on Slurm ports and logs each client address once.
    pub probes: std::sync::Arc<flurm::metrics::ProbeLog>,
}

/// The `reason` values of `fedproxy_slurm_refusals_total`.
pub const SLURM_REFUSAL_REASONS: [&str; 4] = [
    "protocol_version",
    "authentication",
    "unparsable_request",
    "http_answer",
];

/// RPC latency buckets (seconds): 100 µs … 30 s.
const RPC_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

impl Metrics {
    /// The registry (for metric families defined outside this module, e.g. legacy interop).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn new() -> Metrics {
        let registry = Registry::new();
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let m = Metrics {
            messages: counter(
                "fedproxy_messages_total",
                "Slurm messages decoded, by direction, message type and connection kind.",
                &["direction", "msg_type", "conn_kind"],
            ),
            bytes: counter("fedproxy_bytes_total", "Bytes relayed, by listener and direction.", &["listener", "direction"]),
            connections_active: gauge(
                "fedproxy_connections_active",
                "Relayed connections open now, by listener and connection kind.",
                &["listener", "conn_kind"],
            ),
            connections_accepted: counter(
                "fedproxy_connections_accepted_total",
                "Connections accepted, by listener (before the loop guard and the upstream connect).",
                &["listener"],
            ),
            connections_closed: counter(
                "fedproxy_connections_closed_total",
                "Relayed connections that ended, by listener and the kind they turned out to be.",
                &["listener", "conn_kind"],
            ),
            upstream_connect_failures: counter(
                "fedproxy_upstream_connect_failures_total",
                "Failed upstream connects (the client connection is closed), by listener and reason.",
                &["listener", "reason"],
            ),
            orig_dst_failures: counter(
                "fedproxy_orig_dst_failures_total",
                "Connections closed because their original destination could not be read.",
                &["listener"],
            ),
            decode_errors: counter(
                "fedproxy_decode_errors_total",
                "Decode errors (that direction of the connection is relayed opaquely from then on).",
                &["direction", "reason"],
            ),
            oversized_frames: counter(
                "fedproxy_oversized_frames_total",
                "Frames over relay.max_observed_frame: relayed, only their start decoded.",
                &["direction", "msg_type"],
            ),
            rpc_duration: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "fedproxy_rpc_duration_seconds",
                        "Time from a normal-framed request to the first reply frame, by request type.",
                    )
                    .buckets(RPC_BUCKETS.to_vec()),
                    &["msg_type"],
                )
                .expect("valid metric"),
            ),
            sib_messages: counter(
                "fedproxy_sib_messages_total",
                "sib_msg_t messages (REQUEST_SIB_MSG/JOB_LOCK/JOB_UNLOCK, also inside CTLD_MULT_MSG), by sib_msg_type.",
                &["direction", "sib_msg_type"],
            ),
            federated_submissions: counter(
                "fedproxy_federated_submissions_total",
                "Jobs handed to a sibling (FED_JOB_SUBMIT_BATCH/_INT sib messages), by listener and the origin cluster's fed id (1-63, from the federated job id).",
                &["listener", "origin_fed_id"],
            ),
            persist_refused: counter(
                "fedproxy_persist_refused_total",
                "REQUEST_PERSIST_INIT answered with a non-zero PERSIST_RC, by persist type.",
                &["listener", "persist_type"],
            ),
            slurm_refusals: counter(
                "fedproxy_slurm_refusals_total",
                "Requests slurmctld refused, as its replies show: reason protocol_version (RESPONSE_SLURM_RC 1005, or 1007 answered at a version older than the request's: a client newer than the controller), authentication (RESPONSE_SLURM_RC 1007 otherwise), unparsable_request (a 24.11+ reply whose header version is NO_VAL16), http_answer (slurmctld answered a Slurm frame with HTTP: 26.05 does so for header versions it no longer accepts).",
                &["listener", "reason"],
            ),
            federation_peer_connected: gauge(
                "fedproxy_federation_peer_connected",
                "Persistent connections established by PERSIST_INIT and still open (1 while connected, 0 after), by opener cluster, port, persist type and negotiated version.",
                &["listener", "cluster", "port", "persist_type", "version"],
            ),
            loop_guard_refusals: counter(
                "fedproxy_loop_guard_refusals_total",
                "Connections refused because relaying them would loop back into the proxy.",
                &["listener", "reason"],
            ),
            listener_following_upstream: gauge(
                "fedproxy_listener_following_upstream",
                "1 while a listener is closed because its upstream refuses connects (relay.follow_upstream).",
                &["listener"],
            ),
            config_reloads: counter(
                "fedproxy_config_reloads_total",
                "SIGHUP reloads of the configuration file: ok = applied, invalid = refused (the running configuration stays).",
                &["result"],
            ),
            admin_refused: reg(
                &registry,
                IntCounter::new(
                    "fedproxy_admin_refused_total",
                    "Admin connections from non-loopback addresses closed (admin.allow_remote = false).",
                )
                .expect("valid metric"),
            ),
            ready: reg(
                &registry,
                IntGauge::new("fedproxy_ready", "1 when all listeners are bound and the proxy is not draining.")
                    .expect("valid metric"),
            ),
            peers: PeerLabels::default(),
            legacy: flurm::LegacyMetrics::new(),
            probes: Default::default(),
            id: hot::next_id(),
            registry,
        };
        // Pre-register the closed sets that matter for alerting, so they read 0.
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            for reason in ErrorKind::ALL_REASONS {
                m.decode_errors.with_label_values(&[dir.as_str(), reason]);
            }
            m.decode_errors
                .with_label_values(&[dir.as_str(), super::observe::MEMORY_BUDGET]);
            m.decode_errors
                .with_label_values(&[dir.as_str(), super::observe::IDLE_PARTIAL]);
        }
        for result in ["ok", "invalid"] {
            m.config_reloads.with_label_values(&[result]);
        }
        m.legacy
            .register(&m.registry)
            .expect("legacy metric names are unique");
        m
    }

    /// `fedproxy_messages_total{direction, msg_type, conn_kind}` + 1.
    pub fn count_message(&self, dir: Direction, msg_type: &'static str, kind: ConnKind) {
        hot::MESSAGES.with(|c| {
            c.borrow_mut()
                .entry((
                    self.id,
                    dir.index() as u8,
                    hot::key(msg_type),
                    kind.as_str().as_ptr() as usize,
                ))
                .or_insert_with(|| {
                    self.messages
                        .with_label_values(&[dir.as_str(), msg_type, kind.as_str()])
                })
                .inc()
        })
    }

    /// `fedproxy_rpc_duration_seconds{msg_type}` observes `secs`.
    pub fn observe_rpc(&self, msg_type: &'static str, secs: f64) {
        hot::RPC.with(|c| {
            c.borrow_mut()
                .entry((self.id, hot::key(msg_type)))
                .or_insert_with(|| self.rpc_duration.with_label_values(&[msg_type]))
                .observe(secs)
        })
    }

    /// `fedproxy_sib_messages_total{direction, sib_msg_type}` + 1.
    pub fn count_sib(&self, dir: Direction, sib_msg_type: &'static str) {
        hot::SIB.with(|c| {
            c.borrow_mut()
                .entry((self.id, dir.index() as u8, hot::key(sib_msg_type)))
                .or_insert_with(|| {
                    self.sib_messages
                        .with_label_values(&[dir.as_str(), sib_msg_type])
                })
                .inc()
        })
    }

    /// Pre-registers the per-listener series (so they read 0 from the start).
    pub fn add_listener(&self, name: &str) {
        self.connections_accepted.with_label_values(&[name]);
        for d in [Direction::ClientToServer, Direction::ServerToClient] {
            self.bytes.with_label_values(&[name, d.as_str()]);
        }
        for k in ConnKind::ALL {
            self.connections_active
                .with_label_values(&[name, k.as_str()]);
        }
        self.upstream_connect_failures
            .with_label_values(&[name, "refused"]);
        self.loop_guard_refusals
            .with_label_values(&[name, "self_target"]);
        self.loop_guard_refusals
            .with_label_values(&[name, "own_upstream"]);
        self.listener_following_upstream.with_label_values(&[name]);
        for reason in SLURM_REFUSAL_REASONS {
            self.slurm_refusals.with_label_values(&[name, reason]);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("text exposition is UTF-8")
    }
}

/// Per-thread caches of the series counted for every frame: the metric
/// families would hash the label strings and take a lock each time (3 % of the
/// proxy's CPU on a pipelined federation connection). Each relay thread keeps
/// the handles it used, keyed by the `Metrics` instance and the label values
/// (`&'static str`s from closed sets, keyed by address), so the caches stay as
/// small as those sets; an idle connection holds nothing.
mod hot {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use prometheus::{Histogram, IntCounter};

    /// A `&'static str` label value, by address and length.
    pub type Key = (usize, usize);

    pub fn key(s: &'static str) -> Key {
        (s.as_ptr() as usize, s.len())
    }

    pub fn next_id() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    thread_local! {
        pub static MESSAGES: RefCell<HashMap<(u64, u8, Key, usize), IntCounter>> = RefCell::new(HashMap::new());
        pub static RPC: RefCell<HashMap<(u64, Key), Histogram>> = RefCell::new(HashMap::new());
        pub static SIB: RefCell<HashMap<(u64, u8, Key), IntCounter>> = RefCell::new(HashMap::new());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_are_capped() {
        let p = PeerLabels::default();
        for i in 0..MAX_PEER_NAMES {
            assert_eq!(
                p.labels(&format!("c{i}"), 6817),
                (format!("c{i}"), "6817".into())
            );
        }
        assert_eq!(p.labels("late", 6817), (OTHER.into(), OTHER.into()));
        assert_eq!(p.labels("c3", 6817), ("c3".into(), "6817".into()));
        let long = "x".repeat(200);
        let p = PeerLabels::default();
        assert_eq!(p.labels(&long, 1).0.len(), MAX_PEER_NAME_LEN);
    }

    #[test]
    fn renders_preregistered_series() {
        let m = Metrics::new();
        m.add_listener("inbound");
        let text = m.render();
        assert!(
            text.contains("fedproxy_decode_errors_total{direction=\"c2s\",reason=\"http\"} 0"),
            "{text}"
        );
        assert!(text.contains("fedproxy_connections_accepted_total{listener=\"inbound\"} 0"));
        assert_eq!(
            msg_type_label(MsgType(6500), Namespace::Slurm),
            "REQUEST_PERSIST_INIT"
        );
        assert_eq!(msg_type_label(MsgType(1999), Namespace::Slurm), UNKNOWN);
    }
}
