//! fedproxy-bench: what fedproxy costs against a direct connection and against
//! haproxy in TCP mode (issue 6).
//!
//! - [`cli`]: the command line.
//! - [`frames`]: the captured frames served and sent.
//! - [`peer`]: the synthetic Slurm peer (std threads).
//! - [`client`]: the workloads' clients.
//! - [`workload`]: the workloads and the figures of one trial.
//! - [`paths`]: starting/stopping haproxy and `fedproxy run`, RSS and CPU.
//! - [`runner`]: one run: throughput, idle-connection and lab measurements.
//! - [`lab`]: the real-lab sbatch storm.
//! - [`machine`]: the machine and tool versions, for the report.
//! - [`stats`]: medians, spreads, rounding.
//! - [`report`]: the JSON report (bench/results.json).
//! - [`markdown`]: the generated Performance section of README.md.

pub mod cli;
pub mod client;
pub mod frames;
pub mod lab;
pub mod machine;
pub mod markdown;
pub mod paths;
pub mod peer;
pub mod report;
pub mod runner;
pub mod stats;
pub mod workload;
