//! The session state machine: reading commands, the state table, and the simple commands.
//!
//! Invariants:
//! - Which command is allowed in which state is decided in [`Session::dispatch`] only.
//! - Replies are queued and flushed only when no complete command is waiting in the input
//!   buffer (RFC 2920 §3.2 PIPELINING), and before every wait for client data (354, 334).
//! - After STARTTLS everything is forgotten: EHLO, transaction, authentication
//!   (RFC 3207 §4.2).

use std::io;
use std::sync::Arc;
use std::time::Instant;

use auth::Authenticated;
use mail_types::Address;
use server_kit::{BoxStream, Conn, ConnInfo, LineError, Shutdown};
use smtp_proto::{Command, MailParams, RcptParams, Reply, ReversePath, parse_command};
use store::AccountId;

use crate::{SmtpMode, SmtpServer};

/// What the client said in HELO/EHLO.
#[derive(Debug, Clone)]
pub(crate) struct Helo {
    pub name: String,
    /// EHLO rather than HELO (ESMTP, RFC 3848).
    pub extended: bool,
}

/// One accepted recipient and the accounts it resolved to.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub address: Address,
    /// The local accounts; empty for a remote recipient (queued for outbound delivery).
    pub accounts: Vec<AccountId>,
    /// RFC 3461 NOTIFY and ORCPT, passed to the queue; ignored for local delivery.
    pub params: RcptParams,
}

/// A mail transaction: MAIL accepted, collecting recipients and (BDAT) chunks.
#[derive(Debug)]
pub(crate) struct Transaction {
    pub from: ReversePath,
    pub params: MailParams,
    pub rcpts: Vec<Recipient>,
    /// The chunks received so far once BDAT has begun (RFC 3030); then DATA is refused.
    pub bdat: Option<Vec<u8>>,
    /// What the BDAT chunks hold of the transfer budget; given back with the transaction.
    pub bdat_charge: Option<server_kit::Charge>,
    /// SPF and iprev, started at the first accepted recipient of an unauthenticated MX
    /// transaction, running while the message arrives (see `inbound`).
    pub checks: Option<Box<inbound_auth::Pending>>,
}

/// Where the session is (RFC 5321 §4.1.4 command ordering).
#[derive(Debug)]
pub(crate) enum State {
    /// Before HELO/EHLO, and again after STARTTLS.
    Connected,
    /// Greeted, no transaction.
    Ready(Helo),
    /// MAIL accepted.
    Mail(Helo, Transaction),
}

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

pub(crate) struct Session {
    pub server: Arc<SmtpServer>,
    pub conn: Conn,
    pub info: ConnInfo,
    pub state: State,
    pub auth: Option<Authenticated>,
    errors: usize,
    pub auth_failures: usize,
    /// The MX defences, when they apply to this client (see `guard`).
    pub guard: Option<Arc<antispam::Antispam>>,
}

/// Turns a read error into the I/O error that ends the session.
pub(crate) fn io_error(e: LineError) -> io::Error {
    match e {
        LineError::Io(e) => e,
        LineError::Eof => io::ErrorKind::UnexpectedEof.into(),
        LineError::TooLong => io::ErrorKind::InvalidData.into(),
    }
}

impl Session {
    pub fn new(server: Arc<SmtpServer>, stream: BoxStream, tls: bool, info: ConnInfo) -> Session {
        let mut conn = Conn::new(stream, tls);
        conn.set_write_timeout(server.config.write_timeout);
        let guard = crate::guard::guard_for(&server, info.peer.ip());
        Session {
            guard,
            server,
            conn,
            info,
            state: State::Connected,
            auth: None,
            errors: 0,
            auth_failures: 0,
        }
    }

    /// Queues a reply. Every 5xx counts towards `max_errors`.
    pub async fn reply(&mut self, reply: Reply) -> io::Result<()> {
        if reply.code >= 500 {
            self.errors += 1;
        }
        self.conn.write(&reply.to_bytes()).await
    }

    /// Queues a reply and goes on.
    pub async fn answer(
        &mut self,
        code: u16,
        status: &'static str,
        text: &str,
    ) -> io::Result<Flow> {
        self.reply(Reply::new(code, status, text)).await?;
        Ok(Flow::Continue)
    }

    /// Whether AUTH may be used now. RFC 4954 §4 + RFC 8314: never over plaintext except from
    /// an allowed loopback peer; on the MX port only once TLS is up.
    pub fn auth_permitted(&self) -> bool {
        let tls = self.conn.is_tls();
        let cfg = &self.server.config;
        cfg.plaintext_auth.permits(&self.info, tls) && (cfg.mode == SmtpMode::Submission || tls)
    }

    /// Runs the session to its end and logs one line about it.
    pub async fn run(mut self, shutdown: Shutdown) {
        let started = Instant::now();
        match self.opening().await {
            crate::guard::Opening::Serve => {
                let host = &self.server.config.hostname;
                let greeting = Reply::plain(220, format!("{host} ESMTP yubin"));
                if self.reply(greeting).await.is_ok() {
                    self.command_loop(&shutdown).await;
                }
            }
            crate::guard::Opening::Refuse(reply) => self.refused(reply).await,
            crate::guard::Opening::Gone => {}
        }
        // A client that stopped reading cannot hold the session: the last replies get the
        // command timeout, and less once the slot was given back at QUIT.
        let timeout = self
            .info
            .slot
            .closing_timeout(self.server.config.command_timeout);
        let _ = tokio::time::timeout(timeout, self.conn.close()).await;
        tracing::info!(
            conn = self.info.id,
            peer = %self.info.peer,
            listener = self.info.listener,
            tls = self.conn.is_tls(),
            duration_ms = started.elapsed().as_millis() as u64,
            "smtp session ended"
        );
    }

    async fn command_loop(&mut self, shutdown: &Shutdown) {
        let cfg = self.server.config.clone();
        let host = cfg.hostname.clone();
        loop {
            // RFC 2920 §3.2: answer a pipelined group at once, when no whole command waits.
            if !self.conn.buffered_bytes().contains(&b'\n') && self.conn.flush().await.is_err() {
                return;
            }
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let bye = Reply::new(421, "4.3.2", format!("{host} Service shutting down"));
                    let _ = self.reply(bye).await;
                    return;
                }
                r = tokio::time::timeout(cfg.command_timeout, self.conn.read_line(cfg.max_line_length)) => r,
            };
            let flow = match read {
                // RFC 5321 §4.5.3.2.7: close with 421 after the command timeout.
                Err(_) => {
                    let msg = format!("{host} Error: timeout exceeded");
                    let _ = self.reply(Reply::new(421, "4.4.2", msg)).await;
                    return;
                }
                // RFC 5321 §4.5.3.1.4: 500 for a line too long; the line was discarded.
                Ok(Err(LineError::TooLong)) => self.answer(500, "5.5.2", "Line too long").await,
                Ok(Err(LineError::Eof | LineError::Io(_))) => return,
                Ok(Ok(line)) => {
                    let begun = Instant::now();
                    let (index, flow) = match parse_command(&line) {
                        Ok(command) => {
                            let index = crate::metrics::command_index(&command);
                            match self.improper_pipelining(&command).await {
                                Ok(false) => (index, self.dispatch(command).await),
                                Ok(true) | Err(_) => return,
                            }
                        }
                        Err(e) => (
                            crate::metrics::OTHER,
                            self.reply(e.reply()).await.map(|()| Flow::Continue),
                        ),
                    };
                    crate::metrics::COMMANDS.record(index, begun.elapsed());
                    flow
                }
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) | Err(_) => return,
            }
            if self.errors >= cfg.max_errors {
                let _ = self
                    .reply(Reply::new(421, "4.7.0", format!("{host} Too many errors")))
                    .await;
                return;
            }
        }
    }

    /// The state table: which command is allowed when (RFC 5321 §4.1.4, RFC 3030 §3,
    /// RFC 4954 §4, RFC 3207 §4).
    async fn dispatch(&mut self, command: Command) -> io::Result<Flow> {
        match (command, &self.state) {
            (Command::Ehlo(name), _) => self.helo(name, true).await,
            (Command::Helo(name), _) => self.helo(name, false).await,
            (Command::Mail { .. }, State::Connected) => {
                self.answer(503, "5.5.1", "Send HELO/EHLO first").await
            }
            (Command::Mail { .. }, State::Mail(..)) => {
                self.answer(503, "5.5.1", "Nested MAIL command").await
            }
            (Command::Mail { from, params }, State::Ready(_)) => self.mail(from, params).await,
            (Command::Rcpt { to, params }, State::Mail(..)) => self.rcpt(to, params).await,
            (Command::Rcpt { .. }, _) => self.answer(503, "5.5.1", "Need MAIL command").await,
            (Command::Data, State::Mail(_, txn)) => {
                if txn.rcpts.is_empty() {
                    self.answer(503, "5.5.1", "No valid recipients").await
                } else if txn.bdat.is_some() {
                    // RFC 3030 §3: DATA may not follow BDAT in one transaction.
                    self.answer(503, "5.5.1", "DATA not allowed after BDAT")
                        .await
                } else if txn.params.body == Some(smtp_proto::Body::BinaryMime) {
                    // RFC 3030 §3: BINARYMIME content can only be sent with BDAT.
                    self.answer(503, "5.5.1", "BODY=BINARYMIME requires BDAT")
                        .await
                } else {
                    self.receive_data().await
                }
            }
            (Command::Data, _) => self.answer(503, "5.5.1", "Need MAIL and RCPT").await,
            // BDAT checks its own state: its chunk must be consumed whatever the answer.
            (Command::Bdat { size, last }, _) => self.bdat(size, last).await,
            (Command::Rset, _) => {
                self.reset_transaction();
                self.answer(250, "2.0.0", "Ok").await
            }
            (Command::Noop, _) => self.answer(250, "2.0.0", "Ok").await,
            (Command::Quit, _) => {
                // Free the connection slot before the last reply (a client may reconnect as
                // soon as it reads it).
                self.info.slot.release();
                self.reply(Reply::new(221, "2.0.0", "Bye")).await?;
                Ok(Flow::Close)
            }
            // RFC 5321 §3.5.3: 252 when we will not verify but will try to deliver.
            (Command::Vrfy(_), _) => {
                self.answer(252, "2.5.0", "Cannot VRFY user, but will accept message")
                    .await
            }
            // RFC 5321 §3.5.2: EXPN may be disabled.
            (Command::Expn(_), _) => self.answer(502, "5.5.1", "EXPN not available").await,
            (Command::Help, _) => {
                let text = "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP \
                            STARTTLS AUTH";
                self.answer(214, "2.0.0", text).await
            }
            (Command::StartTls, _) => self.starttls().await,
            (Command::Auth { .. }, State::Connected) => {
                self.answer(503, "5.5.1", "Send EHLO first").await
            }
            // RFC 4954 §4: AUTH is not permitted during a mail transaction.
            (Command::Auth { .. }, State::Mail(..)) => {
                self.answer(503, "5.5.1", "AUTH not permitted during a mail transaction")
                    .await
            }
            (Command::Auth { .. }, State::Ready(_)) if self.auth.is_some() => {
                // RFC 4954 §4: after a successful AUTH, no more AUTH commands.
                self.answer(503, "5.5.1", "Already authenticated").await
            }
            (Command::Auth { mechanism, initial }, State::Ready(_)) => {
                self.auth_command(&mechanism, initial).await
            }
        }
    }

    /// Ends any transaction, keeping HELO and authentication (RFC 5321 §4.1.1.5).
    pub fn reset_transaction(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Connected) {
            State::Mail(helo, _) | State::Ready(helo) => State::Ready(helo),
            State::Connected => State::Connected,
        };
    }

    /// RFC 5321 §4.1.1.1; EHLO/HELO also reset any transaction (§4.1.4).
    async fn helo(&mut self, name: String, extended: bool) -> io::Result<Flow> {
        if let Some(refused) = self.check_helo(&name).await? {
            return Ok(refused);
        }
        let host = self.server.config.hostname.clone();
        let reply = if extended {
            let mut lines = vec![
                host,
                "PIPELINING".to_string(),
                "8BITMIME".to_string(),
                "SMTPUTF8".to_string(),
                format!("SIZE {}", self.server.config.max_message_size),
                "ENHANCEDSTATUSCODES".to_string(),
                // RFC 3461 §4: the DSN parameters are accepted (and passed to the queue).
                "DSN".to_string(),
            ];
            if !self.conn.is_tls() && self.server.tls.is_some() {
                lines.push("STARTTLS".to_string());
            }
            lines.push("CHUNKING".to_string());
            lines.push("BINARYMIME".to_string());
            if self.auth_permitted() && self.auth.is_none() {
                lines.push("AUTH PLAIN LOGIN SCRAM-SHA-256".to_string());
            }
            Reply::multi(250, lines)
        } else {
            Reply::plain(250, host)
        };
        self.state = State::Ready(Helo { name, extended });
        self.reply(reply).await?;
        Ok(Flow::Continue)
    }

    /// RFC 3207 §4.
    async fn starttls(&mut self) -> io::Result<Flow> {
        if self.conn.is_tls() {
            return self.answer(503, "5.5.1", "TLS already active").await;
        }
        let Some(acceptor) = self.server.tls.clone() else {
            return self.answer(454, "4.7.0", "TLS not available").await;
        };
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"))
            .await?;
        let handshake = self.conn.start_tls(&acceptor);
        let result = tokio::time::timeout(self.server.config.tls_handshake_timeout, handshake)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            });
        match result {
            Ok(discarded) => {
                if discarded > 0 {
                    tracing::warn!(
                        conn = self.info.id,
                        discarded,
                        "smtp: discarded plaintext pipelined after STARTTLS"
                    );
                }
                // RFC 3207 §4.2: discard all knowledge obtained before TLS.
                self.state = State::Connected;
                self.auth = None;
                Ok(Flow::Continue)
            }
            Err(e) => {
                tracing::info!(conn = self.info.id, error = %e, "smtp: TLS handshake failed");
                Ok(Flow::Close)
            }
        }
    }
}
