//! Capture reader: pcap/pcapng file → TCP connections with reassembled,
//! in-order byte streams, segmented as captured.
//!
//! * `file` walks pcap/pcapng records (pcap-parser),
//! * `link` slices link/IP/TCP headers (etherparse),
//! * `reassembly` puts one direction's segments in order,
//! * `connection` groups packets into connections.
//!
//! ```no_run
//! let cap = tcpflow::read_capture("captures/slurm-22.05/fed_info.pcap".as_ref())?;
//! for c in &cap.connections {
//!     println!("#{} {} -> {}: {} segments", c.id, c.client, c.server, c.segments.len());
//! }
//! # Ok::<(), tcpflow::CaptureError>(())
//! ```

mod connection;
mod file;
mod link;
mod reassembly;

use std::fmt;
use std::path::{Path, PathBuf};

pub use connection::{Gap, Segment, SideStats, TcpConnection};

/// Container format, detected from the magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
}

/// Packet counts of one capture file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packet records read (pcap records, pcapng EPB/SPB).
    pub packets: u64,
    /// Packets that were TCP and went to a connection.
    pub tcp_packets: u64,
    /// IP or other link-layer traffic that is not TCP (UDP, ICMP, ARP, ...).
    pub skipped_non_tcp: u64,
    /// IPv4/IPv6 fragments: skipped, we do not defragment.
    pub skipped_fragments: u64,
    /// Packets on a link type we do not decode.
    pub unsupported_linktype: u64,
    /// Packets whose headers did not parse (or pcapng packets naming an
    /// interface that was never described).
    pub malformed: u64,
    /// Packets captured shorter than on the wire (snap length).
    pub snaplen_truncated: u64,
    /// Records cut off by the end of the file (0 or 1: a truncated final packet).
    pub truncated_records: u64,
    /// pcapng blocks that carry no packet and no interface (NRB, ISB, custom, ...).
    pub other_blocks: u64,
}

/// A capture file read into connections.
#[derive(Debug, Clone)]
pub struct Capture {
    pub format: CaptureFormat,
    /// In order of each connection's first packet (`id` = index + 1).
    pub connections: Vec<TcpConnection>,
    pub stats: CaptureStats,
}

/// Why a capture could not be read.
#[derive(Debug)]
pub enum CaptureError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Fewer bytes than a file header.
    TooShort { len: usize },
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    BadMagic { magic: [u8; 4] },
    /// A block or header that does not parse; `record` is 1-based (0 = file header).
    Malformed {
        offset: usize,
        record: u64,
        reason: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CaptureError::TooShort { len } => {
                write!(f, "not a capture file: only {len} bytes")
            }
            CaptureError::BadMagic { magic } => write!(
                f,
                "not a pcap/pcapng file: magic {:02x}{:02x}{:02x}{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
            CaptureError::Malformed {
                offset,
                record,
                reason,
            } => write!(
                f,
                "malformed capture at byte {offset} (record {record}): {reason}"
            ),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Read a pcap or pcapng file into TCP connections.
pub fn read_capture(path: &Path) -> Result<Capture, CaptureError> {
    let bytes = std::fs::read(path).map_err(|source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_capture(&bytes)
}

/// Parse the bytes of a pcap or pcapng file into TCP connections.
pub fn parse_capture(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let mut stats = CaptureStats::default();
    let mut table = connection::ConnectionTable::default();
    let format = file::for_each_packet(bytes, &mut stats, |pkt, stats| {
        stats.packets += 1;
        if (pkt.data.len() as u64) < u64::from(pkt.orig_len) {
            stats.snaplen_truncated += 1;
        }
        match link::decode(pkt.linktype, pkt.data) {
            link::Decoded::Tcp(tcp) => {
                stats.tcp_packets += 1;
                table.on_packet(pkt.ts, &tcp);
            }
            link::Decoded::Fragment => stats.skipped_fragments += 1,
            link::Decoded::NotTcp => stats.skipped_non_tcp += 1,
            link::Decoded::UnsupportedLinktype => stats.unsupported_linktype += 1,
            link::Decoded::Malformed => stats.malformed += 1,
        }
    })?;
    Ok(Capture {
        format,
        connections: table.into_connections(),
        stats,
    })
}
