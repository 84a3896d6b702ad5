//! The session loop: reads bytes, frames commands with [`CommandFramer`], parses them and
//! hands them to the dispatcher; writes the responses the handlers queued.
//!
//! The pieces it drives: the connection ([`Io`], `wire.rs`), the handlers' context and
//! response sink ([`Ctx`], `ctx.rs`), the state machine (`state.rs`) and the one place that
//! decides which command runs in which state (`dispatch.rs`).
//!
//! Invariants:
//! - `Io::inbuf` always starts at the first byte of the next command (or of the SASL / IDLE
//!   line being waited for); a command's bytes are dropped exactly when it was framed.
//! - Responses are queued in `Ctx::out` and flushed before the session waits for input, so a
//!   pipelining client gets them in command order.
//! - Input beyond [`UNCHARGED`] bytes (a literal being received, the command it completes
//!   while it runs) is charged to the process-wide transfer budget; the charge shrinks back
//!   after each command and is dropped with the session.

use std::io;
use std::sync::Arc;

use imap_proto::{
    Code, CommandFramer, Decoded, FrameError, FrameLimits, Response, Status, parse_command,
};
use server_kit::{BoxStream, Charge, Conn, ConnInfo, Shutdown};

use crate::ImapServer;
use crate::ctx::Ctx;
use crate::state::State;
use crate::wire::{Flow, Io};

pub(crate) struct Session {
    pub io: Io,
    pub ctx: Ctx,
    pub state: State,
    /// What the buffered input holds of the transfer budget.
    pub charge: Charge,
}

/// Buffered input up to this size is not charged to the transfer budget: every command line
/// fits (the line limit bounds it per connection), only literals carrying messages count.
pub(crate) const UNCHARGED: usize = 64 * 1024;

pub(crate) async fn run(
    server: Arc<ImapServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    let limits = frame_limits(&server.config, false);
    let mut s = Session {
        io: Io {
            conn: Conn::new(stream, tls),
            inbuf: Vec::new(),
            framer: CommandFramer::new(limits),
            shutdown,
            preauth: true,
            command_deadline: None,
        },
        charge: server.config.transfer_budget.charge(),
        ctx: Ctx::new(Arc::clone(&server), info),
        state: State::NotAuthenticated,
    };
    let result = s.command_loop().await;
    let write_timeout = s
        .ctx
        .info
        .slot
        .closing_timeout(s.ctx.server.config.idle_timeout);
    let _ = tokio::time::timeout(write_timeout, s.io.conn.close()).await;
    tracing::info!(
        conn = s.ctx.info.id,
        peer = %s.ctx.info.peer,
        listener = s.ctx.info.listener,
        tls = s.io.conn.is_tls(),
        error = result.err().map(|e| e.to_string()),
        "imap session closed"
    );
}

impl Session {
    async fn command_loop(&mut self) -> io::Result<()> {
        // RFC 9051 §7.1.1: greeting with a CAPABILITY response code saves a round trip.
        let caps = crate::cmd::any::capabilities(&self.ctx, &self.io, &self.state);
        self.ctx
            .status(Status::ok(None, "yubin IMAP ready").with_code(Code::Capability(caps)));
        loop {
            let decoded = self.io.framer.decode(&self.io.inbuf);
            match decoded {
                Ok(Decoded::Complete {
                    line_with_literals,
                    consumed,
                }) => {
                    let parsed = parse_command(line_with_literals);
                    self.io.inbuf.drain(..consumed);
                    self.io.command_deadline = None;
                    let begun = std::time::Instant::now();
                    let flow = match parsed {
                        Ok(cmd) => {
                            let index = crate::metrics::COMMANDS
                                .index_of(crate::metrics::command_name(&cmd.body));
                            let flow = if matches!(cmd.body, imap_proto::CommandBody::Idle) {
                                self.command_idle(cmd).await
                            } else {
                                // Boxed: the dispatch future is as large as the largest
                                // command's state (several KiB). Inline, every session would
                                // carry that for its whole life; boxed, only while a command
                                // runs. IDLE, which lasts, has its own small future.
                                Box::pin(self.command(cmd)).await
                            };
                            crate::metrics::COMMANDS.record(index, begun.elapsed());
                            let flow = flow?;
                            self.switch_limits_at_login();
                            if matches!(flow, Flow::Continue) && self.account_gone() {
                                self.ctx.status(Status::bye(crate::state::ACCOUNT_GONE));
                                Flow::Close
                            } else {
                                flow
                            }
                        }
                        Err(e) => {
                            let text = match &e {
                                imap_proto::ParseError::MissingTag => {
                                    "malformed command".to_string()
                                }
                                other => other.to_string(),
                            };
                            self.ctx.status(Status::bad(e.tag().cloned(), text));
                            let other = crate::metrics::COMMANDS.index_of(crate::metrics::OTHER);
                            crate::metrics::COMMANDS.record(other, begun.elapsed());
                            Flow::Continue
                        }
                    };
                    if let Flow::Close = flow {
                        // The client may reconnect as soon as it reads the last reply: its
                        // connection slot must be free by then.
                        self.ctx.info.slot.release();
                        return self.final_flush().await;
                    }
                    // The command ran: its bytes are gone from the budget.
                    self.recharge();
                    // Send answers in pieces while a pipelining client keeps sending.
                    if self.ctx.pending_output() > 64 * 1024 {
                        self.io.flush(&mut self.ctx).await?;
                    }
                }
                Ok(Decoded::Incomplete) => {
                    // RFC 5465 §3.1: after NOTIFY, events are sent between commands too.
                    let waited =
                        if self.io.inbuf.is_empty() && crate::cmd::notify::active(&self.state) {
                            // Boxed: NOTIFY's wait is the largest state of this loop, and
                            // only sessions that asked for NOTIFY need it.
                            Box::pin(crate::cmd::notify::wait(
                                &mut self.io,
                                &mut self.ctx,
                                &mut self.state,
                            ))
                            .await?
                        } else {
                            self.io.read_more(&mut self.ctx).await?
                        };
                    if waited.is_err() {
                        return Ok(());
                    }
                    // (A command being dropped holds nothing: its bytes go at the next decode.)
                    if !self.io.framer.is_discarding() && !self.charge_input(0) {
                        // Over the budget in the middle of a (non-synchronising) literal: its
                        // bytes are dropped as they come, then the command is refused.
                        let (tag, skip) = self.io.framer.abandon(&self.io.inbuf);
                        self.io.inbuf.drain(..skip.min(self.io.inbuf.len()));
                        self.refuse_over_budget(tag);
                    }
                }
                Ok(Decoded::NeedsContinuation { literal_size }) => {
                    let size = usize::try_from(literal_size).unwrap_or(usize::MAX);
                    if !self.charge_input(size) {
                        // RFC 9051 §7.5: a server may answer NO instead of "+"; the client
                        // then does not send the literal.
                        let (tag, skip) = self.io.framer.refuse_literal(&self.io.inbuf);
                        self.io.inbuf.drain(..skip.min(self.io.inbuf.len()));
                        self.refuse_over_budget(tag);
                        continue;
                    }
                    // RFC 9051 §7.5: the client waits for this before sending the literal.
                    self.ctx.push(Response::Continue("Ready".into()));
                    if self.io.read_more(&mut self.ctx).await?.is_err() {
                        return Ok(());
                    }
                }
                Ok(Decoded::Discard { consumed }) => {
                    self.io.inbuf.drain(..consumed.min(self.io.inbuf.len()));
                }
                Err(e) => {
                    self.io.inbuf.drain(..e.skip().min(self.io.inbuf.len()));
                    self.ctx.status(frame_error_status(&e));
                    if let (
                        FrameError::LiteralTooLarge { non_sync: true, .. },
                        State::NotAuthenticated,
                    ) = (&e, &self.state)
                    {
                        // RFC 7888 §4: the server may reject a non-synchronising literal, but
                        // its bytes come anyway; before login there is no reason to read
                        // megabytes from an anonymous client, so the connection ends.
                        self.ctx
                            .status(Status::bye("literal too large before login"));
                        self.ctx.info.slot.release();
                        return self.final_flush().await;
                    }
                }
            }
        }
    }

    /// Makes the charge cover the buffered input plus `coming` announced bytes (nothing while
    /// they fit in [`UNCHARGED`]); `false` when the budget has no room. It only grows: an
    /// accepted literal keeps its whole size charged until its command has run.
    fn charge_input(&mut self, coming: usize) -> bool {
        let total = self.io.inbuf.len().saturating_add(coming);
        total <= UNCHARGED || self.charge.reserve(total)
    }

    /// After a command: only what is still buffered stays charged.
    fn recharge(&mut self) {
        self.charge.shrink_to(0);
        // Pipelined input the budget has no room for: the command it begins is abandoned at
        // the next read (the check after `read_more`).
        let _ = self.charge_input(0);
    }

    /// The answer to a command whose message data the transfer budget has no room for: a
    /// temporary condition (RFC 9051 §7.1 LIMIT; the client may retry later).
    fn refuse_over_budget(&mut self, tag: Option<imap_proto::Tag>) {
        tracing::info!(
            conn = self.ctx.info.id,
            "imap: literal refused, transfer budget used up"
        );
        self.recharge();
        self.ctx.status(
            Status::no(tag, "server busy receiving other messages, try again later")
                .with_code(Code::Limit),
        );
    }

    /// The logged-in account was deleted while the session ran (its change feed closed after
    /// `store::Change::AccountDeleted`): nothing it could do would reach a mailbox any more.
    fn account_gone(&self) -> bool {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => u.changes.is_closed(),
            _ => false,
        }
    }

    /// Sends the last replies after the slot was given back, within
    /// [`server_kit::CLOSING_TIMEOUT`].
    async fn final_flush(&mut self) -> io::Result<()> {
        match tokio::time::timeout(server_kit::CLOSING_TIMEOUT, self.io.flush(&mut self.ctx)).await
        {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "final write timed out",
            )),
        }
    }

    /// Once logged in, commands may carry messages (APPEND): the framer gets the full limits.
    fn switch_limits_at_login(&mut self) {
        let logged_in = matches!(self.state, State::Authenticated(_) | State::Selected(..));
        self.io.preauth = !logged_in;
        let limits = frame_limits(&self.ctx.server.config, logged_in);
        if *self.io.framer.limits() != limits {
            self.io.framer.set_limits(limits);
        }
    }
}

/// The framer's limits. Before login only what LOGIN needs: literals up to
/// `max_preauth_literal` (user name, password), a command of two such literals and a line.
fn frame_limits(config: &crate::ImapConfig, logged_in: bool) -> FrameLimits {
    if logged_in {
        FrameLimits {
            max_line: config.max_line_length,
            max_literal: config.max_message_size,
            max_command: config.max_command_size,
            // RFC 7888 §3: LITERAL+ — non-synchronising literals up to the other limits.
            max_non_sync_literal: u64::MAX,
        }
    } else {
        let literal = config.max_preauth_literal.min(config.max_message_size);
        FrameLimits {
            max_line: config.max_line_length,
            max_literal: literal,
            max_command: (config.max_line_length as u64)
                .saturating_add(literal.saturating_mul(2))
                .min(config.max_command_size),
            max_non_sync_literal: u64::MAX,
        }
    }
}

/// The answer to a command refused by the framer.
fn frame_error_status(e: &FrameError) -> Status {
    let tag = e.tag().cloned();
    match e {
        FrameError::LineTooLong { .. } => Status::bad(tag, "line too long"),
        // RFC 9051 §7.1: TOOBIG for a literal over the limit (RFC 7889 for APPEND).
        FrameError::LiteralTooLarge { .. } => {
            Status::no(tag, "literal too large").with_code(Code::TooBig)
        }
        FrameError::CommandTooLong { .. } => {
            Status::no(tag, "command too long").with_code(Code::TooBig)
        }
    }
}
