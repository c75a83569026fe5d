//! `fedproxy run` checks its own identity against the config before anything
//! else (also under --check-config): transparent mode without CAP_NET_ADMIN is
//! an error naming the capability; a primary group other than the one the rules
//! exempt is a warning naming both. Also: --log-format is accepted after `run`.
//! Needs root and setpriv to drop privileges; skipped otherwise, except under
//! CI=true where it fails.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_fedproxy");

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = std::path::Path::new("/usr/bin/setpriv").exists();
    if root && setpriv {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("run_identity needs root and setpriv under CI=true");
    }
    eprintln!("SKIP: run_identity needs root and setpriv");
    false
}

fn config(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "fedproxy-identity-{name}-{}.toml",
        std::process::id()
    ));
    std::fs::write(&p, text).unwrap();
    p
}

fn check_as(setpriv: &[&str], cfg: &std::path::Path) -> Output {
    Command::new("/usr/bin/setpriv")
        .args(setpriv)
        .args([
            BIN,
            "run",
            "--log-format",
            "json",
            "--check-config",
            "--config",
        ])
        .arg(cfg)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn transparent_mode_without_cap_net_admin_is_refused() {
    if !can_run() {
        return;
    }
    // the file must be readable by nobody
    let cfg = config(
        "transparent",
        "[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n[rules]\nexempt_group = \"nogroup\"\n",
    );
    let drop = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
    let o = check_as(&drop, &cfg);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("CAP_NET_ADMIN"), "{}", text(&o));
    let with_cap = [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=+net_admin",
        "--ambient-caps=+net_admin",
    ];
    let o = check_as(&with_cap, &cfg);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("WARN"), "{}", text(&o));
    let _ = std::fs::remove_file(cfg);
}

#[test]
fn a_primary_group_the_rules_do_not_exempt_is_reported() {
    if !can_run() {
        return;
    }
    let cfg = config(
        "group",
        "[inbound]\n[outbound]\n[rules]\nexempt_group = \"nogroup\"\n",
    );
    let o = check_as(&["--regid=root", "--clear-groups"], &cfg);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("primary group is 0") && t.contains("exempts group nogroup"),
        "{t}"
    );
    let o = check_as(&["--regid=nogroup", "--clear-groups"], &cfg);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("primary group"), "{}", text(&o));
    let _ = std::fs::remove_file(cfg);
}
