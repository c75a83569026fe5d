//! fedproxy: a transparent interop proxy beside slurmctld.
//!
//! - [`replay`]: `fedproxy replay`, offline decode/re-encode of captures.
//! - [`run`]: `fedproxy run`, the proxy daemon, and `fedproxy tap` (its live view).
//! - [`rules`]: `fedproxy rules`, the interception rules generated from the config.
//! - [`dissector`]: `fedproxy dissector`, the generated Wireshark dissector.

//! - [`observe_budget`]: the process-wide budget for decoders' partial frames.
//! - [`log_limit`]: per-reason log rate limiting ("N more like this").

pub mod dissector;
pub mod log_limit;
pub mod observe_budget;
pub mod replay;
pub mod rules;
pub mod run;
