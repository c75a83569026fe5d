//! Fuzz target bodies, shared by two drivers:
//!
//! - `fuzz/` (cargo-fuzz, libFuzzer, nightly): `make fuzz`;
//! - [`runner`] (stable, a mutation loop over the seeds): `tests/bounded_fuzz.rs`,
//!   part of `make test`.
//!
//! Each target takes arbitrary bytes, must never panic, and asserts the invariants
//! its code promises (a frame's bytes are the bytes it came from, a decoded body
//! re-encodes exactly, ...). [`seeds`] builds the starting corpus from every
//! captured frame in the repository.

pub mod capture;
pub mod config;
pub mod conn;
pub mod frame;
pub mod legacy;
pub mod mutate;
pub mod runner;
pub mod seeds;

/// One fuzz target: a name (the cargo-fuzz binary's name) and its body.
#[derive(Copy, Clone)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Which seed set starts its corpus.
    pub seeds: seeds::SeedKind,
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "conn_beginning",
        run: conn::beginning,
        seeds: seeds::SeedKind::Conversation,
    },
    Target {
        name: "conn_mid_stream",
        run: conn::mid_stream,
        seeds: seeds::SeedKind::Conversation,
    },
    Target {
        name: "conn_accepted",
        run: conn::accepted,
        seeds: seeds::SeedKind::Conversation,
    },
    Target {
        name: "conn_persist",
        run: conn::persist,
        seeds: seeds::SeedKind::PersistConversation,
    },
    Target {
        name: "frame_decode",
        run: frame::decode,
        seeds: seeds::SeedKind::Frame,
    },
    Target {
        name: "typed_body",
        run: frame::typed_body,
        seeds: seeds::SeedKind::Body,
    },
    Target {
        name: "capture_reader",
        run: capture::read,
        seeds: seeds::SeedKind::CaptureFile,
    },
    Target {
        name: "legacy_translator",
        run: legacy::translate,
        seeds: seeds::SeedKind::Legacy,
    },
    Target {
        name: "config_parser",
        run: config::parse,
        seeds: seeds::SeedKind::Config,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
