//! fedproxy: a transparent interop proxy beside slurmctld.
//!
//! - [`capture`]: pcap/pcapng reading and TCP reassembly (for replay).
//! - [`replay`]: `fedproxy replay`, offline decode/re-encode of captures.
//! - [`run`]: `fedproxy run`, the proxy daemon.

pub mod capture;
pub mod dissector;
pub mod legacy;
pub mod munge;
pub mod replay;
pub mod run;
