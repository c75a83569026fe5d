//! The `fedproxy run` binary as a child process, for tests that measure the
//! process itself (RSS, file descriptors): spawn with a config, read its JSON
//! log lines, find its listeners' addresses.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `fedproxy run` child; killed (by its pid) when dropped.
pub struct Daemon {
    pub child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    config: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

impl Daemon {
    pub fn spawn(tag: &str, config: &str) -> Daemon {
        let path =
            std::env::temp_dir().join(format!("fedproxy-test-{}-{tag}.toml", std::process::id()));
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fedproxy"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fedproxy binary runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Daemon {
            child,
            lines: rx,
            config: path,
        }
    }

    /// Waits for the log line `message` with `field = value`.
    pub fn wait_log(&self, message: &str, field: (&str, &str)) -> serde_json::Value {
        self.wait_message(message, Some(field))
    }

    /// Waits for the log line `message` (with `field = value` if given).
    pub fn wait_message(&self, message: &str, field: Option<(&str, &str)>) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line {message:?}"));
            if v["message"] == message && field.is_none_or(|(k, val)| v[k] == val) {
                return v;
            }
        }
    }

    /// Every log line's message text until the log goes quiet for 5 s (after the
    /// process has exited: all of them), joined by newlines.
    pub fn messages_until_exit(&self) -> String {
        let mut all = String::new();
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(5)) {
            all.push_str(
                v["message"]
                    .as_str()
                    .or(v["raw"].as_str())
                    .unwrap_or_default(),
            );
            all.push('\n');
        }
        all
    }

    /// Waits (polling, without blocking the runtime) until the process exits.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "fedproxy did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every log line that arrives within `window`.
    pub fn lines_for(&self, window: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        while let Ok(v) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(v);
        }
        out
    }

    /// The bound address of a listener (`inbound`, `outbound`, a route's name).
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        let v = self.wait_log("listening", ("listener", name));
        v["addr"].as_str().unwrap().parse().unwrap()
    }

    /// The bound address of the admin server.
    pub fn admin_addr(&self) -> SocketAddr {
        let v = self.wait_log(
            "admin server listening (/metrics, /live, /ready)",
            ("listener", "admin"),
        );
        v["addr"].as_str().unwrap().parse().unwrap()
    }

    /// The configuration file the daemon was started with.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// Sends `sig` to the daemon (by its pid).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Resident set size now, in bytes (Linux /proc).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the daemon is running");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    /// Open file descriptors now.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

/// Raises this process's soft RLIMIT_NOFILE to at least `want` (children
/// inherit it); returns the limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct for this process.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 0;
        }
        if l.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(l.rlim_max),
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l = raised;
            }
        }
    }
    l.rlim_cur
}
