//! The capture reader fed mutated pcap/pcapng files, then the replay decoder
//! over what it reassembled.

use slurm_codec::conn::{ConnConfig, Connection, StreamStart};

/// Input: the bytes of a capture file.
pub fn read(data: &[u8]) {
    let Ok(cap) = tcpflow::parse_capture(data) else {
        return;
    };
    for c in &cap.connections {
        let mut conn = Connection::new(ConnConfig {
            start: if c.saw_syn {
                StreamStart::Beginning
            } else {
                StreamStart::MidStream
            },
            ..ConnConfig::default()
        });
        let mut events = Vec::new();
        let mut gaps = c.gaps.iter().peekable();
        for (i, s) in c.segments.iter().enumerate() {
            while let Some(g) = gaps.next_if(|g| g.before_segment <= i) {
                conn.gap(g.dir);
            }
            conn.feed(s.dir, &s.data, &mut events);
        }
        let delivered: u64 = c.segments.iter().map(|s| s.data.len() as u64).sum();
        assert_eq!(
            delivered,
            c.client_side.bytes + c.server_side.bytes,
            "segment bytes differ from the side totals"
        );
    }
}
