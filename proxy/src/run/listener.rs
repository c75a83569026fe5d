//! Relay listeners (inbound, outbound, static routes): binding, the accept loop,
//! and the life of one accepted connection — loop guard, upstream (fixed, or the
//! original destination), connect, relay, accounting.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use slurm_codec::conn::ConnKind;
use slurm_codec::Direction;
use socket2::SockRef;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::addr::{ClientAddr, UpstreamAddr};
use super::config::{ListenerKind, ListenerSpec, RelayConfig};
use super::connect::{connect, set_keepalive, tune};
use super::error::BindError;
use super::loop_guard::{LoopGuard, LoopReason, OwnUpstream};
use super::metrics::Metrics;
use super::observe::{ConnInfo, Observer};
use super::orig_dst::{canonical, original_dst};
use super::relay::{relay, Ends};
use super::shutdown::Drain;
use super::tap::TapHub;
use super::workers::Workers;

/// State shared by every listener and connection of one proxy.
pub struct ProxyState {
    pub metrics: Arc<Metrics>,
    pub relay: RelayConfig,
    pub guard: Arc<LoopGuard>,
    pub drain: Arc<Drain>,
    /// Legacy FLURM translation (set when a `legacy-flurm` peer is configured).
    pub legacy: Option<flurm::LegacyRuntime>,
    /// Subscribers of the live tap (`GET /tap`).
    pub tap: Arc<TapHub>,
    /// Connection ids, shared with the states that replace this one on reload.
    next_id: Arc<AtomicU64>,
}

impl ProxyState {
    pub fn new(
        metrics: Arc<Metrics>,
        relay: RelayConfig,
        guard: Arc<LoopGuard>,
        drain: Arc<Drain>,
    ) -> ProxyState {
        ProxyState {
            metrics,
            relay,
            guard,
            drain,
            legacy: None,
            tap: Arc::new(TapHub::default()),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The state after a reload: new relay settings and legacy runtime; the
    /// metrics, loop guard, drain, tap and connection ids stay.
    pub fn reloaded(&self, relay: RelayConfig, legacy: Option<flurm::LegacyRuntime>) -> ProxyState {
        ProxyState {
            metrics: self.metrics.clone(),
            relay,
            guard: self.guard.clone(),
            drain: self.drain.clone(),
            legacy,
            tap: self.tap.clone(),
            next_id: self.next_id.clone(),
        }
    }

    pub fn with_legacy(mut self, legacy: Option<flurm::LegacyRuntime>) -> ProxyState {
        self.legacy = legacy;
        self
    }
}

/// The running state: replaced as a whole by a reload, while connections keep
/// the state they were accepted with.
pub struct LiveState(RwLock<Arc<ProxyState>>);

impl LiveState {
    pub fn new(state: Arc<ProxyState>) -> LiveState {
        LiveState(RwLock::new(state))
    }

    pub fn current(&self) -> Arc<ProxyState> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, state: Arc<ProxyState>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// One bound relay listener and its cached metric handles.
pub struct ListenerCtx {
    pub spec: ListenerSpec,
    pub name: Arc<str>,
    accepted: IntCounter,
    bytes: [IntCounter; 2],
    /// Set when an upstream connect was refused: the accept loop checks
    /// whether to close the listener (relay.follow_upstream).
    upstream_refused: Notify,
    following: IntGauge,
}

impl ListenerCtx {
    pub fn new(spec: ListenerSpec, metrics: &Metrics) -> ListenerCtx {
        metrics.add_listener(&spec.name);
        let name: Arc<str> = spec.name.as_str().into();
        ListenerCtx {
            accepted: metrics.connections_accepted.with_label_values(&[&name]),
            bytes: [Direction::ClientToServer, Direction::ServerToClient]
                .map(|d| metrics.bytes.with_label_values(&[&name, d.as_str()])),
            upstream_refused: Notify::new(),
            following: metrics
                .listener_following_upstream
                .with_label_values(&[&name]),
            spec,
            name,
        }
    }
}

/// Binds a listening socket (the admin server's); the error names the config key.
pub fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener, BindError> {
    let explain = |e: io::Error| BindError::new(key, addr, e);
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(explain)?;
    sock.set_reuseaddr(true).map_err(explain)?;
    sock.bind(addr).map_err(explain)?;
    sock.listen(1024).map_err(explain)
}

/// A relay listener's sockets, bound and listening but not yet handed to the
/// workers: one per worker, all on `addr` (SO_REUSEPORT).
pub struct BoundSockets {
    /// The bound address (a configured port 0 resolved).
    pub addr: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
}

/// Binds `n` listening sockets on `addr` with SO_REUSEPORT (a port 0 is
/// resolved by the first), TCP_NODELAY and keepalive set on each (accepted
/// connections inherit them). The error names the config key.
pub fn bind_sockets(
    addr: SocketAddr,
    key: &str,
    n: usize,
    keepalive_secs: u64,
) -> Result<BoundSockets, BindError> {
    let explain = |e: io::Error| BindError::new(key, addr, e);
    if addr.port() != 0 {
        // SO_REUSEPORT would let us share a port another process of this user
        // listens on: a plain bind first fails there, as it always did.
        drop(bind_one(addr, false).map_err(explain)?);
    }
    let mut sockets = Vec::with_capacity(n.max(1));
    let mut bound = addr;
    for _ in 0..n.max(1) {
        let s = bind_one(bound, true).map_err(explain)?;
        tune(SockRef::from(&s), keepalive_secs);
        bound = s.local_addr().map_err(explain)?;
        sockets.push(s);
    }
    Ok(BoundSockets {
        addr: bound,
        sockets,
    })
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    if reuse_port {
        s.listen(1024)?;
    }
    Ok(s.into())
}

/// A relay listener's sockets, each accepted from on its own worker. Dropping
/// it stops the accept loops (the sockets close); [`Accepting::close`] also
/// waits until they have.
struct Accepting {
    stop: CancellationToken,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Accepting {
    /// Hands socket `i` to worker `i`.
    fn start(
        bound: BoundSockets,
        workers: &Workers,
        ctx_rx: &watch::Receiver<Arc<ListenerCtx>>,
        live: &Arc<LiveState>,
    ) -> Accepting {
        let stop = CancellationToken::new();
        let loops = bound
            .sockets
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                workers.handle(i).spawn(worker_accept_loop(
                    s,
                    ctx_rx.clone(),
                    live.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        Accepting { stop, loops }
    }

    /// Stops accepting; returns once every socket is closed.
    async fn close(mut self) {
        self.stop.cancel();
        for l in std::mem::take(&mut self.loops) {
            let _ = l.await;
        }
    }
}

impl Drop for Accepting {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One worker's accept loop on its own socket: every connection it accepts is
/// relayed on this worker's thread.
async fn worker_accept_loop(
    socket: std::net::TcpListener,
    ctx_rx: watch::Receiver<Arc<ListenerCtx>>,
    live: Arc<LiveState>,
    stop: CancellationToken,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            warn!(listener = %ctx_rx.borrow().name, error = %e, "cannot register a listening socket");
            return;
        }
    };
    // The same for every state a reload installs.
    let drain = live.current().drain.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = drain.started() => break,
            r = listener.accept() => r,
        };
        let shared = live.current();
        let ctx = ctx_rx.borrow().clone();
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(listener = %ctx.name, error = %e, "accept failed");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        ctx.accepted.inc();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let peer = ClientAddr(canonical(peer));
        let task = handle(stream, peer, id, ctx, shared.clone());
        shared.drain.tracker().spawn(task);
    }
}

/// How often a closed listener probes its upstream.
const FOLLOW_PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// The fixed upstream a listener follows (inbound and routes, when
/// `relay.follow_upstream`); the outbound listener's destinations vary.
fn followed_upstream(ctx: &ListenerCtx, shared: &ProxyState) -> Option<SocketAddr> {
    match ctx.spec.kind {
        ListenerKind::Inbound { upstream, .. } | ListenerKind::Route { upstream }
            if shared.relay.follow_upstream =>
        {
            Some(upstream)
        }
        _ => None,
    }
}

/// True when a connect to `upstream` is refused right now.
async fn upstream_refuses(upstream: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, TcpStream::connect(upstream)).await,
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused
    )
}

/// What woke the control loop.
enum Wake {
    Drain,
    UpstreamRefused,
    /// A reload changed this listener's settings (true) or removed it (false).
    Reconfigured(bool),
}

/// A relay listener's control loop (on the runtime that started the proxy; the
/// accepting happens on the workers, one socket each). Accepting goes on until
/// draining starts, or until a reload removes this listener (`ctx`'s sender
/// dropped); then every socket is closed, so new connections are refused by the
/// kernel, while open ones go on. A reload that keeps the address sends the new
/// settings through `ctx`. While the followed upstream refuses connects the
/// sockets are closed too (clients get ECONNREFUSED, as they would connecting
/// directly, and fail over), then bound again on the same address once the
/// upstream accepts.
pub async fn accept_loop(
    bound: BoundSockets,
    mut ctx_rx: watch::Receiver<Arc<ListenerCtx>>,
    live: Arc<LiveState>,
    workers: Arc<Workers>,
) {
    // The bound address (a configured port 0 is rebound on the same port).
    let addr = bound.addr;
    let mut accepting = Some(Accepting::start(bound, &workers, &ctx_rx, &live));
    let mut ctx = ctx_rx.borrow_and_update().clone();
    loop {
        let shared = live.current();
        let followed = followed_upstream(&ctx, &shared);
        let wake = match (&accepting, followed) {
            (Some(_), _) => tokio::select! {
                _ = shared.drain.started() => Wake::Drain,
                r = ctx_rx.changed() => Wake::Reconfigured(r.is_ok()),
                _ = ctx.upstream_refused.notified(), if followed.is_some() => Wake::UpstreamRefused,
            },
            (None, Some(upstream)) => tokio::select! {
                _ = shared.drain.started() => Wake::Drain,
                r = ctx_rx.changed() => Wake::Reconfigured(r.is_ok()),
                b = reopen_when_upstream_accepts(addr, upstream, &ctx, &shared, workers.len()) => {
                    accepting = Some(Accepting::start(b, &workers, &ctx_rx, &live));
                    continue;
                }
            },
            (None, None) => {
                // No longer following (a reload turned it off): bind again.
                match bind_sockets(
                    addr,
                    &ctx.spec.key,
                    workers.len(),
                    shared.relay.keepalive_secs,
                ) {
                    Ok(b) => {
                        ctx.following.set(0);
                        accepting = Some(Accepting::start(b, &workers, &ctx_rx, &live));
                        continue;
                    }
                    Err(_) => break,
                }
            }
        };
        match wake {
            Wake::Drain | Wake::Reconfigured(false) => break,
            Wake::Reconfigured(true) => {
                ctx.following.set(0);
                ctx = ctx_rx.borrow_and_update().clone();
                if accepting.is_none() {
                    ctx.following.set(1);
                }
            }
            Wake::UpstreamRefused => {
                let Some(upstream) = followed else { continue };
                // Check again: the refusal may be stale (the upstream is back).
                if upstream_refuses(upstream, shared.relay.connect_timeout()).await {
                    if let Some(a) = accepting.take() {
                        a.close().await;
                    }
                    ctx.following.set(1);
                    warn!(listener = %ctx.name, upstream = %upstream, addr = %addr,
                        "the upstream refuses connections: closed this listener, so clients are refused \
                         too and fail over; it reopens when the upstream accepts again");
                }
            }
        }
    }
    if let Some(a) = accepting.take() {
        a.close().await;
    }
    ctx.following.set(0);
    debug!(listener = %ctx.name, "stopped accepting");
}

/// Probes the upstream every [`FOLLOW_PROBE_INTERVAL`]; once it no longer
/// refuses, binds `addr` again (same options as at start).
async fn reopen_when_upstream_accepts(
    addr: SocketAddr,
    upstream: SocketAddr,
    ctx: &ListenerCtx,
    shared: &ProxyState,
    workers: usize,
) -> BoundSockets {
    let mut tick = tokio::time::interval(FOLLOW_PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut bind_failed = false;
    loop {
        tick.tick().await;
        if upstream_refuses(upstream, shared.relay.connect_timeout()).await {
            continue;
        }
        match bind_sockets(addr, &ctx.spec.key, workers, shared.relay.keepalive_secs) {
            Ok(b) => {
                ctx.following.set(0);
                info!(listener = %ctx.name, upstream = %upstream, addr = %addr,
                    "the upstream accepts connections again: listening again");
                return b;
            }
            Err(e) => {
                if !bind_failed {
                    warn!(listener = %ctx.name, error = %e,
                        "the upstream is back but this listener cannot be bound again; retrying");
                    bind_failed = true;
                }
            }
        }
    }
}

/// How long a client whose upstream could not be reached may take to close
/// after our FIN (Slurm clients close at once on EOF, or after MessageTimeout).
const DRAIN_AFTER_CONNECT_FAILURE: Duration = Duration::from_secs(10);

/// The upstream could not be reached, but the kernel completed the client's
/// handshake before accept(): end its connection cleanly, with a FIN, then read
/// and drop what it still sends until it closes, so that no reset is ever sent.
/// A reset is what a refusal would look like, but slurmctld 22.05 dies on one:
/// a persistent connection reset after its error was consumed polls as
/// POLLIN|POLLHUP, which `_conn_readable` treats as fatal ("poll returned
/// unexpected revents: 0x11"; seen in scripts/lab-test-faults). Failing over
/// needs connect() itself to fail, which the listener gives new clients by
/// following its upstream (relay.follow_upstream).
async fn end_cleanly(client: &TcpStream, within: Duration) {
    let _ = SockRef::from(client).shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(within, async {
        loop {
            if client.readable().await.is_err() {
                return;
            }
            match client.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// One accepted connection, from the loop guard to the end of the relay.
async fn handle(
    client: TcpStream,
    peer: ClientAddr,
    id: u64,
    ctx: Arc<ListenerCtx>,
    shared: Arc<ProxyState>,
) {
    let Some(upstream_addr) = choose_upstream(&client, peer, id, &ctx, &shared) else {
        return;
    };
    let (upstream, own) = match connect_upstream(peer, upstream_addr, id, &ctx, &shared).await {
        Ok(c) => c,
        Err(reason) => {
            if reason == "refused" {
                ctx.upstream_refused.notify_one();
            }
            end_cleanly(&client, DRAIN_AFTER_CONNECT_FAILURE).await;
            return;
        }
    };
    let info = ConnInfo {
        id,
        listener: ctx.name.clone(),
        client: *peer,
        upstream: *upstream_addr,
    };
    relay_and_account(
        Ends {
            client: &client,
            upstream: &upstream,
        },
        info,
        &ctx,
        &shared,
    )
    .await;
    drop(own);
}

/// The loop guard and the upstream: fixed, or the original destination.
/// `None` when the connection is refused (counted and logged here).
fn choose_upstream(
    client: &TcpStream,
    peer: ClientAddr,
    id: u64,
    ctx: &ListenerCtx,
    shared: &ProxyState,
) -> Option<UpstreamAddr> {
    if let Some(reason) = shared.guard.check_accepted(*peer, client) {
        refuse(ctx, shared, id, peer, None, reason);
        return None;
    }
    let upstream = match ctx.spec.kind {
        ListenerKind::Inbound { upstream, .. } | ListenerKind::Route { upstream } => {
            UpstreamAddr(upstream)
        }
        ListenerKind::Outbound => match original_dst(client) {
            Ok(a) => a.into(),
            Err(e) => {
                shared
                    .metrics
                    .orig_dst_failures
                    .with_label_values(&[&ctx.name])
                    .inc();
                warn!(conn = id, listener = %ctx.name, client = %peer, error = %e,
                    "cannot read the original destination (SO_ORIGINAL_DST); closing the connection");
                return None;
            }
        },
    };
    if shared.guard.is_self_target(*upstream) {
        refuse(
            ctx,
            shared,
            id,
            peer,
            Some(upstream),
            LoopReason::SelfTarget,
        );
        return None;
    }
    Some(upstream)
}

/// Connects to the upstream (from the client's address on a transparent inbound
/// listener, so slurmctld sees it). When that fails (counted and logged), the
/// failure's reason label (`refused`, `timeout`, ...).
async fn connect_upstream(
    peer: ClientAddr,
    upstream_addr: UpstreamAddr,
    id: u64,
    ctx: &ListenerCtx,
    shared: &ProxyState,
) -> Result<(TcpStream, OwnUpstream), &'static str> {
    let transparent = matches!(
        ctx.spec.kind,
        ListenerKind::Inbound {
            transparent: true,
            ..
        }
    );
    let source = transparent.then_some(peer);
    let timeout = shared.relay.connect_timeout();
    let (upstream, own) = match connect(upstream_addr, source, timeout, &shared.guard).await {
        Ok(c) => c,
        Err(e) => {
            shared
                .metrics
                .upstream_connect_failures
                .with_label_values(&[&ctx.name, e.reason()])
                .inc();
            crate::log_limit::limited("upstream_connect_failed", || {
                warn!(conn = id, listener = %ctx.name, client = %peer, upstream = %upstream_addr, reason = e.reason(), error = %e,
                    "upstream connect failed; closing the client connection")
            });
            return Err(e.reason());
        }
    };
    // TCP_NODELAY was set in connect(); keepalive only where a peer can vanish.
    if !upstream_addr.ip().is_loopback() {
        set_keepalive(SockRef::from(&upstream), shared.relay.keepalive_secs);
    }
    Ok((upstream, own))
}

/// Relays one connection (through the legacy stage when either end is a legacy
/// FLURM peer), then counts and logs how it ended.
async fn relay_and_account(ends: Ends<'_>, info: ConnInfo, ctx: &ListenerCtx, shared: &ProxyState) {
    let m = &shared.metrics;
    let (id, peer, upstream_addr) = (info.id, info.client, info.upstream);
    let stage = shared
        .legacy
        .as_ref()
        .and_then(|l| l.stage(peer, upstream_addr))
        // Boxed: most connections have none, and every idle one would carry
        // the stage's size in its task otherwise.
        .map(|s| Box::new(Mutex::new(s)));
    let max_frame = shared
        .relay
        .observe
        .then_some(shared.relay.max_observed_frame);
    let observer = Mutex::new(
        Observer::new(m.clone(), info, max_frame)
            .with_tap(shared.tap.clone())
            .with_partial_idle(shared.relay.partial_idle()),
    );
    debug!(conn = id, listener = %ctx.name, client = %peer, upstream = %upstream_addr,
        legacy = stage.is_some(), "relaying");
    let (done, result) = relay(
        ends,
        &observer,
        stage.as_deref(),
        &ctx.bytes,
        shared.relay.buffer_size,
    )
    .await;
    let kind = observer.lock().unwrap_or_else(|e| e.into_inner()).kind();
    // Legacy connections are counted as such whatever the codec made of them.
    let kind_label = if stage.is_some() {
        "legacy"
    } else {
        kind.as_str()
    };
    m.connections_closed
        .with_label_values(&[&ctx.name, kind_label])
        .inc();
    match result {
        Ok(()) => {
            debug!(conn = id, listener = %ctx.name, client = %peer, upstream = %upstream_addr,
            conn_kind = kind_label, bytes_c2s = done.bytes[0], bytes_s2c = done.bytes[1],
            refused = done.refused, "connection closed")
        }
        Err(e) => {
            debug!(conn = id, listener = %ctx.name, client = %peer, upstream = %upstream_addr,
            conn_kind = kind_label, bytes_c2s = done.bytes[0], bytes_s2c = done.bytes[1], error = %e,
            "connection ended with an error")
        }
    }
    // Persistent federation connections are worth a line of their own.
    if stage.is_none() && !matches!(kind, ConnKind::Oneshot | ConnKind::Unknown) {
        info!(conn = id, listener = %ctx.name, client = %peer, upstream = %upstream_addr, conn_kind = kind.as_str(),
            bytes_c2s = done.bytes[0], bytes_s2c = done.bytes[1], "persistent connection closed");
    }
}

fn refuse(
    ctx: &ListenerCtx,
    shared: &ProxyState,
    id: u64,
    peer: ClientAddr,
    dst: Option<UpstreamAddr>,
    reason: LoopReason,
) {
    shared
        .metrics
        .loop_guard_refusals
        .with_label_values(&[&ctx.name, reason.as_str()])
        .inc();
    crate::log_limit::limited("loop_guard", || match reason {
        LoopReason::OwnUpstream => {
            warn!(conn = id, listener = %ctx.name, client = %peer, reason = reason.as_str(),
            egid = own_gid(),
            "loop guard: this connection comes from one of the proxy's own upstream sockets, redirected back into \
             it: the rules exempt the proxy by its primary group ([rules] exempt_group). Either this process runs \
             with another primary group (egid above; unit: Group=), or the rules lack the exemption; \
             `fedproxy rules status` tells which. Refusing it")
        }
        LoopReason::SelfTarget => warn!(conn = id, listener = %ctx.name, client = %peer,
            original_dst = %dst.map(|d| d.to_string()).unwrap_or_default(), reason = reason.as_str(),
            egid = own_gid(),
            "loop guard: the destination is this proxy's own listener (a connection made straight to the proxy \
             port rather than redirected, or the proxy's own connections are redirected: it must run with the \
             primary group the rules exempt, [rules] exempt_group; `fedproxy rules status` checks both); \
             refusing it"),
    });
}

/// This process's effective gid, for the loop guard's messages.
fn own_gid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}
