//! `fedproxy run`: the proxy daemon beside slurmctld.
//!
//! * [`config`] — the TOML file (`fedproxy.example.toml` documents every key);
//! * [`listener`] — binding, accept loops, one connection's life;
//! * [`connect`] — upstream connects (timeout, TCP_NODELAY, keepalive);
//! * [`orig_dst`] — SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST;
//! * [`addr`] — `ClientAddr`, `OrigDstAddr`, `UpstreamAddr`;
//! * [`loop_guard`] — refusing connections that would loop into the proxy;
//! * [`workers`] — the thread-per-core relay threads (one socket per listener each);
//! * [`relay`] — the full-duplex byte relay;
//! * [`observe`] — the codec watching a copy of the bytes, feeding metrics;
//! * [`metrics`] — every metric, in one place (README.md, "Metrics");
//! * [`admin`] — `/metrics`, `/live`, `/ready`;
//! * [`shutdown`] — SIGTERM/SIGINT drain;
//! * [`reload`] — SIGHUP: applying a changed configuration file;
//! * [`error`] — why the daemon cannot start (`BindError`, `StartError`).
//!
//! Tests start the proxy in-process with [`Proxy::start`] on port 0 and read the
//! bound addresses back.

pub mod addr;
pub mod admin;
pub mod config;
pub mod connect;
pub mod error;
pub mod legacy_route;
pub mod listener;
pub mod loop_guard;
pub mod metrics;
pub mod observe;
pub mod orig_dst;
pub mod relay;
pub mod reload;
pub mod shutdown;
pub mod tap;
pub mod tap_client;
pub mod tap_json;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub use config::{Config, ConfigError};
pub use error::{BindError, StartError};
pub use metrics::Metrics;

use admin::AdminState;
use listener::{ListenerCtx, LiveState, ProxyState};
use loop_guard::LoopGuard;
use shutdown::Drain;
use workers::Workers;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Configuration file (TOML); see fedproxy.example.toml.
    #[arg(long, short)]
    pub config: PathBuf,

    /// Only read and validate the configuration, then exit (0 = valid).
    #[arg(long)]
    pub check_config: bool,
}

/// A running proxy: every listener bound, its sockets accepted from on the relay
/// [`workers`]; the admin server and the listeners' control loops spawned on the
/// current tokio runtime.
pub struct Proxy {
    admin_addr: SocketAddr,
    running: Vec<RunningListener>,
    /// (label, bound address) of every running relay listener.
    listeners: Vec<(String, SocketAddr)>,
    live: Arc<LiveState>,
    metrics: Arc<Metrics>,
    /// The configuration running now (the last one applied).
    config: Config,
    tasks: Vec<JoinHandle<()>>,
    /// The relay threads (fixed at start: `relay.worker_threads`).
    workers: Arc<Workers>,
}

/// A relay listener's control loop: new settings are sent through `ctx`;
/// dropping it stops accepting.
struct RunningListener {
    spec: config::ListenerSpec,
    addr: SocketAddr,
    ctx: tokio::sync::watch::Sender<Arc<ListenerCtx>>,
    /// The control loop; it ends (closing the sockets) once `ctx` is dropped.
    task: JoinHandle<()>,
}

/// Hands a bound relay listener's sockets to the workers and spawns its control loop.
fn spawn_listener(
    spec: config::ListenerSpec,
    bound: listener::BoundSockets,
    live: &Arc<LiveState>,
    workers: &Arc<Workers>,
) -> RunningListener {
    let metrics = &live.current().metrics;
    let addr = bound.addr;
    info!(listener = %spec.name, addr = %addr, key = %spec.key, upstream = %upstream_label(&spec.kind),
        workers = workers.len(), "listening");
    let ctx = Arc::new(ListenerCtx::new(spec.clone(), metrics));
    let (tx, rx) = tokio::sync::watch::channel(ctx);
    let task = tokio::spawn(listener::accept_loop(
        bound,
        rx,
        live.clone(),
        workers.clone(),
    ));
    RunningListener {
        spec,
        addr,
        ctx: tx,
        task,
    }
}

impl Proxy {
    /// Binds every listener (relay listeners first, then admin) and starts
    /// serving. `/ready` turns 200 once this returns. Errors name the config key.
    pub async fn start(cfg: Config) -> Result<Proxy, StartError> {
        cfg.validate()?;
        crate::observe_budget::ObserveBudget::global().set_limit(cfg.relay.observe_budget);
        // Rate-limited log lines are summarised even when the flood stops.
        tokio::spawn(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                crate::log_limit::flush_summaries();
            }
        });
        let metrics = Arc::new(Metrics::new());
        let drain = Arc::new(Drain::new());
        let workers =
            Arc::new(Workers::start(cfg.relay.worker_threads).map_err(StartError::Workers)?);
        let mut bound = Vec::new();
        for spec in cfg.listeners() {
            let b = listener::bind_sockets(
                spec.listen,
                &spec.key,
                workers.len(),
                cfg.relay.keepalive_secs,
            )?;
            bound.push((spec, b));
        }
        let admin_listener = listener::bind(cfg.admin.listen, "admin.listen")?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| StartError::LocalAddr {
                key: "admin.listen".into(),
                source,
            })?;

        let mut own: Vec<SocketAddr> = bound.iter().map(|b| b.1.addr).collect();
        own.push(admin_addr);
        let guard = Arc::new(LoopGuard::new(own));
        let legacy = flurm::LegacyRuntime::from_config(
            cfg.legacy.as_ref(),
            &cfg.peers,
            metrics.legacy.clone(),
            metrics.probes.clone(),
        )?;
        let shared = Arc::new(
            ProxyState::new(metrics.clone(), cfg.relay.clone(), guard, drain.clone())
                .with_legacy(legacy),
        );
        let live = Arc::new(LiveState::new(shared.clone()));

        let mut tasks = Vec::new();
        let mut running = Vec::new();
        for (spec, b) in bound {
            running.push(spawn_listener(spec, b, &live, &workers));
        }
        let state = Arc::new(AdminState {
            metrics: metrics.clone(),
            drain: drain.clone(),
            allow_remote: cfg.admin.allow_remote,
            tap: shared.tap.clone(),
        });
        tasks.push(tokio::spawn(admin::serve(admin_listener, state)));
        drain.set_ready();
        metrics.ready.set(1);
        // Logged once /ready says 200 (tests and scripts wait for this line).
        info!(listener = "admin", addr = %admin_addr, key = "admin.listen", allow_remote = cfg.admin.allow_remote,
            "admin server listening (/metrics, /live, /ready)");
        let listeners = running
            .iter()
            .map(|r| (r.spec.name.clone(), r.addr))
            .collect();
        Ok(Proxy {
            admin_addr,
            running,
            listeners,
            live,
            metrics,
            config: cfg,
            tasks,
            workers,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Clients currently following `GET /tap`.
    pub fn tap_subscribers(&self) -> usize {
        self.live.current().tap.subscribers()
    }

    /// The bound address of a relay listener by its `listener` label
    /// (`inbound`, `outbound`, a route's name or `route-<index>`).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// Every relay listener: (label, bound address).
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Relayed connections still open (including ones connecting upstream).
    pub fn open_connections(&self) -> usize {
        self.live.current().drain.open_connections()
    }

    /// Stops accepting and turns `/ready` to 503; connections go on.
    pub fn start_drain(&self) {
        let shared = self.live.current();
        if !shared.drain.is_draining() {
            info!("draining: stopped accepting, /ready now 503");
        }
        shared.drain.start();
        shared.metrics.ready.set(0);
    }

    /// Drains (up to `relay.drain_timeout_ms`), then stops the admin server,
    /// every task and the relay threads (closing connections still open). True
    /// when all connections ended before the timeout.
    pub async fn shutdown(self) -> bool {
        self.start_drain();
        let shared = self.live.current();
        let clean = shared.drain.wait(shared.relay.drain_timeout()).await;
        for t in self
            .tasks
            .iter()
            .chain(self.running.iter().map(|r| &r.task))
        {
            t.abort();
        }
        self.workers.stop();
        clean
    }
}

fn upstream_label(kind: &config::ListenerKind) -> String {
    match kind {
        config::ListenerKind::Inbound { upstream, .. }
        | config::ListenerKind::Route { upstream } => upstream.to_string(),
        config::ListenerKind::Outbound => "original destination".into(),
    }
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// `fedproxy run`. Exit codes: 0 after a drain (or a valid `--check-config`),
/// 1 when a listener cannot be bound, 2 for a bad configuration.
pub fn main(args: RunArgs, log_format: &str) -> ExitCode {
    init_logging(log_format);
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    // the process itself must fit the config: a transparent proxy without
    // CAP_NET_ADMIN fails every connection, one outside the exempted group loops
    let (identity_errors, identity_warnings) = crate::rules::process::self_problems(&cfg);
    for w in &identity_warnings {
        warn!("{w}");
    }
    if !identity_errors.is_empty() {
        for e in &identity_errors {
            error!("{e}");
        }
        return ExitCode::from(2);
    }
    if args.check_config {
        // What start-up does beyond the file: load libmunge for legacy peers.
        if let Err(e) = flurm::LegacyRuntime::from_config(
            cfg.legacy.as_ref(),
            &cfg.peers,
            flurm::LegacyMetrics::new(),
            Default::default(),
        ) {
            error!("{e}");
            return ExitCode::from(2);
        }
        println!(
            "{}: OK ({} relay listeners, admin on {})",
            args.config.display(),
            cfg.listeners().len(),
            cfg.admin.listen
        );
        return ExitCode::SUCCESS;
    }
    // Signals, the admin server, reloads and the listeners' control loops; the
    // relaying happens on the worker threads Proxy::start starts.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(run(cfg, &args.config));
    rt.shutdown_background();
    code
}

async fn run(cfg: Config, path: &std::path::Path) -> ExitCode {
    // Handlers first: a SIGTERM right after start must drain, not kill.
    let mut signals = match shutdown::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let mut proxy = match Proxy::start(cfg).await {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let sig = loop {
        match signals.request().await {
            shutdown::Request::Shutdown(sig) => break sig,
            shutdown::Request::Reload => proxy.reload_from(path).await,
        }
    };
    info!(signal = sig, "shutting down");
    proxy.start_drain();
    tokio::select! {
        clean = proxy.shutdown() => {
            if clean { info!("drained; exiting") } else { info!("drain timeout reached; exiting") }
        }
        sig = signals.recv() => warn!(signal = sig, "second signal: exiting without waiting for open connections"),
    }
    ExitCode::SUCCESS
}
