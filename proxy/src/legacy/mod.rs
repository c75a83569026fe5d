//! Legacy FLURM interop (issue 5): per-peer dialect, the per-connection
//! [`Translator`] for the fed-info pair, MUNGE minting/verification, metrics, and a
//! frame-at-a-time [`relay`] for connections to or from legacy peers.
//!
//! Translation happens only on connections whose remote end matches a configured
//! `[[peer]]` with `dialect = "legacy-flurm"`, and only for the fed-info pair
//! (Slurm 2049/2050 ⇄ legacy 2024/2025). Everything else passes through byte for
//! byte. See the README, "Legacy FLURM peers".

pub mod config;
pub mod metrics;
pub mod relay;
pub mod translator;

pub use config::{Dialect, LegacyConfig, PeerConfig, PeerTable};
pub use metrics::LegacyMetrics;
pub use translator::{Action, Credentials, Role, Translator};

use std::sync::Arc;

/// What the daemon holds when legacy peers are configured: the translators'
/// shared state and the HTTP probe log.
pub struct LegacyRuntime {
    pub shared: Arc<translator::Shared>,
    pub probes: Arc<metrics::ProbeLog>,
}

impl LegacyRuntime {
    /// `None` when no `[[peer]]` is `legacy-flurm` (nothing to translate, and
    /// libmunge is not even loaded). Errors name the config key.
    pub fn from_config(
        legacy: Option<&LegacyConfig>,
        peers: &[PeerConfig],
        metrics: LegacyMetrics,
        probes: Arc<metrics::ProbeLog>,
    ) -> Result<Option<LegacyRuntime>, String> {
        if !peers.iter().any(|p| p.dialect == Dialect::LegacyFlurm) {
            return Ok(None);
        }
        let config = legacy.cloned().unwrap_or_default();
        let table = PeerTable::new(peers, &config).map_err(|e| e.to_string())?;
        let munge = crate::munge::Munge::load(config.munge_socket.as_deref())
            .map_err(|e| format!("legacy.munge_socket: {e} (legacy FLURM peers need libmunge: scripts/install-build-deps)"))?;
        let shared = Arc::new(translator::Shared {
            peers: table,
            config,
            credentials: Arc::new(munge),
            metrics,
        });
        Ok(Some(LegacyRuntime { shared, probes }))
    }

    /// The translator for a connection `client → upstream`, if either end is a
    /// legacy peer (then the connection must go through [`relay::relay`]).
    pub fn translator(
        &self,
        client: std::net::SocketAddr,
        upstream: std::net::SocketAddr,
    ) -> Option<Translator> {
        relay::translator_for(&self.shared, client, upstream)
    }
}
