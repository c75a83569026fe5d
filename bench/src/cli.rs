//! The command line of `fedproxy-bench`.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "fedproxy-bench",
    about = "fedproxy vs direct vs haproxy (TCP mode), interleaved, on captured Slurm frames"
)]
pub struct Args {
    /// Machine-readable results.
    #[arg(long, default_value = "bench/results.json")]
    pub out: PathBuf,
    /// Markdown report (the part between the bench:begin/bench:end markers is replaced).
    #[arg(long, default_value = "README.md")]
    pub markdown: PathBuf,
    /// Folder with fed_info.pcap, fed_startup.pcap, fed_submit.pcap.
    #[arg(long)]
    pub captures: Option<PathBuf>,
    /// The fedproxy binary (release build).
    #[arg(long, default_value = "target/release/fedproxy")]
    pub fedproxy: PathBuf,
    /// The haproxy binary.
    #[arg(long, default_value = "haproxy")]
    pub haproxy: String,
    /// Paths to measure (comma-separated: direct,fedproxy,haproxy,fedproxy-tap). A path whose
    /// proxy cannot start is reported as unavailable and the rest still run.
    #[arg(long, default_value = "direct,fedproxy,haproxy")]
    pub paths: String,
    /// Workloads to run (comma-separated: oneshot_1, oneshot_n, pingpong, pipelined).
    #[arg(long, default_value = "oneshot_1,oneshot_n,pingpong,pipelined")]
    pub workloads: String,
    /// Duration of one trial (one workload on one path), ms.
    #[arg(long, default_value_t = 1000)]
    pub trial_ms: u64,
    /// Repetitions (each runs every workload on every path, order rotated).
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
    /// Concurrent clients of the second one-shot workload.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Frames in flight in the pipelined workload.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Idle connections held through each proxy (0 = skip).
    #[arg(long, default_value_t = 10_000)]
    pub idle_conns: usize,
    /// Repetitions of the idle-connection measurement (fresh proxies each time).
    #[arg(long, default_value_t = 3)]
    pub idle_reps: usize,
    /// Worker threads of the synthetic peer.
    #[arg(long, default_value_t = 64)]
    pub peer_workers: usize,
    /// Also run the real-lab sbatch storm (scripts/lab; slow: restarts the lab twice per rep).
    #[arg(long)]
    pub lab: bool,
    /// sbatch submissions per lab measurement.
    #[arg(long, default_value_t = 200)]
    pub lab_jobs: usize,
    /// Repetitions of the lab measurement (each: without, then with fedproxy).
    #[arg(long, default_value_t = 1)]
    pub lab_reps: usize,
    /// Source address of every client connection (another loopback address,
    /// e.g. 127.0.0.2, keeps the clients' ports apart from the proxies' own
    /// upstream sockets; fedproxy before acb4b35 refused clients whose
    /// address:port equalled one of its upstream sockets' local address).
    #[arg(long, default_value = "127.0.0.1")]
    pub client_source: std::net::IpAddr,
    /// Internal: run only the synthetic peer in hold mode (for the idle test, in
    /// its own process so that its sockets do not count against the harness's
    /// RLIMIT_NOFILE); prints "LISTEN addr" and runs until stdin closes.
    #[arg(long, hide = true)]
    pub peer_only: bool,
    #[arg(skip)]
    pub idle_requested: usize,
    #[arg(skip)]
    pub nofile: u64,
    #[arg(skip)]
    pub other_load_cores: f64,
    /// Keep the temp dir (proxy configs and logs).
    #[arg(long)]
    pub keep_tmp: bool,
    /// Short run (trials of 300 ms, 3 reps, 2,000 idle connections) for a smoke test.
    #[arg(long)]
    pub quick: bool,
}

impl Args {
    /// `--quick`: trials of 300 ms, 3 reps, at most 2,000 idle connections.
    pub fn apply_quick(&mut self) {
        if self.quick {
            self.trial_ms = 300;
            self.reps = 3;
            self.idle_conns = self.idle_conns.min(2000);
            self.idle_reps = 1;
        }
    }
}
