//! Every bundled capture replays byte-exact with zero errors, its message counts
//! match the capture's decode.txt (made by an independent decoder in the lab), and
//! no truncation or byte flip of a captured frame can make the codec panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use fedproxy_replay::{replay_capture, ReplayedConnection};
use slurm_codec::conn::{ConnConfig, ConnEvent, Connection, StreamStart};
use slurm_codec::frame::Frame;
use tcpflow::read_capture;

fn captures(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../captures")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no captures in {}", root.display());
    v
}

/// Every `captures/slurm-*` folder: one per Slurm release recorded in the lab,
/// and the mixed-version federation.
fn release_dirs() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut v: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("slurm-"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{v:?}");
    v
}

fn all_captures() -> Vec<PathBuf> {
    release_dirs()
        .iter()
        .map(String::as_str)
        .chain(["legacy-flurm", "spec-lab"])
        .flat_map(captures)
        .collect()
}

fn replay(path: &Path) -> Vec<ReplayedConnection> {
    replay_capture(read_capture(path).unwrap())
}

#[test]
fn every_captured_frame_roundtrips_exactly() {
    let mut frames = 0;
    for path in all_captures() {
        for c in replay(&path) {
            assert!(
                c.errors.is_empty(),
                "{}: conn {}: {:?}",
                path.display(),
                c.id,
                c.errors
            );
            assert_eq!(c.incomplete_bytes, 0, "{}: conn {}", path.display(), c.id);
            for f in &c.frames {
                assert!(
                    f.exact,
                    "{}: conn {} frame at {} not exact",
                    path.display(),
                    c.id,
                    f.stream_offset
                );
                frames += 1;
            }
        }
    }
    assert!(frames > 500, "only {frames} frames replayed");
}

/// `== tcp connections: N` and the `msg_type counts (all frames…)` block.
fn expected_counts(decode_txt: &Path) -> (usize, BTreeMap<u16, usize>) {
    let text = std::fs::read_to_string(decode_txt).unwrap();
    let conns = text
        .lines()
        .find_map(|l| l.strip_prefix("== tcp connections: "))
        .map(|n| n.trim().parse().unwrap())
        .expect("tcp connections line");
    let mut counts = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("== ") {
            inside = line.starts_with("== msg_type counts (all frames");
            continue;
        }
        if inside {
            let cols: Vec<&str> = line.split_whitespace().collect();
            counts.insert(
                cols[0].parse().unwrap(),
                cols[cols.len() - 1].parse().unwrap(),
            );
        }
    }
    (conns, counts)
}

#[test]
fn message_counts_match_the_labs_decode_txt() {
    for path in release_dirs().iter().flat_map(|d| captures(d)) {
        let (want_conns, want) = expected_counts(&path.with_extension("decode.txt"));
        let conns = replay(&path);
        let mut got = BTreeMap::new();
        for f in conns.iter().flat_map(|c| &c.frames) {
            *got.entry(f.frame.msg_type().0).or_insert(0) += 1;
        }
        assert_eq!(conns.len(), want_conns, "{}: connections", path.display());
        assert_eq!(got, want, "{}: msg_type counts", path.display());
    }
}

/// The releases a folder's captures were recorded with: "slurm-24.11" → 24.11;
/// the mixed federation ("slurm-mixed-24.11-26.05") → both.
fn releases_of(dir: &str) -> Vec<String> {
    dir.trim_start_matches("slurm-")
        .trim_start_matches("mixed-")
        .split('-')
        .map(str::to_string)
        .collect()
}

#[test]
fn every_frame_names_a_release_its_capture_was_recorded_with() {
    // Header versions, negotiated persist versions, and for persistent
    // connections that began before the capture the version the capture shows
    // (never the oldest layout that happens to fit).
    let mut checked = 0;
    for dir in release_dirs() {
        let releases = releases_of(&dir);
        for path in captures(&dir) {
            for c in replay(&path) {
                for f in &c.frames {
                    if let (None, Some((lo, hi))) = (f.frame.version(), f.version_range) {
                        if lo != hi {
                            // Nothing in the capture tells this connection's
                            // release: the range its layout allows must hold it.
                            assert!(
                                releases.iter().all(|r| {
                                    let r = slurm_codec::ProtocolVersion::MODERN
                                        .iter()
                                        .find(|v| v.to_string() == *r)
                                        .copied()
                                        .unwrap();
                                    lo <= r && r <= hi
                                }),
                                "{}: conn {}: range {lo}..{hi}, recorded with {releases:?}",
                                path.display(),
                                c.id
                            );
                            checked += 1;
                            continue;
                        }
                    }
                    let v = f.frame.version().map(|v| v.to_string()).or_else(|| {
                        f.version_range
                            .filter(|(lo, hi)| lo == hi)
                            .map(|(v, _)| v.to_string())
                    });
                    let Some(v) = v else {
                        assert!(
                            f.frame.message().is_none(),
                            "{}: conn {}: typed {:?} without a version ({:?})",
                            path.display(),
                            c.id,
                            f.frame.msg_type(),
                            f.version_range
                        );
                        continue;
                    };
                    assert!(
                        releases.contains(&v),
                        "{}: conn {} {:?}: version {v}, recorded with {releases:?}",
                        path.display(),
                        c.id,
                        f.frame.msg_type()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} frames");
}

#[test]
fn federation_connections_are_recognised_without_their_handshake() {
    // fed_submit's alpha -> beta federation connection was opened before the capture.
    let conns = replay(
        &captures("slurm-22.05")
            .into_iter()
            .find(|p| p.ends_with("fed_submit.pcap"))
            .unwrap(),
    );
    let fed: Vec<_> = conns
        .iter()
        .filter(|c| c.kind == slurm_codec::conn::ConnKind::FedPersist)
        .collect();
    assert!(!fed.is_empty());
    for c in fed {
        assert!(!c.saw_syn);
        assert_eq!(
            c.server.port(),
            7817,
            "the client side is told from the content"
        );
        assert!(c
            .frames
            .iter()
            .all(|f| f.frame.framing_kind() == slurm_codec::frame::FramingKind::Persist));
    }
}

#[test]
fn truncations_and_byte_flips_never_panic() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut checked = 0;
    for path in all_captures() {
        for c in replay(&path) {
            for f in &c.frames {
                let wire = f.frame.to_bytes();
                let framing = f.frame.framing();
                for cut in 0..wire.len() {
                    // Truncated prefix (length now lies): always a typed error.
                    let e = Frame::decode(wire.slice(..cut), framing).unwrap_err();
                    assert!(e.offset <= wire.len(), "{}", e);
                }
                for _ in 0..64 {
                    let mut bad = wire.to_vec();
                    let i = (next() as usize) % bad.len();
                    bad[i] ^= 1 << (next() % 8);
                    let bad = Bytes::from(bad);
                    // Whatever decodes must re-encode to the same bytes.
                    if let Ok(d) = Frame::decode(bad.clone(), framing) {
                        assert_eq!(d.to_bytes(), bad);
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500);
}

#[test]
fn a_stream_fed_one_byte_at_a_time_decodes_like_one_fed_whole() {
    for path in all_captures() {
        let cap = read_capture(&path).unwrap();
        for c in &cap.connections {
            let start = if c.saw_syn {
                StreamStart::Beginning
            } else {
                StreamStart::MidStream
            };
            let cfg = ConnConfig {
                start,
                ..ConnConfig::default()
            };
            let (mut whole, mut bytewise) = (Connection::new(cfg), Connection::new(cfg));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for s in &c.segments {
                whole.feed(s.dir, &s.data, &mut a);
                for byte in s.data.iter() {
                    bytewise.feed(s.dir, std::slice::from_ref(byte), &mut b);
                }
            }
            let frames = |ev: &[ConnEvent]| -> Vec<(slurm_codec::Direction, u64, Bytes)> {
                ev.iter()
                    .filter_map(|e| match e {
                        ConnEvent::Frame(o) => Some((o.dir, o.stream_offset, o.raw.clone())),
                        _ => None,
                    })
                    .collect()
            };
            assert_eq!(frames(&a), frames(&b), "{}: conn {}", path.display(), c.id);
        }
    }
}
