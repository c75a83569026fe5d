use slurm_codec::conn::{ConnConfig, Connection, StreamStart};
fn main() {
    let hex = std::env::args().nth(1).unwrap();
    let data: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let (cfg, recs) = fedproxy_fuzz_targets::conn::decode(&data);
    println!("cfg {cfg:#x}");
    let mut c = Connection::new(ConnConfig {
        start: if std::env::args().nth(2).is_some() {
            StreamStart::MidStream
        } else {
            StreamStart::Beginning
        },
        max_buffered: [1 << 20, 4096, 64, 65536][(cfg & 3) as usize],
        ..ConnConfig::default()
    });
    let mut off = [0usize; 2];
    for r in recs {
        let mut ev = Vec::new();
        if r.gap_before {
            c.gap(r.dir);
        }
        println!(
            "feed {:?} gap={} at {} len {}: {:02x?}",
            r.dir,
            r.gap_before,
            off[r.dir.index()],
            r.data.len(),
            &r.data[..r.data.len().min(40)]
        );
        off[r.dir.index()] += r.data.len();
        c.feed(r.dir, &r.data, &mut ev);
        for e in ev {
            match e {
                slurm_codec::conn::ConnEvent::Frame(o) => println!(
                    "  frame {:?} at {} len {} {:?} flipped={}",
                    o.dir,
                    o.stream_offset,
                    o.raw.len(),
                    o.frame.msg_type(),
                    c.is_flipped()
                ),
                e => println!("  {e:?}"),
            }
        }
    }
}
