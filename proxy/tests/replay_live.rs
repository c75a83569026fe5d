//! Live capture replay: every bundled connection played through a real fedproxy on
//! loopback (static route), every release folder included. Each side must receive exactly the captured bytes, and
//! /metrics must count exactly the messages the offline decode finds.

use std::path::Path;

use fedproxy::replay::{live, replay_connections};
use tcpflow::read_capture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_captured_connection_passes_through_the_proxy_unchanged_and_counted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut captures = Vec::new();
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("slurm-"))
        .collect();
    dirs.sort();
    dirs.extend(["legacy-flurm".into(), "spec-lab".into()]);
    for dir in &dirs {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        {
            let mut cap = read_capture(&f).unwrap();
            let conns = replay_connections(&mut cap);
            captures.push((cap, conns));
        }
    }
    let pairs: Vec<_> = captures
        .iter()
        .flat_map(|(cap, conns)| cap.connections.iter().zip(conns.iter()))
        .collect();
    let report = live::play(&pairs).await.unwrap();
    assert_eq!(report.connections, 561);
    assert!(report.mismatches.is_empty(), "{:#?}", report.mismatches);
    assert_eq!(report.decode_errors, 0);
    assert_eq!(report.proxy_counts, report.offline_counts);
    assert_eq!(report.offline_counts.values().sum::<u64>(), 1389);
    assert!(
        report.proxy_counts["REQUEST_PERSIST_INIT"] > 0
            && report.proxy_counts["REQUEST_CTLD_MULT_MSG"] > 0
    );
}
