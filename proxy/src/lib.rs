//! fedproxy: a transparent interop proxy beside slurmctld.
//!
//! - [`replay`]: `fedproxy replay`, offline decode/re-encode of captures.
//! - [`run`]: `fedproxy run`, the proxy daemon.

pub mod replay;
pub mod run;
