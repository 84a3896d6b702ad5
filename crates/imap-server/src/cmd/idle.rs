//! IDLE — RFC 2177, RFC 9051 §6.3.13: updates are sent as they happen until `DONE`.
//! Bytes pipelined after `DONE` stay in the input buffer and are run as the next commands.

use std::io;

use imap_proto::{Response, Status, Tag, parse_idle_done};
use store::RecvError;

use crate::ctx::Ctx;
use crate::state::{Selected, User, sync, sync_with};
use crate::wire::{Io, Stop, fill};

pub(crate) async fn idle(
    io: &mut Io,
    ctx: &mut Ctx,
    tag: Tag,
    user: &mut User,
    mut sel: Option<&mut Selected>,
) -> io::Result<Result<Status, Stop>> {
    ctx.push(Response::Continue("idling".into()));
    // The syncs below are boxed: this future lives as long as the IDLE, and inline they
    // would make it as large as their largest state for all that time.
    if let Some(sel) = sel.as_deref_mut() {
        Box::pin(sync(ctx, user, sel, true)).await;
    }
    // RFC 9051 §5.4: the autologout timer bounds IDLE too; each IDLE re-arms it.
    let deadline = tokio::time::Instant::now() + ctx.server.config.idle_timeout;
    // RFC 2177 §3: the server may send untagged responses at any time during IDLE; one every
    // few minutes keeps NAT boxes from dropping a quiet connection.
    let keepalive = ctx.server.config.idle_keepalive;
    let mut next_keepalive =
        (!keepalive.is_zero()).then(|| tokio::time::Instant::now() + keepalive);
    let max = ctx.server.config.max_line_length;
    loop {
        if let Some(pos) = io.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = io.inbuf.drain(..=pos).collect();
            return Ok(Ok(if parse_idle_done(&line) {
                Status::ok(Some(tag), "IDLE terminated")
            } else {
                // RFC 2177 §3: anything but DONE ends IDLE with BAD.
                Status::bad(Some(tag), "expected DONE")
            }));
        }
        if io.inbuf.len() > max {
            io.inbuf.clear();
            return Ok(Ok(Status::bad(Some(tag), "expected DONE")));
        }
        io.flush(ctx).await?;
        // An idling session may wait for hours: hold no buffers meanwhile.
        ctx.release_buffers();
        if io.inbuf.is_empty() {
            io.inbuf = Vec::new();
            io.conn.shrink();
        }
        let Io {
            conn,
            inbuf,
            shutdown,
            ..
        } = &mut *io;
        enum Ev {
            Input(Result<(), server_kit::LineError>),
            Change(Result<store::ChangeEvent, RecvError>),
            Bye(&'static str),
            Keepalive,
        }
        let keepalive_due = async {
            match next_keepalive {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let ev = tokio::select! {
            _ = shutdown.cancelled() => Ev::Bye("server shutting down"),
            _ = tokio::time::sleep_until(deadline) => Ev::Bye("autologout; idle for too long"),
            _ = keepalive_due => Ev::Keepalive,
            r = fill(conn, inbuf) => Ev::Input(r),
            c = user.changes.recv() => Ev::Change(c),
        };
        match ev {
            Ev::Bye(text) => {
                ctx.status(Status::bye(text));
                io.flush(ctx).await?;
                return Ok(Err(Stop::Bye));
            }
            Ev::Keepalive => {
                ctx.status(Status::ok(None, "Still here"));
                next_keepalive = Some(tokio::time::Instant::now() + keepalive);
            }
            Ev::Input(Ok(())) => {}
            Ev::Input(Err(server_kit::LineError::Io(e))) => return Err(e),
            Ev::Input(Err(_)) => return Ok(Err(Stop::Eof)),
            // The account was deleted: the session ends (RFC 9051 §7.1.5 BYE).
            Ev::Change(Err(RecvError::Closed)) => {
                ctx.status(Status::bye(crate::state::ACCOUNT_GONE));
                io.flush(ctx).await?;
                return Ok(Err(Stop::Bye));
            }
            Ev::Change(c) if user.notify.active() => {
                Box::pin(crate::cmd::notify::idle_event(
                    ctx,
                    user,
                    sel.as_deref_mut(),
                    c,
                ))
                .await;
            }
            Ev::Change(c) => {
                let Some(sel) = sel.as_deref_mut() else {
                    continue;
                };
                match c {
                    Ok(ev) => Box::pin(sync_with(ctx, user, sel, true, Some(ev))).await,
                    Err(_) => {
                        sel.resync = true;
                        Box::pin(sync(ctx, user, sel, true)).await;
                    }
                }
            }
        }
    }
}
