//! slurmdb records (spec §8.4), one record family per module. They travel inside
//! RESPONSE_FED_INFO ([`super::fed_info`]), ACCOUNTING_UPDATE_MSG
//! ([`super::accounting`]) and RESPONSE_SLURM_REROUTE_MSG ([`super::rc`]).
//!
//! Version-gated fields are `Option`s that are `Some` exactly when the layout has
//! them; the gate sits next to the field in both `decode` and `encode`.

pub mod assoc;
pub mod cluster;
pub mod federation;
pub mod tres;
pub mod usage;

pub use assoc::AssocRec;
pub use cluster::{encode_cluster_slot, ClusterFlags, ClusterRec, FedState};
pub use federation::FederationRec;
pub use tres::TresRec;
pub use usage::{AccountingRec, ClusterAccountingRec};
