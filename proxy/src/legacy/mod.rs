//! Legacy FLURM interop (issue 5): per-peer dialect, the per-connection
//! [`Translator`] for the fed-info pair, MUNGE minting/verification, metrics, and a
//! frame-at-a-time [`relay`] for connections to or from legacy peers.
//!
//! Translation happens only on connections whose remote end matches a configured
//! `[[peer]]` with `dialect = "legacy-flurm"`, and only for the fed-info pair
//! (Slurm 2049/2050 ⇄ legacy 2024/2025). Everything else passes through byte for
//! byte. See `docs/legacy-flurm.md`.

pub mod config;
pub mod metrics;
pub mod relay;
pub mod translator;

pub use config::{Dialect, LegacyConfig, PeerConfig, PeerTable};
pub use metrics::LegacyMetrics;
pub use translator::{Action, Credentials, Role, Translator};
