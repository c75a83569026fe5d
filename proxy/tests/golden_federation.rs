//! Golden fixtures: the typed decode (`fedproxy replay --json` objects) of every
//! federation message in the bundled captures, in `fixtures/golden/NAME.fed.jsonl`.
//! A change in any decoded field shows up as a diff here. After a deliberate change,
//! regenerate with `UPDATE_GOLDEN=1 cargo test --test golden_federation` and review.

use std::path::Path;

use fedproxy_replay::{json::frame_json, replay_capture};
use tcpflow::read_capture;

/// Federation RPCs: FED_INFO, CTLD_MULT/SIB/DEP, PERSIST_INIT/RC, RESERVATION_INFO,
/// ACCOUNTING_UPDATE, SLURM_RC on federation connections.
fn is_federation(t: u16, kind: &str) -> bool {
    matches!(t, 2024 | 2025 | 2049 | 2050 | 4500..=4506 | 10001) || (kind == "fed_persist")
}

#[test]
fn typed_federation_messages_match_the_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for dir in ["slurm-22.05", "spec-lab"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join("captures").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let rel = format!("captures/{dir}/{name}.pcap");
            let mut lines = String::new();
            for c in replay_capture(read_capture(&path).unwrap()) {
                for f in c
                    .frames
                    .iter()
                    .filter(|f| is_federation(f.frame.msg_type().0, c.kind.as_str()))
                {
                    let mut v = frame_json(&rel, &c, f);
                    v.as_object_mut().unwrap().remove("ts"); // capture time: irrelevant to decoding
                    lines.push_str(&v.to_string());
                    lines.push('\n');
                    checked += 1;
                }
            }
            let golden = root
                .join("fixtures/golden")
                .join(format!("{name}.fed.jsonl"));
            if update {
                std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                std::fs::write(&golden, &lines).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
                panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", golden.display())
            });
            for (i, (got, want)) in lines.lines().zip(want.lines()).enumerate() {
                assert_eq!(got, want, "{}: line {}", golden.display(), i + 1);
            }
            assert_eq!(
                lines.lines().count(),
                want.lines().count(),
                "{}",
                golden.display()
            );
        }
    }
    assert!(checked > 100, "only {checked} federation messages");
}
