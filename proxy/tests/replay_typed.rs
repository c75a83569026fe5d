//! The typed job output of `fedproxy replay --conversation` against what the lab's
//! commands printed (the captures' `cmd.txt`): who submitted which job, where, and
//! which job scancel killed; and slurmdbd's PERSIST_RCs shown as the DBD message
//! they answer, not as a protocol version.

use std::path::{Path, PathBuf};

use fedproxy_replay::conversation::{render, ConversationFilter, Peers};
use fedproxy_replay::{replay_capture, ReplayedConnection};
use slurm_codec::msg::Message;
use tcpflow::read_capture;

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/slurm-22.05");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v
}

fn conversation(path: &Path) -> (Vec<ReplayedConnection>, String) {
    let conns = replay_capture(read_capture(path).unwrap());
    let text = render(
        "x",
        &conns,
        &Peers::learn(&conns),
        ConversationFilter::default(),
    );
    (conns, text)
}

/// cmd.txt facts of one submission: the id sbatch printed, and squeue's row for it.
struct Submitted {
    job_id: u32,
    name: String,
    user: String,
}

fn submissions(cmd: &str) -> Vec<Submitted> {
    let ids = cmd.lines().filter_map(|l| {
        let id = l.strip_prefix("submitted ")?;
        id.split(';').next()?.trim().parse::<u32>().ok()
    });
    ids.map(|job_id| {
        // squeue: JOBID PARTITION NAME USER ST …
        let row: Vec<&str> = cmd
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() >= 5 && w[0] == job_id.to_string())
            .unwrap_or_else(|| panic!("no squeue row for {job_id}"));
        Submitted {
            job_id,
            name: row[2].to_string(),
            user: row[3].to_string(),
        }
    })
    .collect()
}

fn uid_of(user: &str) -> u32 {
    match user {
        "root" => 0,
        other => panic!("lab user {other} not mapped"),
    }
}

#[test]
fn submissions_show_name_uid_partition_and_job_id_from_cmd_txt() {
    let mut checked = 0;
    for pcap in captures() {
        let cmd = std::fs::read_to_string(pcap.with_extension("cmd.txt")).unwrap();
        let (conns, text) = conversation(&pcap);
        for s in submissions(&cmd) {
            let uid = uid_of(&s.user);
            let want = format!(
                "SUBMIT_BATCH_JOB uid {uid} partition (default) name {:?}",
                s.name
            );
            assert!(
                text.contains(&want),
                "{}: no `{want}` in\n{text}",
                pcap.display()
            );
            let reply = format!("RESPONSE_SUBMIT_BATCH_JOB job {}", s.job_id);
            assert!(text.contains(&reply), "{}: no `{reply}`", pcap.display());
            if !cmd.contains(&format!("{};", s.job_id)) {
                // Federated (not -M): the origin hands the job to its sibling.
                let sib = format!(
                    "SIB_MSG FED_JOB_SUBMIT_BATCH job {} (cluster {}, local {}) uid {uid} \
                     partition (default) name {:?}",
                    s.job_id,
                    s.job_id >> 26,
                    s.job_id & 0x03FF_FFFF,
                    s.name
                );
                assert!(text.contains(&sib), "{}: no `{sib}`", pcap.display());
            }
            checked += 1;
        }
        // Partition NULL = "default": no submit line in the lab names one.
        for c in &conns {
            for f in &c.frames {
                if let Some(Message::SubmitBatchJob(d)) = f.frame.message() {
                    let line = d.submit_line.text().unwrap();
                    assert!(line.starts_with("sbatch"), "{line}");
                    assert!(!line.contains(" -p") && !line.contains("--partition"));
                    assert!(d.partition.is_null());
                    assert!(d.script_len() > 0);
                }
            }
        }
    }
    assert_eq!(
        checked, 3,
        "fed_submit, fed_cancel and multicluster submit one job each"
    );
}

#[test]
fn scancel_shows_the_job_it_kills() {
    let mut checked = 0;
    for pcap in captures() {
        let cmd = std::fs::read_to_string(pcap.with_extension("cmd.txt")).unwrap();
        let (_, text) = conversation(&pcap);
        for l in cmd
            .lines()
            .filter(|l| l.starts_with("$ ") && l.contains(" scancel "))
        {
            let id = l.split_whitespace().last().unwrap();
            let want = format!("KILL_JOB job {id}");
            assert!(text.contains(&want), "{}: no `{want}`", pcap.display());
            assert!(text.contains("signal 9"));
            checked += 1;
        }
    }
    assert_eq!(checked, 2);
}

#[test]
fn slurmdbd_persist_rc_names_the_answered_message() {
    let mut answers = 0;
    for pcap in captures() {
        let (_, text) = conversation(&pcap);
        for l in text.lines().filter(|l| l.contains("PERSIST_RC")) {
            // A version where a PERSIST_INIT was answered, else the DBD type.
            assert!(!l.contains("v0x"), "{l}");
            assert!(l.contains(" v22.05") || l.contains(" for DBD_"), "{l}");
            answers += l.contains(" for DBD_") as usize;
        }
    }
    assert!(answers >= 20, "{answers} DBD answers");
}
