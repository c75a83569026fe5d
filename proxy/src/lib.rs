//! fedproxy: a transparent interop proxy beside slurmctld.
//!
//! - [`replay`]: `fedproxy replay`, offline decode/re-encode of captures.
//! - [`run`]: `fedproxy run`, the proxy daemon.
//! - [`rules`]: `fedproxy rules`, the interception rules generated from the config.

pub mod replay;
pub mod rules;
pub mod run;
