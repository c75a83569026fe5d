//! fedproxy: a transparent interop proxy beside slurmctld.
//!
//! - [`replay`]: `fedproxy replay`, offline decode/re-encode of captures.
//! - [`run`]: `fedproxy run`, the proxy daemon, and `fedproxy tap` (its live view).
//! - [`rules`]: `fedproxy rules`, the interception rules generated from the config.
//! - [`dissector`]: `fedproxy dissector`, the generated Wireshark dissector.

pub mod dissector;
pub mod replay;
pub mod rules;
pub mod run;
