//! Decode + re-encode of every frame in the bundled captures (the codec's hot path
//! in replay and in the proxy's observer). Run: `cargo bench -p slurm-codec --bench codec_roundtrip`.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fedproxy_replay::replay_capture;
use slurm_codec::conn::{ConnConfig, Connection, StreamStart};
use slurm_codec::frame::{Frame, Framing};
use tcpflow::read_capture;

/// Every captured frame with the framing it was decoded under.
fn captured_frames() -> Vec<(Bytes, Framing)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut out = Vec::new();
    for dir in ["slurm-22.05", "legacy-flurm", "spec-lab"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        {
            for c in replay_capture(read_capture(&path).unwrap()) {
                for f in c.frames {
                    out.push((f.frame.to_bytes(), f.frame.framing()));
                }
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = captured_frames();
    let bytes: usize = frames.iter().map(|(b, _)| b.len()).sum();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(
        format!("decode+encode {} frames ({} bytes)", frames.len(), bytes),
        |b| {
            let mut out = BytesMut::with_capacity(1 << 16);
            b.iter(|| {
                for (wire, framing) in &frames {
                    let f = Frame::decode(wire.clone(), *framing).unwrap();
                    out.clear();
                    f.encode(&mut out);
                    debug_assert_eq!(&out[..], &wire[..]);
                }
            })
        },
    );
    // The proxy's observer path: deframing + decode of whole streams, no re-encode.
    let streams: Vec<_> = frames.iter().map(|(w, _)| w.clone()).collect();
    g.bench_function("connection feed (deframe + decode)", |b| {
        let mut events = Vec::with_capacity(8);
        b.iter(|| {
            let mut conn = Connection::new(ConnConfig {
                start: StreamStart::Beginning,
                ..ConnConfig::default()
            });
            for w in streams.iter().filter(|w| w.len() > 6 && w[4] == 0x26) {
                conn.feed(slurm_codec::Direction::ClientToServer, w, &mut events);
                events.clear();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
