//! Offline replay of captured Slurm traffic (the daemon-free half of `fedproxy replay`).
//!
//! [`tcpflow`] turns a capture file into TCP byte streams; this crate runs each
//! stream through the codec's [`Connection`](slurm_codec::conn::Connection),
//! re-encodes every frame and compares it with the captured bytes, then renders
//! the result:
//!
//! * `decode`: capture connection → [`ReplayedConnection`] (frames, errors, kind),
//! * `summary`: per-file text summary and [`Totals`],
//! * `json`: one JSON object per message or error,
//! * `conversation`: a readable federation conversation.

pub mod conversation;
pub mod decode;
pub mod json;
pub mod summary;

pub use decode::{replay_capture, replay_connections, ReplayedConnection, ReplayedFrame};
pub use summary::Totals;
