//! Capture-file iteration: classic pcap and pcapng → `(ts, linktype, packet bytes)`.
//!
//! pcap-parser does the block/record parsing; this module only walks the file,
//! keeps the per-section interface table (pcapng) and turns timestamps into
//! seconds. We walk the records ourselves instead of using `LegacyPcapSlice`
//! because that one always parses records as little-endian.

use pcap_parser::nom;
use pcap_parser::pcapng::{Block, InterfaceDescriptionBlock};
use pcap_parser::{
    parse_block_be, parse_block_le, parse_pcap_frame, parse_pcap_frame_be,
    parse_pcap_frame_modified, parse_pcap_header, LegacyPcapBlock, OptionCode, PcapError,
};

use super::{CaptureError, CaptureFormat, CaptureStats};

/// One captured packet, borrowed from the file bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawPacket<'a> {
    /// Seconds since the epoch.
    pub ts: f64,
    /// LINKTYPE_* value of the interface that captured it.
    pub linktype: u32,
    /// Captured bytes (may be shorter than the packet on the wire).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

const PCAP_MAGICS: [[u8; 4]; 5] = [
    [0xd4, 0xc3, 0xb2, 0xa1], // LE µs
    [0xa1, 0xb2, 0xc3, 0xd4], // BE µs
    [0x4d, 0x3c, 0xb2, 0xa1], // LE ns
    [0xa1, 0xb2, 0x3c, 0x4d], // BE ns
    [0x34, 0xcd, 0xb2, 0xa1], // LE "modified" (Alexey Kuznetsov's patched libpcap)
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Detect the format from the first four bytes (never from the file name).
pub(crate) fn detect(bytes: &[u8]) -> Result<CaptureFormat, CaptureError> {
    let magic: [u8; 4] = match bytes.get(..4) {
        Some(m) => m.try_into().unwrap_or_default(),
        None => {
            return Err(CaptureError::TooShort { len: bytes.len() });
        }
    };
    if magic == PCAPNG_MAGIC {
        Ok(CaptureFormat::PcapNg)
    } else if PCAP_MAGICS.contains(&magic) {
        Ok(CaptureFormat::Pcap)
    } else {
        Err(CaptureError::BadMagic { magic })
    }
}

/// Walk every packet of the file, calling `on_packet` in file order.
pub(crate) fn for_each_packet<'a>(
    bytes: &'a [u8],
    stats: &mut CaptureStats,
    on_packet: impl FnMut(&RawPacket<'a>, &mut CaptureStats),
) -> Result<CaptureFormat, CaptureError> {
    let format = detect(bytes)?;
    match format {
        CaptureFormat::Pcap => walk_pcap(bytes, stats, on_packet)?,
        CaptureFormat::PcapNg => walk_pcapng(bytes, stats, on_packet)?,
    }
    Ok(format)
}

fn walk_pcap<'a>(
    bytes: &'a [u8],
    stats: &mut CaptureStats,
    mut on_packet: impl FnMut(&RawPacket<'a>, &mut CaptureStats),
) -> Result<(), CaptureError> {
    let (mut rem, header) = match parse_pcap_header(bytes) {
        Ok(ok) => ok,
        Err(nom::Err::Incomplete(_)) => return Err(CaptureError::TooShort { len: bytes.len() }),
        Err(e) => {
            return Err(CaptureError::Malformed {
                offset: 0,
                record: 0,
                reason: format!("pcap file header: {}", nom_reason(&e)),
            })
        }
    };
    // The upper bits of the header's link type may carry FCS information.
    let linktype = (header.network.0 as u32) & 0xffff;
    let frac_scale = if header.is_nanosecond_precision() {
        1e9
    } else {
        1e6
    };
    type FrameParser = fn(&[u8]) -> nom::IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;
    let parse: FrameParser = if header.is_modified_format() {
        parse_pcap_frame_modified
    } else if header.is_bigendian() {
        parse_pcap_frame_be
    } else {
        parse_pcap_frame
    };
    while !rem.is_empty() {
        match parse(rem) {
            Ok((next, frame)) => {
                rem = next;
                let pkt = RawPacket {
                    ts: frame.ts_sec as f64 + frame.ts_usec as f64 / frac_scale,
                    linktype,
                    data: frame.data,
                    orig_len: frame.origlen,
                };
                on_packet(&pkt, stats);
            }
            // Records only fail by running out of input: a cut-off last record.
            Err(_) => {
                stats.truncated_records += 1;
                break;
            }
        }
    }
    Ok(())
}

/// What we keep of an Interface Description Block.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second, `None` if the IDB's `if_tsresol` is unusable.
    units_per_sec: Option<u128>,
    ts_offset: i64,
}

impl Interface {
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Interface {
        // pcap-parser's tsresol→units helper rejects every power-of-two
        // resolution (it compares the flagged byte with 63), so decode here.
        let resol = idb.if_tsresol;
        let units_per_sec = if resol & 0x80 == 0 {
            10u128.checked_pow(u32::from(resol))
        } else {
            1u128.checked_shl(u32::from(resol & 0x7f))
        };
        // pcap-parser reads if_tsoffset as little-endian whatever the section's
        // byte order, so read the option ourselves.
        let ts_offset = idb
            .options
            .iter()
            .find(|o| o.code == OptionCode::IfTsoffset)
            .and_then(|o| o.value().get(..8))
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(|v| {
                if big_endian {
                    i64::from_be_bytes(v)
                } else {
                    i64::from_le_bytes(v)
                }
            })
            .unwrap_or(0);
        Interface {
            linktype: u32::from(idb.linktype.0 as u16),
            snaplen: idb.snaplen,
            units_per_sec,
            ts_offset,
        }
    }

    fn ts(&self, high: u32, low: u32) -> f64 {
        let raw = (u64::from(high) << 32) | u64::from(low);
        // Unusable resolution: fall back to the pcapng default (µs).
        let units = self.units_per_sec.filter(|u| *u > 0).unwrap_or(1_000_000);
        let secs = u128::from(raw) / units;
        let frac = u128::from(raw) % units;
        secs as f64 + frac as f64 / units as f64 + self.ts_offset as f64
    }
}

fn walk_pcapng<'a>(
    bytes: &'a [u8],
    stats: &mut CaptureStats,
    mut on_packet: impl FnMut(&RawPacket<'a>, &mut CaptureStats),
) -> Result<(), CaptureError> {
    let mut rem = bytes;
    let mut big_endian = false;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut record = 0u64;
    // Simple Packet Blocks carry no timestamp: reuse the last one seen.
    let mut last_ts = 0.0f64;
    while !rem.is_empty() {
        record += 1;
        let offset = bytes.len() - rem.len();
        let parsed = if big_endian {
            parse_block_be(rem)
        } else {
            parse_block_le(rem)
        };
        let block = match parsed {
            Ok((next, block)) => {
                rem = next;
                block
            }
            Err(nom::Err::Incomplete(_)) => {
                stats.truncated_records += 1;
                break;
            }
            Err(e) => {
                return Err(CaptureError::Malformed {
                    offset,
                    record,
                    reason: format!("pcapng block: {}", nom_reason(&e)),
                })
            }
        };
        match block {
            Block::SectionHeader(shb) => {
                // A new section has its own byte order and interface numbering.
                big_endian = shb.big_endian();
                interfaces.clear();
            }
            Block::InterfaceDescription(idb) => {
                interfaces.push(Interface::from_idb(&idb, big_endian));
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize) else {
                    stats.malformed += 1;
                    stats.packets += 1;
                    continue;
                };
                let ts = iface.ts(epb.ts_high, epb.ts_low);
                last_ts = ts;
                let pkt = RawPacket {
                    ts,
                    linktype: iface.linktype,
                    // The block data is padded to 32 bits; caplen is the real length.
                    data: prefix(epb.data, epb.caplen),
                    orig_len: epb.origlen,
                };
                on_packet(&pkt, stats);
            }
            Block::SimplePacket(spb) => {
                // SPBs always belong to the section's first interface.
                let Some(iface) = interfaces.first() else {
                    stats.malformed += 1;
                    stats.packets += 1;
                    continue;
                };
                // An SPB's captured length is min(origlen, snaplen); the rest is padding.
                let mut data = prefix(spb.data, spb.origlen);
                if iface.snaplen != 0 {
                    data = prefix(data, iface.snaplen);
                }
                let pkt = RawPacket {
                    ts: last_ts,
                    linktype: iface.linktype,
                    data,
                    orig_len: spb.origlen,
                };
                on_packet(&pkt, stats);
            }
            _ => stats.other_blocks += 1,
        }
    }
    Ok(())
}

fn prefix(data: &[u8], len: u32) -> &[u8] {
    &data[..data.len().min(len as usize)]
}

fn nom_reason(e: &nom::Err<PcapError<&[u8]>>) -> String {
    match e {
        nom::Err::Incomplete(_) => "incomplete".to_string(),
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            PcapError::NomError(_, kind) => format!("{kind:?}"),
            other => other.to_string(),
        },
    }
}
