//! Test support for legacy FLURM interop: a private munged, and a legacy FLURM
//! controller emulator written from `legacy-flurm-wire.md` (§3.1–§3.5).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use flurm::munge::Munge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A munged of our own: random key, socket in a temp dir. Killed (by PID) on drop.
pub struct Munged {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "fedproxy-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // munged wants every directory on the socket path searchable by all.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

impl Munged {
    pub fn start() -> Munged {
        Self::start_with_key(None)
    }

    /// `key` = another munged's key file (a cluster sharing a key); else a new one.
    pub fn start_with_key(key: Option<&Path>) -> Munged {
        use std::os::unix::fs::PermissionsExt;
        let bin = ["/usr/sbin/munged", "/usr/bin/munged"].into_iter().find(|p| Path::new(p).exists()).expect(
            "munged not found: run scripts/install-build-deps (Debian packages munge, libmunge2)",
        );
        let dir = temp_dir("munged");
        let key_file = dir.join("munge.key");
        match key {
            Some(k) => {
                std::fs::copy(k, &key_file).unwrap();
            }
            None => {
                let mut k = vec![0u8; 1024];
                let mut f = std::fs::File::open("/dev/urandom").unwrap();
                std::io::Read::read_exact(&mut f, &mut k).unwrap();
                std::fs::write(&key_file, k).unwrap();
            }
        }
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let socket = dir.join("munge.socket");
        let child = Command::new(bin)
            .arg("--foreground")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", key_file.display()))
            .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
            .arg(format!("--log-file={}", dir.join("munged.log").display()))
            .arg(format!("--seed-file={}", dir.join("munged.seed").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("munged.stderr")).unwrap())
            .spawn()
            .expect("start munged");
        let m = Munged { dir, socket, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !m.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "munged did not create its socket: {}",
                m.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.join("munge.key")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("munged.stderr")).unwrap_or_default()
    }

    pub fn client(&self) -> Munge {
        Munge::load(Some(&self.socket)).expect("libmunge (scripts/install-build-deps)")
    }
}

impl Drop for Munged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the emulated legacy controller puts in its 2025 body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EmulatorMode {
    /// The codec's record path (captures #2): fed1, clusters legacy + alpha.
    Populated,
    /// What the real legacy controller sends (§3.5): 12 zero bytes.
    Zero,
}

/// A legacy FLURM controller (222bcaf) as seen on the wire: 0x2600 headers,
/// 2024 → 2025 whatever the request's shape (it decodes the first 4 body bytes as
/// show_flags and never checks credentials), 2049 → RESPONSE_SLURM_RC 0 (legacy's
/// REQUEST_SCONTROL_INFO). Replies carry a MUNGE credential with the zero-hash
/// payload `01 hi lo` (what its `munge` CLI call produces), or FLURM's fake empty
/// credential when no munged is given.
pub struct Emulator {
    pub addr: SocketAddr,
    /// Every request frame received (complete, with length prefix).
    pub received: Arc<std::sync::Mutex<Vec<Bytes>>>,
}

pub async fn legacy_emulator(mode: EmulatorMode, munge: Option<Munge>) -> Emulator {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let munge = munge.clone();
            let rec = rec.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let n = u32::from_be_bytes(len) as usize;
                if n > 1 << 20 {
                    return; // legacy would wait for 1.2 GB; we just close
                }
                let mut rest = vec![0u8; n];
                if s.read_exact(&mut rest).await.is_err() {
                    return;
                }
                let mut whole = len.to_vec();
                whole.extend_from_slice(&rest);
                rec.lock().unwrap().push(Bytes::from(whole));
                let msg_type = u16::from_be_bytes([rest[4], rest[5]]);
                let (reply_type, body): (u16, Vec<u8>) = match msg_type {
                    2024 => (2025, legacy_2025_body(mode)),
                    2049 => (8001, vec![0, 0, 0, 0]),
                    _ => (8001, vec![0xff, 0xff, 0xff, 0xff]),
                };
                let reply = legacy_reply(reply_type, &body, munge.as_ref());
                let _ = s.write_all(&reply).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Emulator { addr, received }
}

fn packstr(w: &mut Vec<u8>, s: &str) {
    w.put_u32(s.len() as u32 + 1);
    w.put_slice(s.as_bytes());
    w.put_u8(0);
}

/// The legacy 2025 body (§3.4 layout; data of captures #2).
pub fn legacy_2025_body(mode: EmulatorMode) -> Vec<u8> {
    if mode == EmulatorMode::Zero {
        return vec![0; 12];
    }
    let mut w = Vec::new();
    packstr(&mut w, "fed1");
    packstr(&mut w, "legacy");
    w.put_u32(2);
    for (name, host, features, part) in [
        ("legacy", "flurm-head", &["gpu"][..], "batch"),
        ("alpha", "127.0.0.1", &[][..], "debug"),
    ] {
        packstr(&mut w, name);
        packstr(&mut w, host);
        w.put_u32(6817);
        packstr(&mut w, "up");
        w.put_u32(1);
        w.put_u32(features.len() as u32);
        for f in features {
            packstr(&mut w, f);
        }
        w.put_u32(1);
        packstr(&mut w, part);
    }
    w
}

/// A legacy reply frame: 16-byte 0x2600 header, plugin 101 + credential, body.
pub fn legacy_reply(msg_type: u16, body: &[u8], munge: Option<&Munge>) -> Bytes {
    let cred = match munge {
        Some(m) => {
            let t = msg_type.to_be_bytes();
            let mut c = m.encode(&[1, t[0], t[1]], None).unwrap().into_bytes();
            c.push(0);
            c
        }
        None => vec![0], // FLURM's fallback: empty packstr `00000001 00`
    };
    let mut w = BytesMut::new();
    w.put_u32((16 + 8 + cred.len() + body.len()) as u32);
    w.put_slice(&[0x26, 0, 0, 0]);
    w.put_u16(msg_type);
    w.put_u32(body.len() as u32);
    w.put_slice(&[0, 0, 0, 0, 0, 0]);
    w.put_u32(101);
    w.put_u32(cred.len() as u32);
    w.put_slice(&cred);
    w.put_slice(body);
    w.freeze()
}

/// The hex frames of a capture file (`c2s`/`s2c` lines).
pub fn capture_frames(name: &str) -> Vec<(String, Vec<u8>)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../captures/legacy-flurm")
        .join(name);
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (d, h) = l.split_once(' ').unwrap();
            let h = h.trim();
            (
                d.to_string(),
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Sends `frame` to `addr` and reads everything until the server closes.
pub async fn exchange(addr: SocketAddr, frame: &[u8]) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(frame).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("reply in time")
        .unwrap();
    out
}

/// A real slurmctld (Debian 22.05) of its own: cluster `real`, no slurmdbd (so
/// not federated), on a free loopback port, using `munged`'s socket. Killed by
/// PID on drop.
pub struct Slurmctld {
    pub port: u16,
    pub conf: PathBuf,
    dir: PathBuf,
    child: Child,
}

impl Slurmctld {
    pub fn start(munged: &Munged) -> Slurmctld {
        let bin = ["/usr/sbin/slurmctld", "/usr/bin/slurmctld"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("slurmctld not found: run scripts/install-lab-deps (Debian package slurmctld)");
        let dir = temp_dir("slurmctld");
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=real\nSlurmctldHost=localhost\nSlurmctldPort={port}\nAuthType=auth/munge\n\
                 AuthInfo=socket={sock}\nCredType=cred/munge\nSlurmUser=root\nStateSaveLocation={d}/state\n\
                 SlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\nSlurmctldLogFile={d}/slurmctld.log\n\
                 NodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=debug Nodes=localhost Default=YES\n",
                sock = munged.socket.display(),
                d = dir.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .args(["-D", "-i", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("start slurmctld");
        let c = Slurmctld {
            port,
            conf,
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slurmctld did not listen: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slurmctld.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Slurmctld {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Like [`exchange`], from a given local address (e.g. 127.0.0.2 as a legacy peer).
pub async fn exchange_from(local: std::net::IpAddr, addr: SocketAddr, frame: &[u8]) -> Vec<u8> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(local, 0)).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(frame).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out))
        .await
        .expect("reply in time")
        .unwrap();
    out
}
