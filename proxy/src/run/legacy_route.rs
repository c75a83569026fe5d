//! A stand-alone static route with legacy translation (`listener → upstream`),
//! without the daemon's config, loop guard or admin server: what the legacy
//! interop tests put between a Slurm client and a legacy FLURM emulator. It runs
//! the daemon's one [`relay`], with the same [`LegacyStage`] as `fedproxy run`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use flurm::metrics::ProbeLog;
use flurm::stage::{request_line, translator_for};
use flurm::{LegacyStage, TranslationContext};
use slurm_codec::deframe::looks_like_http;
use slurm_codec::Direction;
use tokio::net::{TcpListener, TcpStream};

use super::metrics::Metrics;
use super::observe::{ConnInfo, Observer};
use super::relay::{relay, Ends};

const LISTENER: &str = "legacy-route";

/// Accepts on `listener` and relays each connection to `upstream`, through a
/// [`LegacyStage`] when [`translator_for`] finds a legacy peer, else unchanged
/// (HTTP at its start is still counted as a probe). Runs until the listener fails.
pub async fn serve_route(
    listener: TcpListener,
    upstream: SocketAddr,
    context: Arc<TranslationContext>,
    probes: Arc<ProbeLog>,
) -> std::io::Result<()> {
    // Nothing is decoded here: the route's own metrics only feed the relay.
    let metrics = Arc::new(Metrics::new());
    loop {
        let (client, client_addr) = listener.accept().await?;
        let (context, probes, metrics) = (context.clone(), probes.clone(), metrics.clone());
        tokio::spawn(async move {
            let up = match TcpStream::connect(upstream).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(%upstream, error = %e, "legacy route: upstream connect failed");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let stage = match translator_for(&context, client_addr, upstream) {
                Some(t) => Some(LegacyStage::new(t, client_addr, Some(probes))),
                None => {
                    count_probe(&client, client_addr, &context, &probes).await;
                    None
                }
            };
            let info = ConnInfo {
                id: 0,
                listener: LISTENER.into(),
                client: client_addr,
                upstream,
            };
            let observer = Mutex::new(Observer::new(metrics.clone(), info, None));
            let bytes = [Direction::ClientToServer, Direction::ServerToClient]
                .map(|d| metrics.bytes.with_label_values(&[LISTENER, d.as_str()]));
            let ends = Ends {
                client: &client,
                upstream: &up,
            };
            let stage = stage.map(Mutex::new);
            let (_, r) = relay(ends, &observer, stage.as_ref(), &bytes, 8192).await;
            if let Err(e) = r {
                tracing::debug!(%client_addr, error = %e, "legacy route: connection ended with an error");
            }
        });
    }
}

/// HTTP at the start of an untranslated connection: counted as a probe.
async fn count_probe(
    client: &TcpStream,
    client_addr: SocketAddr,
    context: &TranslationContext,
    probes: &ProbeLog,
) {
    let mut head = [0u8; 256];
    let Ok(n) = client.peek(&mut head).await else {
        return;
    };
    if looks_like_http(&head[..n]) {
        let peer = context
            .peers
            .lookup(client_addr.ip(), None)
            .map_or("unconfigured", |p| p.name.as_str());
        probes.observe(
            &context.metrics,
            peer,
            client_addr.ip(),
            &request_line(&head[..n]),
        );
    }
}
