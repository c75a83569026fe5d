//! The admin HTTP server (hyper, HTTP/1.1): `/metrics` (Prometheus text),
//! `/live` (200 while the process runs), `/ready` (200 once every listener is
//! bound and the proxy is not draining, else 503), `/tap` (the decoded messages,
//! streamed as JSON lines: `run::tap`); 404 elsewhere.
//!
//! Bound to loopback by default. If an operator binds it wider, a client whose
//! address is not loopback is disconnected without a response unless
//! `admin.allow_remote = true`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::metrics::{Metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use super::orig_dst::canonical;
use super::shutdown::Drain;
use super::tap::{TapBody, TapFilter, TapHub, DEFAULT_QUEUE};

/// A fixed response, or the endless body of `/tap`.
type AdminBody = Either<Full<Bytes>, TapBody>;

/// What the admin handlers read.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    pub allow_remote: bool,
    pub tap: Arc<TapHub>,
}

/// Whether a client at `peer` may use the admin server.
pub fn allowed(peer: SocketAddr, allow_remote: bool) -> bool {
    allow_remote || is_loopback(canonical(peer).ip())
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Serves admin connections until the runtime ends (the server keeps answering
/// during a drain, so that `/ready` can say 503).
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "admin: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !allowed(peer, state.allow_remote) {
            state.metrics.admin_refused.inc();
            debug!(%peer, "admin: non-loopback client closed (admin.allow_remote = false)");
            drop(stream);
            continue;
        }
        let state = state.clone();
        let conn = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &req)) }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "admin: connection error");
            }
        });
    }
}

fn route(state: &AdminState, req: &Request<Incoming>) -> Response<AdminBody> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/live" | "/ready" | "/tap") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /live, /ready or /tap\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/live" => text(StatusCode::OK, "live\n"),
        "/ready" if state.drain.is_ready() => text(StatusCode::OK, "ready\n"),
        "/ready" if state.drain.is_draining() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
        "/tap" => tap(state, req),
        _ => {
            let mut r = Response::new(Either::Left(Full::new(Bytes::from(state.metrics.render()))));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            r
        }
    }
}

/// `GET /tap?msg_type=…&cluster=…&conn_kind=…`: a new subscriber, streamed
/// until the client goes away.
fn tap(state: &AdminState, req: &Request<Incoming>) -> Response<AdminBody> {
    let filter = match TapFilter::from_query(req.uri().query()) {
        Ok(f) => f,
        Err(e) => {
            let mut r = Response::new(Either::Left(Full::new(Bytes::from(format!("{e}\n")))));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
    };
    debug!(
        ?filter,
        subscribers = state.tap.subscribers() + 1,
        "admin: tap subscriber"
    );
    let mut r = Response::new(Either::Right(state.tap.subscribe(filter, DEFAULT_QUEUE)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<AdminBody> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_allowed() {
        assert!(allowed("127.0.0.1:5000".parse().unwrap(), false));
        assert!(allowed("127.3.4.5:5000".parse().unwrap(), false));
        assert!(allowed("[::1]:5000".parse().unwrap(), false));
        assert!(allowed("[::ffff:127.0.0.1]:5000".parse().unwrap(), false));
        assert!(!allowed("198.51.100.1:5000".parse().unwrap(), false));
        assert!(!allowed(
            "[::ffff:198.51.100.1]:5000".parse().unwrap(),
            false
        ));
        assert!(!allowed("[2001:db8::1]:5000".parse().unwrap(), false));
        assert!(allowed("198.51.100.1:5000".parse().unwrap(), true));
    }
}
