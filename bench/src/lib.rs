//! fedproxy-bench: what fedproxy costs against a direct connection and against
//! haproxy in TCP mode (issue 6).
//!
//! - [`frames`]: the captured frames served and sent.
//! - [`peer`]: the synthetic Slurm peer (std threads).
//! - [`client`]: the workloads' clients.
//! - [`paths`]: starting/stopping haproxy and `fedproxy run`, RSS and CPU.
//! - [`stats`]: medians and the report (JSON + Markdown).

pub mod client;
pub mod frames;
pub mod paths;
pub mod peer;
pub mod stats;
