//! The session loop: reads bytes, frames commands with [`CommandFramer`], parses them and
//! hands them to the dispatcher; writes the responses the handlers queued.
//!
//! Invariants:
//! - `Io::inbuf` always starts at the first byte of the next command (or of the SASL / IDLE
//!   line being waited for); a command's bytes are dropped exactly when it was framed.
//! - Responses are queued in `Ctx::out` and flushed before the session waits for input, so a
//!   pipelining client gets them in command order.

use std::io;
use std::sync::Arc;

use imap_proto::{
    Code, CommandFramer, Decoded, EncodeOptions, FrameError, FrameLimits, Response, Status,
    parse_command,
};
use server_kit::{BoxStream, Conn, ConnInfo, LineError, Shutdown};

use crate::ImapServer;
use crate::keywords::KnownKeywords;
use crate::state::State;

/// What the session does after a command.
pub(crate) enum Flow {
    Continue,
    Close,
}

/// The connection: socket, received-but-unparsed bytes, framer, shutdown signal.
pub(crate) struct Io {
    pub conn: Conn,
    pub inbuf: Vec<u8>,
    pub framer: CommandFramer,
    pub shutdown: Shutdown,
}

/// Why waiting for input ended without input.
pub(crate) enum Stop {
    /// The peer closed the connection.
    Eof,
    /// Shutdown or autologout; `* BYE` was already queued.
    Bye,
}

/// Per-session facts the handlers need, and the response sink.
pub(crate) struct Ctx {
    pub server: Arc<ImapServer>,
    pub info: ConnInfo,
    out: Vec<u8>,
    /// `ENABLE IMAP4rev2` was done (RFC 9051 §6.3.1): rev2 responses (no RECENT, ESEARCH).
    pub rev2: bool,
    /// Mailbox names and strings in UTF-8 (IMAP4rev2 or UTF8=ACCEPT, RFC 6855 §3).
    pub utf8: bool,
    /// `ENABLE UTF8=ACCEPT` itself was done (for `* ENABLED`, RFC 5161 §3.2).
    pub utf8_enabled: bool,
    /// CONDSTORE is on (RFC 7162 §3.1: after a CONDSTORE-enabling command): HIGHESTMODSEQ at
    /// SELECT, MODSEQ in every untagged FETCH about flags.
    pub condstore: bool,
    /// `ENABLE QRESYNC` was done (RFC 7162 §3.2.3): VANISHED instead of EXPUNGE.
    pub qresync: bool,
    /// The keywords announced in FLAGS for the selected mailbox (`None` when nothing is
    /// selected); every untagged FETCH is checked against it (`keywords.rs`).
    pub keywords: Option<KnownKeywords>,
}

impl Ctx {
    pub fn opts(&self) -> EncodeOptions {
        EncodeOptions { utf8: self.utf8 }
    }

    pub fn push(&mut self, r: Response) {
        let opts = self.opts();
        // RFC 9051 §7.3.5: a keyword is in FLAGS before any FETCH shows it.
        if let Some(first) = self.keywords.as_mut().and_then(|k| k.before(&r)) {
            for f in first {
                f.encode(&mut self.out, opts);
            }
        }
        r.encode(&mut self.out, opts);
    }

    /// The response buffer itself, for a FETCH response written piece by piece around a
    /// streamed body (`cmd/fetch/stream.rs`); [`Ctx::announce_keywords`] goes first.
    pub fn out_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Queues the FLAGS announcement the keywords in `items` need (see [`Ctx::push`]).
    pub fn announce_keywords(&mut self, items: &[imap_proto::FetchItem]) {
        let opts = self.opts();
        if let Some(first) = self.keywords.as_mut().and_then(|k| k.before_items(items)) {
            for f in first {
                f.encode(&mut self.out, opts);
            }
        }
    }

    pub fn data(&mut self, d: imap_proto::Data) {
        self.push(Response::Data(d));
    }

    pub fn status(&mut self, s: Status) {
        self.push(Response::Status(s));
    }

    /// Frees the response buffer when nothing is queued (a session about to wait long).
    pub fn release_buffers(&mut self) {
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    pub fn pending_output(&self) -> usize {
        self.out.len()
    }
}

impl Io {
    /// Sends what is queued. Bounded by the idle timeout so a peer that stops reading cannot
    /// hold the session forever.
    pub async fn flush(&mut self, ctx: &mut Ctx) -> io::Result<()> {
        let timeout = ctx.server.config.idle_timeout;
        let out = std::mem::take(&mut ctx.out);
        let write = async {
            if !out.is_empty() {
                self.conn.write(&out).await?;
            }
            self.conn.flush().await
        };
        let r = match tokio::time::timeout(timeout, write).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        };
        // Keep the allocation for the next response unless it grew large.
        if out.capacity() <= 64 * 1024 {
            ctx.out = out;
            ctx.out.clear();
        }
        r
    }

    /// Flushes, then waits for more bytes from the peer (appended to `inbuf`), for shutdown,
    /// or for the autologout timer — RFC 9051 §5.4.
    pub async fn read_more(&mut self, ctx: &mut Ctx) -> io::Result<Result<(), Stop>> {
        self.flush(ctx).await?;
        if self.inbuf.is_empty() {
            // Idle connections release their buffers.
            self.inbuf = Vec::new();
            self.conn.shrink();
            ctx.release_buffers();
        }
        let timeout = ctx.server.config.idle_timeout;
        let Io {
            conn,
            inbuf,
            shutdown,
            ..
        } = self;
        let r = tokio::select! {
            _ = shutdown.cancelled() => Err(true),
            r = tokio::time::timeout(timeout, fill(conn, inbuf)) => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(LineError::Io(e))) => return Err(e),
                Ok(Err(_)) => return Ok(Err(Stop::Eof)),
                Err(_) => Err(false),
            },
        };
        match r {
            Ok(()) => Ok(Ok(())),
            Err(shutdown) => {
                ctx.status(Status::bye(if shutdown {
                    "server shutting down"
                } else {
                    "autologout; idle for too long"
                }));
                self.flush(ctx).await?;
                Ok(Err(Stop::Bye))
            }
        }
    }

    /// One line (a SASL response), at most `max` octets; `Ok(None)` when it was too long
    /// (it is skipped up to its end).
    pub async fn read_line(
        &mut self,
        ctx: &mut Ctx,
        max: usize,
    ) -> io::Result<Result<Option<Vec<u8>>, Stop>> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self
                .inbuf
                .get(scanned..)
                .and_then(|b| b.iter().position(|&c| c == b'\n'))
            {
                let end = scanned + pos + 1;
                let line: Vec<u8> = self.inbuf.drain(..end).collect();
                return Ok(Ok((line.len() <= max).then_some(line)));
            }
            scanned = self.inbuf.len();
            if scanned > max {
                // Keep nothing of an overlong line but remember it is one.
                self.inbuf.clear();

                loop {
                    if let Err(stop) = self.read_more(ctx).await? {
                        return Ok(Err(stop));
                    }
                    if let Some(pos) = self.inbuf.iter().position(|&c| c == b'\n') {
                        self.inbuf.drain(..=pos);
                        return Ok(Ok(None));
                    }
                    self.inbuf.clear();
                }
            }
            if let Err(stop) = self.read_more(ctx).await? {
                return Ok(Err(stop));
            }
        }
    }
}

/// Moves what the connection received into `inbuf` (reading once if nothing is buffered).
pub(crate) async fn fill(conn: &mut Conn, inbuf: &mut Vec<u8>) -> Result<(), LineError> {
    let n = {
        let bytes = conn.fill_buf().await?;
        inbuf.extend_from_slice(bytes);
        bytes.len()
    };
    conn.consume(n);
    Ok(())
}

pub(crate) struct Session {
    pub io: Io,
    pub ctx: Ctx,
    pub state: State,
}

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
        },
        ctx: Ctx {
            server: Arc::clone(&server),
            info,
            out: Vec::new(),
            rev2: false,
            utf8: false,
            utf8_enabled: false,
            condstore: false,
            qresync: false,
            keywords: None,
        },
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
                    let flow = match parsed {
                        Ok(cmd) => {
                            let flow = self.command(cmd).await?;
                            self.switch_limits_at_login();
                            flow
                        }
                        Err(e) => {
                            let text = match &e {
                                imap_proto::ParseError::MissingTag => {
                                    "malformed command".to_string()
                                }
                                other => other.to_string(),
                            };
                            self.ctx.status(Status::bad(e.tag().cloned(), text));
                            Flow::Continue
                        }
                    };
                    if let Flow::Close = flow {
                        // The client may reconnect as soon as it reads the last reply: its
                        // connection slot must be free by then.
                        self.ctx.info.slot.release();
                        return self.final_flush().await;
                    }
                    // Send answers in pieces while a pipelining client keeps sending.
                    if self.ctx.pending_output() > 64 * 1024 {
                        self.io.flush(&mut self.ctx).await?;
                    }
                }
                Ok(Decoded::Incomplete) => {
                    // RFC 5465 §3.1: after NOTIFY, events are sent between commands too.
                    let waited =
                        if self.io.inbuf.is_empty() && crate::cmd::notify::active(&self.state) {
                            crate::cmd::notify::wait(&mut self.io, &mut self.ctx, &mut self.state)
                                .await?
                        } else {
                            self.io.read_more(&mut self.ctx).await?
                        };
                    if waited.is_err() {
                        return Ok(());
                    }
                }
                Ok(Decoded::NeedsContinuation { .. }) => {
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

/// Maps a store error to the tagged NO — the one place that does (STYLE: one mapping per
/// protocol). RFC 5530 response codes.
pub(crate) fn store_error(tag: &imap_proto::Tag, e: &store::StoreError) -> Status {
    use store::StoreError as E;
    let tag = Some(tag.clone());
    let (code, text) = match e {
        E::NotFound(_) => (Code::NonExistent, "no such mailbox or message"),
        E::Exists(_) => (Code::AlreadyExists, "already exists"),
        E::OverQuota => (Code::OverQuota, "over quota"),
        E::Expunged => (Code::ExpungeIssued, "message was expunged"),
        E::InUse => (Code::InUse, "in use by another session"),
        E::Invalid(_) => (Code::Cannot, "operation refused"),
        E::Temporary(_) => (Code::Unavailable, "temporary failure, try again"),
    };
    if let E::Temporary(why) = e {
        tracing::warn!(error = %why, "imap: store failure");
    }
    Status::no(tag, text).with_code(code)
}
