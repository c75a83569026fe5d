//! Legacy-interop metrics. Registered into the daemon's registry with
//! [`LegacyMetrics::register`]; every label value comes from a closed set or from
//! the configured peer names.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone, Debug)]
pub struct LegacyMetrics {
    /// `fedproxy_legacy_translations_total{direction, from, to}`: direction
    /// `to_legacy` / `from_legacy`; from/to like `slurm_2049`, `legacy_2024`.
    pub translations: IntCounterVec,
    /// `fedproxy_legacy_credentials_minted_total{msg_type}`.
    pub credentials_minted: IntCounterVec,
    /// `fedproxy_legacy_refusals_total{peer, reason}`.
    pub refusals: IntCounterVec,
    /// `fedproxy_legacy_http_probes_total{peer, path}`.
    pub http_probes: IntCounterVec,
    /// `fedproxy_legacy_passthrough_total{peer, reason}`: frames on legacy
    /// connections deliberately left untouched (e.g. Slurm's genuine 2024,
    /// unsigned legacy frames of other types that would need minting).
    pub passthrough: IntCounterVec,
}

fn vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

impl Default for LegacyMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LegacyMetrics {
    pub fn new() -> Self {
        LegacyMetrics {
            translations: vec(
                "fedproxy_legacy_translations_total",
                "Fed-info frames translated between legacy FLURM and Slurm, by direction and from/to type",
                &["direction", "from", "to"],
            ),
            credentials_minted: vec(
                "fedproxy_legacy_credentials_minted_total",
                "MUNGE credentials minted for translated frames, by msg_type",
                &["msg_type"],
            ),
            refusals: vec(
                "fedproxy_legacy_refusals_total",
                "Translations refused (caller answered with SLURM_PROTOCOL_AUTHENTICATION_ERROR), by peer and reason",
                &["peer", "reason"],
            ),
            http_probes: vec(
                "fedproxy_legacy_http_probes_total",
                "HTTP requests (legacy FLURM federation probes) seen on the Slurm port, by peer and path",
                &["peer", "path"],
            ),
            passthrough: vec(
                "fedproxy_legacy_passthrough_total",
                "Frames on legacy-peer connections passed through untranslated, by peer and reason",
                &["peer", "reason"],
            ),
        }
    }

    /// Registers every family in `registry` and pre-creates the translation series.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        for c in [
            &self.translations,
            &self.credentials_minted,
            &self.refusals,
            &self.http_probes,
            &self.passthrough,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        for (d, f, t) in TRANSLATIONS {
            self.translations.with_label_values(&[d, f, t]);
        }
        Ok(())
    }
}

/// The four translations: (direction, from, to).
pub const TRANSLATIONS: [(&str, &str, &str); 4] = [
    ("to_legacy", "slurm_2049", "legacy_2024"),
    ("from_legacy", "legacy_2025", "slurm_2050"),
    ("from_legacy", "legacy_2024", "slurm_2049"),
    ("to_legacy", "slurm_2050", "legacy_2025"),
];

/// The path label of an HTTP probe: the two legacy federation probes by name,
/// anything else as `other` (bounded cardinality).
pub fn probe_path_label(request_line: &str) -> &'static str {
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    match path {
        "/api/v1/health" => "/api/v1/health",
        "/api/v1/cluster/stats" => "/api/v1/cluster/stats",
        p if p.starts_with("/api/v1/jobs") => "/api/v1/jobs",
        p if p.starts_with("/api/v1/federation") => "/api/v1/federation",
        _ => "other",
    }
}

/// Counts HTTP probes and logs each peer address once (bounded memory).
#[derive(Debug, Default)]
pub struct ProbeLog {
    seen: std::sync::Mutex<std::collections::HashSet<std::net::IpAddr>>,
}

impl ProbeLog {
    const MAX_REMEMBERED: usize = 4096;

    /// Counts one HTTP request seen on a Slurm port; logs the first one per
    /// address. `peer` = the configured peer name, or "unconfigured".
    pub fn observe(
        &self,
        metrics: &LegacyMetrics,
        peer: &str,
        addr: std::net::IpAddr,
        request_line: &str,
    ) {
        let path = probe_path_label(request_line);
        metrics.http_probes.with_label_values(&[peer, path]).inc();
        let first = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= Self::MAX_REMEMBERED {
                seen.clear();
            }
            seen.insert(addr)
        };
        if first {
            tracing::warn!(peer, %addr, path, "{}", probe_message(peer));
        }
    }
}

/// The `peer` of an HTTP request from an address that is no configured peer.
pub const UNCONFIGURED: &str = "unconfigured";

/// The log line for the first HTTP request from an address: only a declared
/// `legacy-flurm` peer is said to be a legacy FLURM cluster.
pub fn probe_message(peer: &str) -> &'static str {
    if peer == UNCONFIGURED {
        "HTTP on the Slurm port from an address that is no legacy-flurm peer (passed through unchanged)"
    } else {
        "HTTP on the Slurm port: a legacy FLURM cluster is trying to federate over HTTP (passed through unchanged)"
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn only_a_declared_legacy_peer_is_called_legacy_flurm() {
        assert!(!probe_message(UNCONFIGURED).contains("legacy FLURM cluster"));
        assert!(probe_message("flurm-a").contains("legacy FLURM cluster"));
    }
}
