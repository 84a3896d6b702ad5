//! Receiving message content: DATA (RFC 5321 §4.1.1.4) and BDAT chunks (RFC 3030).
//!
//! Invariants:
//! - Only `CRLF . CRLF` ends DATA (see `smtp_proto::DataScanner`, CVE-2023-51766).
//! - An oversize message is read to its end and discarded, then refused with 552, so the
//!   framing is never lost (RFC 1870 §6.3).
//! - Every BDAT chunk is consumed whatever the reply, or its bytes would be read as commands.
//! - Memory holds at most `max_message_size` plus one read buffer per session, and all
//!   sessions together at most `transfer_budget` of message data: content is charged to it as
//!   it arrives and given back when the transaction ends (stored, refused or dropped).
//! - DATA and BDAT both get their content in pieces of [`PIECE`] octets, each within the data
//!   timeout, so a client that trickles a byte now and then (slowloris) is dropped after the
//!   timeout rather than holding its connection slot for ever; the slowest client served
//!   still sends `PIECE` octets per timeout (109 octets/s with the default 600 s).

use std::io;
use std::time::Duration;

use server_kit::Conn;
use smtp_proto::{DataScanner, Reply};

use crate::session::{Flow, Session, State, io_error};

/// Message content (DATA or BDAT chunks) is read in pieces of this size, each under the data
/// timeout.
const PIECE: usize = 64 * 1024;

/// The reply for content over the limit. RFC 1870 §6.3 / RFC 3463 X.3.4.
fn too_big() -> Reply {
    telemetry::smtp_rejected(telemetry::Rejection::Size);
    Reply::new(
        552,
        "5.3.4",
        "Message size exceeds fixed maximum message size",
    )
}

/// The reply for content over the process-wide transfer budget: a temporary condition, the
/// client retries later. RFC 5321 §4.5.3.1.10 / RFC 3463 §3.4 (X.3.1, system storage).
fn no_room() -> Reply {
    Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
}

fn timeout_reply(host: &str) -> Reply {
    // RFC 5321 §4.5.3.2.6: close when the data block does not arrive in time.
    Reply::new(421, "4.4.2", format!("{host} Error: timeout exceeded"))
}

/// Reads `n` octets of a BDAT chunk into `out` (or drops them when `out` is None), in pieces,
/// each with `timeout`. Returns false on timeout.
async fn read_chunk(
    conn: &mut Conn,
    mut out: Option<&mut Vec<u8>>,
    mut n: u64,
    timeout: Duration,
) -> io::Result<bool> {
    while n > 0 {
        let piece = usize::try_from(n).unwrap_or(PIECE).min(PIECE);
        // RFC 2920 §3.2 (7): pending replies (to a pipelined MAIL, RCPT or earlier chunk) go
        // out before the server waits for input, or a client that waits for them before
        // sending the rest of the chunk would deadlock with us.
        if conn.buffered_bytes().len() < piece {
            conn.flush().await?;
        }
        let read = match out.as_deref_mut() {
            Some(buf) => tokio::time::timeout(timeout, conn.read_exact_into(piece, buf)).await,
            None => tokio::time::timeout(timeout, conn.skip(piece)).await,
        };
        match read {
            Err(_) => return Ok(false),
            Ok(r) => r.map_err(io_error)?,
        }
        n -= piece as u64;
    }
    Ok(true)
}

impl Session {
    /// DATA, after the caller checked there is a transaction with recipients.
    pub(crate) async fn receive_data(&mut self) -> io::Result<Flow> {
        let State::Mail(helo, txn) = std::mem::replace(&mut self.state, State::Connected) else {
            return self.answer(503, "5.5.1", "Need MAIL and RCPT").await;
        };
        let cfg = self.server.config.clone();
        self.reply(Reply::plain(354, "End data with <CR><LF>.<CR><LF>"))
            .await?;
        self.conn.flush().await?;

        let mut scanner = DataScanner::new();
        let mut body = Vec::new();
        let mut oversize = false;
        // RFC 5321 §4.5.3.2.6 bounds the wait for each block of data: a whole PIECE (or the
        // end of data) must arrive within the data timeout, not just any single byte.
        let mut piece_deadline = tokio::time::Instant::now() + cfg.data_timeout;
        let mut piece_read = 0;
        // Held until the message is stored or refused (dropped with this frame).
        let mut charge = cfg.transfer_budget.charge();
        let mut no_budget = false;
        loop {
            let buf = match tokio::time::timeout_at(piece_deadline, self.conn.fill_buf()).await {
                Err(_) => {
                    self.reply(timeout_reply(&cfg.hostname)).await?;
                    return Ok(Flow::Close);
                }
                Ok(r) => r.map_err(io_error)?,
            };
            let progress = scanner.feed(buf, &mut body);
            self.conn.consume(progress.consumed);
            piece_read += progress.consumed;
            if piece_read >= PIECE {
                piece_read = 0;
                piece_deadline = tokio::time::Instant::now() + cfg.data_timeout;
            }
            if body.len() > cfg.max_message_size {
                // Keep reading to the end of data, holding nothing.
                oversize = true;
                body = Vec::new();
            } else if !no_budget && !charge.reserve(body.len()) {
                // Over the process-wide budget: read to the end of data holding nothing.
                no_budget = true;
                body = Vec::new();
                charge.shrink_to(0);
            }
            if no_budget {
                body.clear();
            }
            if progress.done {
                break;
            }
        }
        if oversize {
            tracing::info!(conn = self.info.id, "smtp: message over size limit refused");
            self.state = State::Ready(helo);
            self.reply(too_big()).await?;
            self.conn.flush().await?;
            return Ok(Flow::Continue);
        }
        if no_budget {
            tracing::info!(
                conn = self.info.id,
                "smtp: message refused, transfer budget used up"
            );
            self.state = State::Ready(helo);
            self.reply(no_room()).await?;
            self.conn.flush().await?;
            return Ok(Flow::Continue);
        }
        let flow = self.deliver(helo, txn, body).await;
        drop(charge);
        flow
    }

    /// Reads and drops a BDAT chunk that cannot be kept, drops the transaction (later chunks
    /// get 503, RFC 3030 §3) and answers `reply`; a client too slow to send the chunk is
    /// closed instead.
    async fn refuse_chunk(&mut self, size: u64, reply: Reply) -> io::Result<Flow> {
        let timeout = self.server.config.data_timeout;
        if !read_chunk(&mut self.conn, None, size, timeout).await? {
            let host = self.server.config.hostname.clone();
            self.reply(timeout_reply(&host)).await?;
            return Ok(Flow::Close);
        }
        self.reset_transaction();
        self.reply(reply).await?;
        Ok(Flow::Continue)
    }

    /// `BDAT <size> [LAST]` (RFC 3030 §3). The chunk is always consumed.
    pub(crate) async fn bdat(&mut self, size: u64, last: bool) -> io::Result<Flow> {
        let cfg = self.server.config.clone();
        let refusal = match &self.state {
            State::Mail(_, txn) if txn.rcpts.is_empty() => Some("No valid recipients"),
            State::Mail(..) => None,
            _ => Some("Need MAIL and RCPT"),
        };
        if let Some(text) = refusal {
            if !read_chunk(&mut self.conn, None, size, cfg.data_timeout).await? {
                self.reply(timeout_reply(&cfg.hostname)).await?;
                return Ok(Flow::Close);
            }
            return self.answer(503, "5.5.1", text).await;
        }
        let State::Mail(_, txn) = &mut self.state else {
            return self.answer(503, "5.5.1", "Need MAIL and RCPT").await;
        };
        let so_far = txn.bdat.as_ref().map_or(0, Vec::len) as u64;
        if so_far.saturating_add(size) > cfg.max_message_size as u64 {
            tracing::info!(
                conn = self.info.id,
                "smtp: BDAT message over size limit refused"
            );
            return self.refuse_chunk(size, too_big()).await;
        }
        let budget = &cfg.transfer_budget;
        let charge = txn.bdat_charge.get_or_insert_with(|| budget.charge());
        if !charge.reserve(usize::try_from(so_far.saturating_add(size)).unwrap_or(usize::MAX)) {
            // Over the process-wide budget, known before reading the chunk: a temporary error.
            tracing::info!(
                conn = self.info.id,
                "smtp: BDAT message refused, transfer budget used up"
            );
            return self.refuse_chunk(size, no_room()).await;
        }
        let buf = txn.bdat.get_or_insert_with(Vec::new);
        if !read_chunk(&mut self.conn, Some(buf), size, cfg.data_timeout).await? {
            self.reply(timeout_reply(&cfg.hostname)).await?;
            return Ok(Flow::Close);
        }
        if !last {
            return self
                .answer(250, "2.0.0", &format!("{size} octets received"))
                .await;
        }
        match std::mem::replace(&mut self.state, State::Connected) {
            State::Mail(helo, mut txn) => {
                let body = txn.bdat.take().unwrap_or_default();
                // The charge is held until the message is stored or refused.
                let charge = txn.bdat_charge.take();
                let flow = self.deliver(helo, txn, body).await;
                drop(charge);
                flow
            }
            other => {
                self.state = other;
                self.answer(503, "5.5.1", "Need MAIL and RCPT").await
            }
        }
    }
}
