//! Legacy FLURM interop (issue 5): per-peer dialect, the per-connection
//! [`Translator`] for the fed-info pair, MUNGE minting/verification, metrics, and
//! the [`LegacyStage`] through which the daemon's one relay rewrites the frames
//! of connections to or from legacy peers.
//!
//! Translation happens only on connections whose remote end matches a configured
//! `[[peer]]` with `dialect = "legacy-flurm"`, and only for the fed-info pair
//! (Slurm 2049/2050 ⇄ legacy 2024/2025). Everything else passes through byte for
//! byte. See the README, "Legacy FLURM peers". The wire formats of the legacy
//! messages live in the codec (`slurm_codec::legacy`); this crate decides when and
//! how to translate.

pub mod config;
pub mod metrics;
pub mod munge;
pub mod stage;
pub mod translator;

pub use config::{Dialect, LegacyConfig, PeerConfig, PeerTable};
pub use metrics::LegacyMetrics;
pub use stage::{LegacyStage, Rewrite};
pub use translator::{Action, Credentials, Role, TranslationContext, Translator};

use std::net::SocketAddr;
use std::sync::Arc;

/// Why legacy translation cannot start; each names the config key.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error(transparent)]
    Peers(#[from] config::ConfigError),
    #[error(
        "legacy.munge_socket: {0} (legacy FLURM peers need libmunge: scripts/install-build-deps)"
    )]
    Munge(#[from] munge::MungeError),
}

/// What the daemon holds when legacy peers are configured: the translators'
/// shared context and the HTTP probe log.
pub struct LegacyRuntime {
    pub context: Arc<TranslationContext>,
    pub probes: Arc<metrics::ProbeLog>,
}

impl LegacyRuntime {
    /// `None` when no `[[peer]]` is `legacy-flurm` (nothing to translate, and
    /// libmunge is not even loaded).
    pub fn from_config(
        legacy: Option<&LegacyConfig>,
        peers: &[PeerConfig],
        metrics: LegacyMetrics,
        probes: Arc<metrics::ProbeLog>,
    ) -> Result<Option<LegacyRuntime>, LegacyError> {
        if !peers.iter().any(|p| p.dialect == Dialect::LegacyFlurm) {
            return Ok(None);
        }
        let config = legacy.cloned().unwrap_or_default();
        let table = PeerTable::new(peers, &config)?;
        let munge = munge::Munge::load(config.munge_socket.as_deref())?;
        let context = Arc::new(TranslationContext {
            peers: table,
            config,
            credentials: Arc::new(munge),
            metrics,
        });
        Ok(Some(LegacyRuntime { context, probes }))
    }

    /// The rewriting stage for a connection `client → upstream`, if either end is
    /// a legacy peer.
    pub fn stage(&self, client: SocketAddr, upstream: SocketAddr) -> Option<LegacyStage> {
        stage::translator_for(&self.context, client, upstream)
            .map(|t| LegacyStage::new(t, client, Some(self.probes.clone())))
    }
}
