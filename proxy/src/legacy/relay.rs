//! Frame-at-a-time relay for one connection to or from a legacy FLURM peer.
//!
//! The daemon's byte relay hands a connection here when its remote end matches a
//! legacy peer. Both directions are cut into frames on the u32 length prefix and
//! run through the [`Translator`]; HTTP (legacy FLURM's federation probes) and
//! anything that cannot be framed (a length over [`MAX_TRANSLATED_FRAME`]) switch
//! that direction to byte pass-through for the rest of the connection.
//!
//! The daemon's [`Observer`] (message metrics, decode errors) is fed what the
//! **Slurm side** of the connection sends and receives: the Slurm client's frames
//! and what the proxy answers it (to a legacy peer), or what the proxy sends the
//! real slurmctld and its replies (from a legacy peer). That is Slurm's own
//! numbering, so a legacy REQUEST_FED_INFO is counted as the REQUEST_FED_INFO
//! slurmctld receives, never as the REQUEST_RESERVATION_INFO its number means in
//! Slurm. The legacy side is counted by the `fedproxy_legacy_*` metrics. HTTP
//! probes are not fed (they are counted as legacy probes, with the peer's name).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use slurm_codec::deframe::looks_like_http;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use slurm_codec::Direction;

use super::metrics::ProbeLog;
use super::translator::{Action, Role, Shared, Translator};
use crate::run::observe::Observer;

/// Frames longer than this are not held for translation (fed-info frames are
/// a few KiB); the direction becomes a byte pipe.
pub const MAX_TRANSLATED_FRAME: usize = 1 << 20; // fed-info frames are a few KiB

/// What happened on one relayed connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayOutcome {
    pub client_frames: u64,
    pub upstream_frames: u64,
    pub refused: bool,
    pub http: bool,
}

enum Dir {
    Frames,
    Pipe,
}

/// Feeds the observer the Slurm side of a legacy connection (see the module doc).
struct Watch<'a> {
    observer: Option<&'a mut Observer>,
    /// The client is the Slurm end ([`Role::ToLegacy`]); else the upstream is.
    slurm_is_client: bool,
}

impl Watch<'_> {
    fn feed(&mut self, dir: Direction, bytes: &[u8]) {
        if let Some(o) = self.observer.as_deref_mut().filter(|o| o.decoding()) {
            o.feed(dir, bytes);
            o.handle(dir);
        }
    }

    /// A frame from the client and what the translator made of it.
    fn client_frame(&mut self, original: &[u8], action: &Action) {
        match (self.slurm_is_client, action) {
            (true, Action::Forward(_)) => self.feed(Direction::ClientToServer, original),
            (true, Action::Refuse(reply)) => {
                self.feed(Direction::ClientToServer, original);
                self.feed(Direction::ServerToClient, reply);
            }
            (false, Action::Forward(sent)) => self.feed(Direction::ClientToServer, sent),
            // Refused before anything reached slurmctld.
            (false, Action::Refuse(_)) => {}
        }
    }

    /// A frame from the upstream and what the translator made of it.
    fn upstream_frame(&mut self, original: &[u8], action: &Action) {
        match (self.slurm_is_client, action) {
            (true, Action::Forward(sent) | Action::Refuse(sent)) => {
                self.feed(Direction::ServerToClient, sent)
            }
            (false, _) => self.feed(Direction::ServerToClient, original),
        }
    }

    /// Bytes relayed untranslated (pipe mode, a partial frame at EOF).
    fn bytes(&mut self, dir: Direction, bytes: &[u8]) {
        self.feed(dir, bytes);
    }

    /// HTTP: nothing more for the observer on this connection.
    fn stop(&mut self) {
        self.observer = None;
    }
}

/// The first complete frame in `buf`, or a switch to pipe mode.
fn next_frame(buf: &mut BytesMut, mode: &mut Dir) -> Option<Bytes> {
    if matches!(mode, Dir::Pipe) || buf.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if looks_like_http(buf) || len > MAX_TRANSLATED_FRAME {
        *mode = Dir::Pipe;
        return None;
    }
    (buf.len() >= 4 + len).then(|| buf.split_to(4 + len).freeze())
}

/// Relays `client` ⇄ `upstream` through `translator` until both sides are done
/// or a translation is refused (the refusal is sent to the client, then both
/// connections close). `probes` counts HTTP on the client side; `observer` (the
/// daemon's) is fed the Slurm side of the connection.
pub async fn relay<C, U>(
    client: C,
    upstream: U,
    mut translator: Translator,
    client_addr: SocketAddr,
    probes: Option<Arc<ProbeLog>>,
    observer: Option<&mut Observer>,
) -> std::io::Result<RelayOutcome>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let (mut cbuf, mut ubuf) = (BytesMut::with_capacity(8192), BytesMut::with_capacity(8192));
    let (mut cmode, mut umode) = (Dir::Frames, Dir::Frames);
    let (mut c_eof, mut u_eof) = (false, false);
    let mut out = RelayOutcome::default();
    let mut watch = Watch {
        observer,
        slurm_is_client: translator.role() == Role::ToLegacy,
    };
    while !(c_eof && u_eof) {
        tokio::select! {
            n = cr.read_buf(&mut cbuf), if !c_eof => {
                let n = n?;
                while let Some(f) = next_frame(&mut cbuf, &mut cmode) {
                    out.client_frames += 1;
                    let action = translator.on_client_frame(f.clone());
                    watch.client_frame(&f, &action);
                    match action {
                        Action::Forward(b) => uw.write_all(&b).await?,
                        Action::Refuse(b) => {
                            out.refused = true;
                            refuse(&mut cw, &mut uw, &b).await?;
                            return Ok(out);
                        }
                    }
                }
                if matches!(cmode, Dir::Pipe) && !cbuf.is_empty() {
                    if out.client_frames == 0 && !out.http && looks_like_http(&cbuf) {
                        out.http = true;
                        watch.stop();
                        if let Some(p) = &probes {
                            let line = request_line(&cbuf);
                            p.observe(translator.metrics(), &translator.peer().name, client_addr.ip(), &line);
                        }
                    }
                    pass_raw(&mut watch, Direction::ClientToServer, &mut cbuf, &mut uw).await?;
                }
                if n == 0 {
                    c_eof = true;
                    pass_raw(&mut watch, Direction::ClientToServer, &mut cbuf, &mut uw).await?; // a partial frame
                    uw.shutdown().await.ok();
                }
            }
            n = ur.read_buf(&mut ubuf), if !u_eof => {
                let n = n?;
                while let Some(f) = next_frame(&mut ubuf, &mut umode) {
                    out.upstream_frames += 1;
                    let action = translator.on_upstream_frame(f.clone());
                    watch.upstream_frame(&f, &action);
                    match action {
                        Action::Forward(b) => cw.write_all(&b).await?,
                        Action::Refuse(b) => {
                            out.refused = true;
                            refuse(&mut cw, &mut uw, &b).await?;
                            return Ok(out);
                        }
                    }
                }
                if matches!(umode, Dir::Pipe) {
                    pass_raw(&mut watch, Direction::ServerToClient, &mut ubuf, &mut cw).await?;
                }
                if n == 0 {
                    u_eof = true;
                    pass_raw(&mut watch, Direction::ServerToClient, &mut ubuf, &mut cw).await?; // a partial frame
                    cw.shutdown().await.ok();
                }
            }
        }
    }
    Ok(out)
}

/// Answers the client with a refusal, then closes both sides.
async fn refuse(
    cw: &mut (impl AsyncWrite + Unpin),
    uw: &mut (impl AsyncWrite + Unpin),
    answer: &[u8],
) -> std::io::Result<()> {
    cw.write_all(answer).await?;
    cw.shutdown().await.ok();
    uw.shutdown().await.ok();
    Ok(())
}

/// Passes bytes that are not translated (pipe mode, or a partial frame at EOF)
/// on as they are.
async fn pass_raw(
    watch: &mut Watch<'_>,
    dir: Direction,
    buf: &mut BytesMut,
    w: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    if !buf.is_empty() {
        watch.bytes(dir, buf);
        w.write_all(buf).await?;
        buf.clear();
    }
    Ok(())
}

/// The first line of an HTTP request (at most 200 bytes, lossy), for the probe log.
pub fn request_line(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len())
        .min(200);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Which translator (if any) a connection from `client` to `upstream` gets: the
/// upstream being a legacy peer makes it [`Role::ToLegacy`], else the client being
/// one makes it [`Role::FromLegacy`]; otherwise `None` (plain byte relay).
pub fn translator_for(
    shared: &Arc<Shared>,
    client: SocketAddr,
    upstream: SocketAddr,
) -> Option<Translator> {
    if let Some(p) = shared.peers.legacy_peer(upstream.ip(), None) {
        return Some(Translator::new(
            Role::ToLegacy,
            p.clone(),
            upstream,
            shared.clone(),
        ));
    }
    shared
        .peers
        .legacy_peer(client.ip(), None)
        .map(|p| Translator::new(Role::FromLegacy, p.clone(), client, shared.clone()))
}

/// A static route `listener → upstream` with legacy translation: each accepted
/// connection goes through [`relay`] when [`translator_for`] finds a legacy peer,
/// else through a plain byte copy (HTTP at its start is still counted as a
/// probe). Runs until the listener fails.
pub async fn serve_route(
    listener: tokio::net::TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    probes: Arc<ProbeLog>,
) -> std::io::Result<()> {
    loop {
        let (client, client_addr) = listener.accept().await?;
        let shared = shared.clone();
        let probes = probes.clone();
        tokio::spawn(async move {
            let up = match tokio::net::TcpStream::connect(upstream).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(%upstream, error = %e, "legacy route: upstream connect failed");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let r = match translator_for(&shared, client_addr, upstream) {
                Some(t) => relay(client, up, t, client_addr, Some(probes), None)
                    .await
                    .map(|_| ()),
                None => plain(client, up, client_addr, &shared, &probes).await,
            };
            if let Err(e) = r {
                tracing::debug!(%client_addr, error = %e, "legacy route: connection ended with an error");
            }
        });
    }
}

async fn plain(
    mut client: tokio::net::TcpStream,
    mut up: tokio::net::TcpStream,
    client_addr: SocketAddr,
    shared: &Shared,
    probes: &ProbeLog,
) -> std::io::Result<()> {
    let mut head = [0u8; 256];
    let n = client.peek(&mut head).await?;
    if looks_like_http(&head[..n]) {
        let peer = shared
            .peers
            .lookup(client_addr.ip(), None)
            .map_or("unconfigured", |p| p.name.as_str());
        probes.observe(
            &shared.metrics,
            peer,
            client_addr.ip(),
            &request_line(&head[..n]),
        );
    }
    tokio::io::copy_bidirectional(&mut client, &mut up)
        .await
        .map(|_| ())
}
