//! Not-authenticated state — RFC 9051 §6.2: STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN,
//! with SASL-IR, RFC 4959).

use std::io;

use imap_proto::{Atom, Code, Response, Secret, Status, Tag};

use crate::ctx::Ctx;
use crate::state::{State, User};
use crate::wire::{Flow, Io, Stop};

/// RFC 9051 §6.2.1: tagged OK, then the handshake. Bytes pipelined after the command are
/// discarded (by `Conn::start_tls` and here); the client must ask for capabilities again.
pub(crate) async fn starttls(io: &mut Io, ctx: &mut Ctx, tag: Tag) -> io::Result<Flow> {
    let acceptor = match (&ctx.server.tls, io.conn.is_tls()) {
        (_, true) => {
            ctx.status(Status::bad(Some(tag), "TLS is already active"));
            return Ok(Flow::Continue);
        }
        (None, false) => {
            ctx.status(Status::bad(Some(tag), "STARTTLS not available"));
            return Ok(Flow::Continue);
        }
        (Some(a), false) => a.clone(),
    };
    ctx.status(Status::ok(Some(tag), "Begin TLS negotiation now"));
    io.flush(ctx).await?;
    let discarded = io.inbuf.len();
    io.inbuf = Vec::new();
    io.framer.reset();
    let timeout = ctx.server.config.tls_handshake_timeout;
    match tokio::time::timeout(timeout, io.conn.start_tls(&acceptor)).await {
        Ok(Ok(n)) => {
            if discarded + n > 0 {
                tracing::info!(
                    conn = ctx.info.id,
                    discarded = discarded + n,
                    "imap: discarded plaintext pipelined after STARTTLS"
                );
            }
            Ok(Flow::Continue)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

/// Whether a password may be sent on this connection; `NO [PRIVACYREQUIRED]` if not
/// (RFC 9051 §6.2.3, RFC 8314 §3).
fn plaintext_refused(ctx: &Ctx, tls: bool, tag: &Tag) -> Option<Status> {
    let ok = ctx.server.config.plaintext_auth.permits(&ctx.info, tls);
    (!ok).then(|| {
        Status::no(Some(tag.clone()), "use TLS before sending a password")
            .with_code(Code::PrivacyRequired)
    })
}

/// Checks the credentials; on success the new state and the tagged OK (with the
/// post-login capabilities, RFC 9051 §6.2.3).
async fn check(
    ctx: &mut Ctx,
    tag: Tag,
    username: &str,
    password: &str,
    mechanism: &'static str,
) -> (Option<State>, Status) {
    let peer = ctx.info.peer.ip();
    let result = ctx
        .server
        .auth
        .authenticate(username, password, "imap", peer)
        .await;
    auth::count_attempt("imap", mechanism, &result);
    match result {
        Ok(a) => {
            let changes = match ctx.server.store.subscribe(a.account).await {
                Ok(feed) => feed,
                Err(e) => {
                    tracing::warn!(conn = ctx.info.id, error = %e, "imap: cannot subscribe");
                    return (
                        None,
                        Status::no(Some(tag), "try again later").with_code(Code::Unavailable),
                    );
                }
            };
            let user = User {
                account: a.account,
                address: a.address.to_string(),
                changes,
                notify: Default::default(),
            };
            tracing::info!(conn = ctx.info.id, user = %user.address, "imap: logged in");
            (
                Some(State::Authenticated(user)),
                Status::ok(Some(tag), "logged in"),
            )
        }
        Err(auth::AuthError::Invalid) => (
            None,
            Status::no(Some(tag), "invalid credentials").with_code(Code::AuthenticationFailed),
        ),
        // RFC 5530 §3: UNAVAILABLE, a temporary refusal; the credentials were not checked.
        Err(auth::AuthError::Banned { until }) => (
            None,
            Status::no(
                Some(tag),
                format!(
                    "too many failed logins from your address; try again after {}",
                    auth::format_time(until)
                ),
            )
            .with_code(Code::Unavailable),
        ),
        Err(auth::AuthError::Temporary) => (
            None,
            Status::no(Some(tag), "try again later").with_code(Code::Unavailable),
        ),
    }
}

/// RFC 9051 §6.2.3
pub(crate) async fn login(
    tls: bool,
    ctx: &mut Ctx,
    tag: Tag,
    username: &[u8],
    password: &Secret,
) -> (Option<State>, Status) {
    if let Some(refused) = plaintext_refused(ctx, tls, &tag) {
        return (None, refused);
    }
    let (Ok(user), Ok(pass)) = (
        std::str::from_utf8(username),
        std::str::from_utf8(password.expose()),
    ) else {
        return (
            None,
            Status::no(Some(tag), "invalid credentials").with_code(Code::AuthenticationFailed),
        );
    };
    check(ctx, tag, user, pass, "password").await
}

/// One SASL step: sends `+ challenge`, reads the client's line. `Err(Some(status))` ends the
/// exchange with that answer; `Err(None)` means the connection is over.
async fn sasl_step(
    io: &mut Io,
    ctx: &mut Ctx,
    tag: &Tag,
    challenge: &str,
) -> io::Result<Result<Vec<u8>, Option<Status>>> {
    ctx.push(Response::Continue(challenge.to_string()));
    let max = ctx.server.config.max_line_length;
    let line = match io.read_line(ctx, max).await? {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(Err(Some(Status::bad(Some(tag.clone()), "line too long")))),
        Err(Stop::Eof | Stop::Bye) => return Ok(Err(None)),
    };
    Ok(decode(tag, &line))
}

fn decode(tag: &Tag, text: &[u8]) -> Result<Vec<u8>, Option<Status>> {
    let text = String::from_utf8_lossy(text);
    // RFC 9051 §6.2.2: `*` cancels, answered with BAD.
    sasl::decode_response(&text).map_err(|e| {
        Some(match e {
            sasl::SaslError::Cancelled => {
                Status::bad(Some(tag.clone()), "authentication cancelled")
            }
            _ => Status::bad(Some(tag.clone()), "invalid base64"),
        })
    })
}

/// RFC 9051 §6.2.2 with SASL-IR (RFC 4959). `Ok(None)` when the connection ended mid-way.
pub(crate) async fn authenticate(
    io: &mut Io,
    ctx: &mut Ctx,
    tag: Tag,
    mechanism: &Atom,
    initial: Option<&Secret>,
) -> io::Result<Option<(Option<State>, Status)>> {
    let plain = mechanism.eq_ignore_case("PLAIN");
    if !plain && !mechanism.eq_ignore_case("LOGIN") {
        return Ok(Some((
            None,
            Status::no(Some(tag), "unsupported mechanism").with_code(Code::Cannot),
        )));
    }
    if let Some(refused) = plaintext_refused(ctx, io.conn.is_tls(), &tag) {
        return Ok(Some((None, refused)));
    }
    let first = match initial {
        Some(ir) => decode(&tag, ir.expose()),
        None if plain => sasl_step(io, ctx, &tag, "").await?,
        None => sasl_step(io, ctx, &tag, sasl::LOGIN_USERNAME_CHALLENGE).await?,
    };
    let first = match first {
        Ok(b) => b,
        Err(Some(s)) => return Ok(Some((None, s))),
        Err(None) => return Ok(None),
    };
    let failed = |tag: Tag| {
        (
            None,
            Status::no(Some(tag), "invalid credentials").with_code(Code::AuthenticationFailed),
        )
    };
    let (username, password) = if plain {
        match sasl::parse_plain(&first) {
            // An authorization identity other than the user is not supported.
            Ok(c) if c.authzid.as_ref().is_none_or(|z| *z == c.username) => {
                (c.username, c.password)
            }
            _ => return Ok(Some(failed(tag))),
        }
    } else {
        let Ok(username) = sasl::parse_login_field(&first) else {
            return Ok(Some(failed(tag)));
        };
        let pass = match sasl_step(io, ctx, &tag, sasl::LOGIN_PASSWORD_CHALLENGE).await? {
            Ok(b) => b,
            Err(Some(s)) => return Ok(Some((None, s))),
            Err(None) => return Ok(None),
        };
        let Ok(password) = sasl::parse_login_field(&pass) else {
            return Ok(Some(failed(tag)));
        };
        (username, password)
    };
    let mechanism = if plain { "PLAIN" } else { "LOGIN" };
    Ok(Some(check(ctx, tag, &username, &password, mechanism).await))
}
