//! The connection as the session and the commands that read on their own (AUTHENTICATE,
//! IDLE, NOTIFY) use it: the socket, bytes received and not yet framed, the command framer,
//! the shutdown signal; sending what [`Ctx`] queued and waiting for more input.

use std::io;

use imap_proto::{CommandFramer, Status};
use server_kit::{Conn, LineError, Shutdown};

use crate::ctx::Ctx;

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
    /// Before login: a command (or AUTHENTICATE response) must arrive whole within the idle
    /// timeout of its first bytes, so a client that trickles a byte now and then (slowloris)
    /// cannot hold its connection. After login only the wait for each piece is bounded (a
    /// large APPEND over a slow link is legitimate).
    pub preauth: bool,
    /// When the partial command in `inbuf` must be complete (`preauth` only).
    pub command_deadline: Option<tokio::time::Instant>,
}

/// Why waiting for input ended without input.
pub(crate) enum Stop {
    /// The peer closed the connection.
    Eof,
    /// Shutdown or autologout; `* BYE` was already queued.
    Bye,
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
        let mut timeout = ctx.server.config.idle_timeout;
        if !self.preauth || self.inbuf.is_empty() {
            self.command_deadline = None;
        } else {
            let deadline = *self
                .command_deadline
                .get_or_insert_with(|| tokio::time::Instant::now() + timeout);
            timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        }
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
                self.command_deadline = None;
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
