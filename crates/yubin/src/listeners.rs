//! Listening sockets and the accept loop: one tokio task per connection, connection limits,
//! implicit-TLS handshakes, and the hand-off to the protocol crates.
//!
//! Invariant: every connection task is spawned on the shared [`TaskTracker`] and holds a
//! [`ConnGuard`](crate::limits::ConnGuard) (inside the [`ConnSlot`] of its `ConnInfo`, released when the task ends),
//! so shutdown can wait for all of them and limits are released however a session ends. A
//! session releases its slot earlier when it decides to close (LOGOUT/QUIT).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, ConnSlot, Shutdown};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::cert_resolver::Accepted;
use crate::limits::{ConnLimits, Refusal};

/// Pending connections the kernel queues per socket (it caps this at `somaxconn`).
const BACKLOG: i32 = 1024;
/// How long writing the "too many connections" line may take before the socket is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after an accept error such as EMFILE, so the loop does not spin while descriptors
/// are exhausted.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Process-unique connection numbers for log correlation.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The protocol a listener speaks, with the state its sessions share.
#[derive(Clone)]
pub enum Service {
    Smtp(Arc<smtp_server::SmtpServer>),
    Pop3(Arc<pop3_server::Pop3Server>),
    Imap(Arc<imap_server::ImapServer>),
    /// HTTP or HTTPS (client autoconfiguration).
    Web(Arc<web::WebServer>),
}

impl Service {
    /// The one line sent to a client refused for too many connections, before closing.
    fn refusal(&self, hostname: &str, why: Refusal) -> Vec<u8> {
        let what = match why {
            Refusal::TooManyTotal | Refusal::TooManyFromIp => "Too many connections",
            Refusal::ConnectionRate => "Too many connections from your address in a minute",
        };
        match self {
            // RFC 5321 §3.1: a server may refuse a connection with 421 as its greeting;
            // RFC 3463 §3.8: 4.7.0 = temporary security/policy refusal.
            Service::Smtp(_) => {
                format!("421 4.7.0 {hostname} {what}, try again later\r\n").into_bytes()
            }
            // RFC 2449 §8 / RFC 3206 §4: [SYS/TEMP] marks a transient system problem.
            Service::Pop3(_) => format!("-ERR [SYS/TEMP] {what}\r\n").into_bytes(),
            // RFC 9051 §7.1.5: BYE as the greeting means the server will not serve this client.
            Service::Imap(_) => format!("* BYE {what}\r\n").into_bytes(),
            // RFC 6585 §4: 429 Too Many Requests, with when to retry (RFC 9110 §10.2.3).
            Service::Web(_) => http_refusal("429 Too Many Requests", &format!("{what}\n")),
        }
    }

    /// The one line sent to a client whose address is banned (too many failed logins), before
    /// closing. Every listener refuses it, MX included, as Stalwart does: the address was
    /// caught guessing passwords, and an admin lifts a mistaken ban with `yubin ban del`.
    fn banned(&self, hostname: &str, until: &str) -> Vec<u8> {
        match self {
            // RFC 5321 §3.1 (421 as the greeting), RFC 3463 §3.8 (4.7.0 security/policy).
            Service::Smtp(_) => format!(
                "421 4.7.0 {hostname} Too many failed logins from your address, try again after {until}\r\n"
            )
            .into_bytes(),
            // RFC 2449 §8 / RFC 3206 §4: [SYS/TEMP], a temporary refusal.
            Service::Pop3(_) => format!(
                "-ERR [SYS/TEMP] Too many failed logins from your address, try again after {until}\r\n"
            )
            .into_bytes(),
            // RFC 9051 §7.1.5: BYE as the greeting; RFC 5530 §3: UNAVAILABLE, temporary.
            Service::Imap(_) => format!(
                "* BYE [UNAVAILABLE] Too many failed logins from your address, try again after {until}\r\n"
            )
            .into_bytes(),
            // RFC 9110 §15.5.4: 403, the server refuses to serve this client.
            Service::Web(_) => http_refusal(
                "403 Forbidden",
                &format!("Too many failed logins from your address, try again after {until}\n"),
            ),
        }
    }

    /// The `protocol` label of the connection metrics.
    fn protocol(&self) -> &'static str {
        match self {
            Service::Smtp(_) => "smtp",
            Service::Pop3(_) => "pop3",
            Service::Imap(_) => "imap",
            Service::Web(_) => "http",
        }
    }

    async fn serve(self, stream: BoxStream, tls: bool, info: ConnInfo, shutdown: Shutdown) {
        match self {
            // Each boxed on its own: a connection's task then holds its own protocol's
            // session, not a future as large as the largest of the four.
            Service::Smtp(s) => Box::pin(smtp_server::serve(s, stream, tls, info, shutdown)).await,
            Service::Pop3(s) => Box::pin(pop3_server::serve(s, stream, tls, info, shutdown)).await,
            Service::Imap(s) => Box::pin(imap_server::serve(s, stream, tls, info, shutdown)).await,
            Service::Web(s) => Box::pin(web::serve(s, stream, tls, info, shutdown)).await,
        }
    }
}

/// A whole HTTP/1.1 response that closes the connection, sent before the request is read.
fn http_refusal(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 60\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One bound socket of one listener.
pub struct Listener {
    /// The listener's key in `[listen]`.
    pub name: &'static str,
    pub addr: SocketAddr,
    /// `Some` for implicit-TLS listeners (RFC 8314): the handshake comes before the greeting.
    pub implicit_tls: Option<TlsAcceptor>,
    pub service: Service,
    socket: TcpListener,
}

/// What all accept loops share.
pub struct Context {
    pub hostname: String,
    pub limits: Arc<ConnLimits>,
    pub tracker: TaskTracker,
    pub shutdown: Shutdown,
    pub tls_handshake_timeout: Duration,
    /// Refuses banned addresses at connect (`None`: the password-guessing defence is off).
    pub guard: Option<Arc<auth::LoginGuard>>,
    /// ACME TLS-ALPN-01 certificates in progress, answered on the implicit-TLS ports.
    pub alpn_challenges: Arc<crate::cert_resolver::AlpnChallenges>,
}

/// Binds `addr` for the listener `name`, with an error message that says how to fix it.
pub fn bind(
    name: &'static str,
    addr: SocketAddr,
    implicit_tls: Option<TlsAcceptor>,
    service: Service,
) -> anyhow::Result<Listener> {
    let socket = bind_socket(addr).map_err(|e| anyhow::anyhow!(bind_error(name, addr, &e)))?;
    // With port 0 (tests) the kernel picks the port; report the real one.
    let addr = socket.local_addr().unwrap_or(addr);
    Ok(Listener {
        name,
        addr,
        implicit_tls,
        service,
        socket,
    })
}

/// Sockets bound before the process gave up root (`privdrop.rs`), by configured address,
/// waiting for [`bind`] to take them.
static PREBOUND: std::sync::Mutex<Vec<(SocketAddr, std::net::TcpListener)>> =
    std::sync::Mutex::new(Vec::new());

/// Binds `addr` now (as root, before the privilege drop); [`bind`] later takes the socket.
pub fn prebind(addr: SocketAddr) -> io::Result<()> {
    let socket = new_socket(addr)?;
    PREBOUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((addr, socket));
    Ok(())
}

fn bind_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    let prebound = {
        let mut list = PREBOUND.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .position(|(a, _)| *a == addr)
            .map(|i| list.swap_remove(i).1)
    };
    match prebound {
        Some(socket) => TcpListener::from_std(socket),
        None => TcpListener::from_std(new_socket(addr)?),
    }
}

fn new_socket(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting must not fail while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `[::]:25` means IPv6 only, so that `0.0.0.0:25` can be listed beside it.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The one-line message for a port that cannot be bound.
pub fn bind_error(name: &str, addr: SocketAddr, e: &io::Error) -> String {
    let head = format!("cannot listen on {addr} for {name}");
    match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "{head}: permission denied — run as root, grant CAP_NET_BIND_SERVICE \
             (setcap cap_net_bind_service=+ep yubin), or change [listen] in the config"
        ),
        io::ErrorKind::AddrInUse => format!(
            "{head}: address in use — another server is using it; stop that server, \
             or change or empty [listen] {name} in the config"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "{head}: address not available — no network interface has this address; \
             change [listen] {name} in the config"
        ),
        _ => format!("{head}: {e}"),
    }
}

/// Accepts connections until shutdown, then drops the socket (no new connections).
pub async fn accept_loop(listener: Listener, ctx: Arc<Context>) {
    // Registered here, after the metrics recorder was installed (`serve.rs`).
    let metrics = telemetry::ConnMetrics::new(listener.service.protocol(), listener.name);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => break,
            r = listener.socket.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => handle(&listener, &ctx, &metrics, stream, peer),
            Err(e) => {
                // EMFILE, ENFILE, ECONNABORTED…: none is fatal to the listener.
                tracing::warn!(listener = listener.name, addr = %listener.addr, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    tracing::info!(listener = listener.name, addr = %listener.addr, "stopped accepting connections");
}

fn handle(
    listener: &Listener,
    ctx: &Arc<Context>,
    metrics: &telemetry::ConnMetrics,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    // Replies are small and interactive: do not wait for Nagle to fill packets.
    let _ = stream.set_nodelay(true);
    let guard = match ctx.limits.try_acquire(peer.ip()) {
        Ok(guard) => guard,
        Err(why) => {
            metrics.refused(match why {
                Refusal::TooManyTotal | Refusal::TooManyFromIp => telemetry::ConnRefusal::TooMany,
                Refusal::ConnectionRate => telemetry::ConnRefusal::Rate,
            });
            refuse(listener, ctx, stream, peer, id, why);
            return;
        }
    };
    let slot = ConnSlot::new(guard);
    let info = ConnInfo {
        id,
        peer,
        local: stream.local_addr().unwrap_or(listener.addr),
        listener: listener.name,
        slot: slot.clone(),
    };
    tracing::debug!(conn = id, %peer, listener = listener.name, "connection accepted");
    let service = listener.service.clone();
    let acceptor = listener.implicit_tls.clone();
    let shutdown = ctx.shutdown.clone();
    let handshake_timeout = ctx.tls_handshake_timeout;
    let shared = Arc::clone(ctx);
    let open = metrics.accepted();
    let metrics = metrics.clone();
    ctx.tracker.spawn(async move {
        // Counted as open until the task ends, however it ends.
        let _open = open;
        // However the task ends (return, panic, cancellation), the slot is given back.
        let _release = ReleaseOnDrop(slot);
        // Checked before the TLS handshake; the refusal is sent after it, so that it can be
        // read on an implicit-TLS port too.
        let ban = match &shared.guard {
            Some(g) => g.banned(peer.ip()).await,
            None => None,
        };
        let (stream, tls): (BoxStream, bool) = match acceptor {
            None => (Box::new(stream), false),
            Some(acceptor) => {
                // The wait for a turn (server_kit::tls_gate) counts toward the timeout.
                let accept = async {
                    let _turn = server_kit::tls_gate::permit().await;
                    crate::cert_resolver::accept(&acceptor, &shared.alpn_challenges, stream).await
                };
                // Boxed, like the session below: the task then holds only the state of the
                // step it is in, not the larger of the two for the connection's whole life.
                let handshake = tokio::time::timeout(handshake_timeout, Box::pin(accept));
                let result = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = handshake => r,
                };
                match result {
                    Ok(Ok(Accepted::Stream(tls))) => (tls, true),
                    Ok(Ok(Accepted::AcmeValidation)) => {
                        tracing::info!(conn = id, %peer, "answered an ACME TLS-ALPN-01 validation");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(conn = id, %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(conn = id, %peer, "TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        if let Some(ban) = ban {
            metrics.refused(telemetry::ConnRefusal::Banned);
            let until = auth::format_time(ban.until);
            tracing::info!(event = %"refused", conn = id, ip = %ban.ip, listener = info.listener, until = %until, reason = %ban.reason, "connection refused: address banned");
            let line = service.banned(&shared.hostname, &until);
            let mut stream = stream;
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
                stream.write_all(&line).await?;
                stream.shutdown().await
            })
            .await;
            return;
        }
        // `serve` boxes the session (a task's size is its future's largest state).
        service.serve(stream, tls, info, shutdown).await;
        tracing::debug!(conn = id, "connection closed");
    });
}

/// Gives a connection slot back when dropped.
struct ReleaseOnDrop(ConnSlot);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Answers an over-limit client with its protocol's one-line refusal and closes.
/// Implicit-TLS listeners just close: a plaintext line would be garbage inside a handshake.
fn refuse(
    listener: &Listener,
    ctx: &Arc<Context>,
    mut stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    why: Refusal,
) {
    let (event, reason) = match why {
        Refusal::TooManyTotal => ("conn_limit", "too many connections in total"),
        Refusal::TooManyFromIp => ("conn_limit", "too many connections from this address"),
        Refusal::ConnectionRate => ("conn_rate", "too many new connections from this address"),
    };
    tracing::info!(target: "audit", event = %event, ip = %peer.ip(), conn = id, %peer, listener = listener.name, reason, "connection refused");
    if listener.implicit_tls.is_some() {
        return;
    }
    let line = listener.service.refusal(&ctx.hostname, why);
    ctx.tracker.spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
            stream.write_all(&line).await?;
            stream.shutdown().await
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_name_the_address_and_the_fix() {
        let addr: SocketAddr = "0.0.0.0:25".parse().unwrap();
        let denied = bind_error(
            "smtp",
            addr,
            &io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(denied.starts_with("cannot listen on 0.0.0.0:25 for smtp: permission denied"));
        assert!(denied.contains("setcap cap_net_bind_service=+ep"));
        assert!(!denied.contains('\n'));
        let busy = bind_error("smtp", addr, &io::Error::from(io::ErrorKind::AddrInUse));
        assert!(busy.contains("another server is using it"), "{busy}");
    }

    #[tokio::test]
    async fn ipv4_and_ipv6_wildcards_can_share_a_port() {
        let v4 = bind_socket("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = v4.local_addr().unwrap().port();
        // `[::]` is IPv6-only, so it does not collide with `0.0.0.0` (skipped without IPv6).
        if let Ok(probe) = std::net::TcpListener::bind("[::1]:0") {
            drop(probe);
            let v6 = bind_socket(SocketAddr::from(([0u16; 8], port))).unwrap();
            assert_eq!(v6.local_addr().unwrap().port(), port);
        }
        let again = bind_socket(SocketAddr::from(([0, 0, 0, 0], port))).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
    }
}
