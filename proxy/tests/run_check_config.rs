//! `fedproxy run --check-config` runs every validation start-up runs (issue 10,
//! item 4): a file the check accepts starts, a file start-up rejects fails the
//! check with exit 2 and the reason.

use std::process::Command;

fn check(text: &str, tag: &str) -> (i32, String) {
    let path =
        std::env::temp_dir().join(format!("fedproxy-check-{}-{tag}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fedproxy"))
        .args(["run", "--check-config", "--config"])
        .arg(&path)
        .output()
        .expect("fedproxy runs");
    let _ = std::fs::remove_file(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_config_rejects_what_start_up_rejects() {
    let route = "[[route]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:6817\"\n";
    for (i, (extra, says)) in [
        (
            "[[peer]]\nmatch = \"10.0.0.0/33\"\ndialect = \"legacy-flurm\"\n",
            "10.0.0.0/33",
        ),
        (
            "[[peer]]\nmatch = \"10.0.0.7\"\ndialect = \"legacy-flurm\"\nfed_id = 99\n",
            "fed_id 99",
        ),
        (
            "[legacy]\nupstream_version = 0x1234\n[[peer]]\nmatch = \"10.0.0.7\"\ndialect = \"legacy-flurm\"\n",
            "0x1234",
        ),
        ("[relay]\nkeepalive_secs = 40000\n", "32767"),
        ("[relay]\nworker_threads = 100000\n", "worker_threads"),
    ]
    .into_iter()
    .enumerate()
    {
        let (code, out) = check(&format!("{route}{extra}"), &i.to_string());
        assert_eq!(code, 2, "{extra}\n{out}");
        assert!(out.contains(says), "{extra}\n{out}");
    }
    let (code, out) = check(route, "ok");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK"), "{out}");
}
