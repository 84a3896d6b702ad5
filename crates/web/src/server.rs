//! One HTTP/1.1 connection, served by hyper, with the limits of `[limits]`: the size of the
//! request head (431 beyond, RFC 6585 §5), the time to send it (the connection is closed),
//! the body size (413, in the router) and the connection's whole lifetime. The accept loop
//! has already applied the connection limits, bans and the TLS handshake.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use server_kit::{BoxStream, ConnInfo, Shutdown};

use crate::WebServer;

/// How long requests in progress may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves HTTP/1.1 on `stream` (`tls`: it is an HTTPS connection) until the client closes,
/// a limit is hit, or shutdown.
pub async fn serve(
    server: Arc<WebServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    let cfg = server.config.clone();
    let conn_id = info.id;
    let peer = info.peer;
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let server = Arc::clone(&server);
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            // `/metrics` is answered over HTTP too: Prometheus usually scrapes plain HTTP on a
            // private network, and the endpoint checks the client itself.
            let response = match &server.metrics {
                Some(m) if path == crate::metrics::PATH => {
                    crate::metrics::handle(m, &req, peer.ip()).await
                }
                _ => crate::router::route(&server, req, tls, peer.ip()).await,
            };
            tracing::debug!(conn = conn_id, %peer, %method, path, status = response.status().as_u16(), "http request");
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .max_header_size(cfg.max_header_bytes)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(cfg.connection_timeout);
    tokio::pin!(deadline);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(conn = conn_id, %peer, error = %e, "http connection ended with an error");
            }
        }
        _ = &mut deadline => {
            tracing::debug!(conn = conn_id, %peer, "http connection lasted too long, closed");
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
        }
    }
}
