//! One POP3 session: the state machine and the command loop.
//!
//! RFC 1939 §3: AUTHORIZATION → (login) → TRANSACTION → (QUIT) → UPDATE. Which command is
//! valid in which state is decided in [`Session::dispatch`], one exhaustive `match`.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use pop3_proto::{Command, Reply, RespCode};
use server_kit::{BoxStream, Conn, ConnInfo, LineError, Shutdown};
use store::LeaseGuard;

use crate::Pop3Server;
use crate::maildrop::Maildrop;
use crate::transaction;
use crate::wire::Wire;

pub(crate) enum State {
    /// RFC 1939 §4. `user` is the name from a USER command waiting for its PASS.
    Authorization { user: Option<String> },
    /// RFC 1939 §5: the maildrop is locked (a lease, renewed while the session lives) and
    /// its snapshot taken.
    Transaction {
        maildrop: Maildrop,
        lock: LeaseGuard,
    },
    /// RFC 1939 §6: entered by QUIT from TRANSACTION; the lock is held until the deletions
    /// are committed.
    Update {
        maildrop: Maildrop,
        lock: LeaseGuard,
    },
}

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// What waiting for the client's next line produced.
pub(crate) enum Input {
    Line(BytesMut),
    TooLong,
    Closed,
    Idle,
    Shutdown,
}

/// Counters for the one log line per connection.
#[derive(Default)]
pub(crate) struct Stats {
    pub user: Option<String>,
    pub retrieved: u32,
    pub deleted: usize,
}

pub(crate) struct Session {
    pub server: Arc<Pop3Server>,
    pub wire: Wire,
    pub info: ConnInfo,
    pub shutdown: Shutdown,
    pub state: State,
    pub auth_failures: u32,
    pub stats: Stats,
}

impl Session {
    pub fn new(
        server: Arc<Pop3Server>,
        stream: BoxStream,
        tls: bool,
        info: ConnInfo,
        shutdown: Shutdown,
    ) -> Session {
        let write_timeout = server.config.idle_timeout;
        Session {
            server,
            wire: Wire::new(Conn::new(stream, tls), write_timeout),
            info,
            shutdown,
            state: State::Authorization { user: None },
            auth_failures: 0,
            stats: Stats::default(),
        }
    }

    pub async fn run(mut self) {
        let result = self.command_loop().await;
        // Release the maildrop lock (it goes with the state) before the final flush, which
        // may take as long as the write timeout with a client that stopped reading.
        self.release_lock().await;
        self.wire.close(&self.info.slot).await;
        let info = &self.info;
        tracing::info!(
            conn = info.id,
            peer = %info.peer,
            listener = info.listener,
            tls = self.wire.conn.is_tls(),
            user = self.stats.user.as_deref().unwrap_or("-"),
            retrieved = self.stats.retrieved,
            deleted = self.stats.deleted,
            error = result.err().map(|e| e.to_string()),
            "pop3 session closed"
        );
    }

    async fn command_loop(&mut self) -> io::Result<()> {
        // RFC 1939 §4: the greeting; no timestamp since APOP is not offered.
        self.wire.reply(&Reply::ok("yubin POP3 ready")).await?;
        loop {
            let line = match self.next_line().await? {
                Input::Line(line) => line,
                other => match self.end_of_input(other).await? {
                    Flow::Continue => continue,
                    Flow::Close => return Ok(()),
                },
            };
            let begun = std::time::Instant::now();
            let (index, flow) = match Command::parse(&line) {
                Ok(cmd) => {
                    drop(line);
                    let index = crate::metrics::command_index(&cmd);
                    (index, self.dispatch(cmd).await)
                }
                Err(e) => {
                    let r = self.wire.reply(&Reply::err(e.to_string())).await;
                    (crate::metrics::OTHER, r.map(|()| Flow::Continue))
                }
            };
            crate::metrics::COMMANDS.record(index, begun.elapsed());
            let flow = flow?;
            if flow == Flow::Close {
                return Ok(());
            }
        }
    }

    /// Waits for the next line: flushes pending replies, releases idle buffers, and gives up
    /// on shutdown or after the idle timeout.
    pub async fn next_line(&mut self) -> io::Result<Input> {
        self.wire.flush().await?;
        self.wire.conn.shrink();
        let max = self.server.config.max_line_length;
        let idle = self.server.config.idle_timeout;
        let read = tokio::time::timeout(idle, self.wire.conn.read_line(max));
        Ok(tokio::select! {
            _ = self.shutdown.cancelled() => Input::Shutdown,
            r = read => match r {
                Err(_) => Input::Idle,
                Ok(Ok(line)) => Input::Line(line),
                Ok(Err(LineError::TooLong)) => Input::TooLong,
                Ok(Err(LineError::Eof)) => Input::Closed,
                Ok(Err(LineError::Io(e))) => return Err(e),
            },
        })
    }

    /// Answers an input that is not a line. Nothing is deleted on any of these paths: only
    /// QUIT enters the UPDATE state.
    pub async fn end_of_input(&mut self, input: Input) -> io::Result<Flow> {
        let reply = match input {
            // RFC 2449 §4: the line was too long; the session goes on.
            Input::TooLong => {
                self.wire.reply(&Reply::err("line too long")).await?;
                return Ok(Flow::Continue);
            }
            Input::Line(_) | Input::Closed => return Ok(Flow::Close),
            // RFC 1939 §3: autologout, without entering UPDATE.
            Input::Idle => Reply::err("autologout: idle for too long"),
            Input::Shutdown => Reply::err_code(RespCode::SysTemp, "server shutting down"),
        };
        self.wire.reply(&reply).await?;
        Ok(Flow::Close)
    }

    fn plaintext_permitted(&self) -> bool {
        self.server
            .config
            .plaintext_auth
            .permits(&self.info, self.wire.conn.is_tls())
    }

    /// RFC 2595 §4, RFC 8314 §3: passwords are refused on unencrypted connections except from
    /// loopback; the client is told where to go instead.
    pub fn refuse_plaintext(&self) -> Option<Reply> {
        (!self.plaintext_permitted()).then(|| {
            Reply::err_code(
                RespCode::Auth,
                "plaintext authentication is not allowed on this connection; use STLS or port 995",
            )
        })
    }

    /// The one table of which command is valid in which state.
    async fn dispatch(&mut self, cmd: Command) -> io::Result<Flow> {
        let store = self.server.store.clone();
        let chunk = self.server.config.retr_chunk_size;
        let refusal = self.refuse_plaintext();
        let reply = match (&mut self.state, cmd) {
            (_, Command::Capa) => return self.capa().await,
            (State::Authorization { .. }, Command::Quit) => {
                // RFC 1939 §4: QUIT in AUTHORIZATION ends the session without UPDATE.
                self.info.slot.release();
                self.wire
                    .reply(&Reply::ok("yubin POP3 signing off"))
                    .await?;
                return Ok(Flow::Close);
            }
            (State::Authorization { .. }, Command::Stls) => return self.stls().await,
            (State::Authorization { user }, Command::User(name)) => match refusal {
                Some(refusal) => refusal,
                None => {
                    *user = Some(name);
                    Reply::ok("send PASS")
                }
            },
            (State::Authorization { user }, Command::Pass(password)) => match user.take() {
                // RFC 1939 §7: PASS only right after a successful USER.
                None => Reply::err("send USER first"),
                Some(name) => return self.login(&name, &password, "password").await,
            },
            (
                State::Authorization { user },
                Command::Auth {
                    mechanism,
                    initial_response,
                },
            ) => {
                *user = None;
                return self.auth(mechanism, initial_response).await;
            }
            (
                State::Authorization { .. },
                Command::Stat
                | Command::List(_)
                | Command::Retr(_)
                | Command::Dele(_)
                | Command::Noop
                | Command::Rset
                | Command::Top { .. }
                | Command::Uidl(_),
            ) => Reply::err("not logged in; use USER/PASS or AUTH first"),
            (State::Transaction { .. }, Command::Quit) => return self.update().await,
            (
                State::Transaction { .. },
                Command::User(_) | Command::Pass(_) | Command::Auth { .. },
            ) => Reply::err("already logged in"),
            // RFC 2595 §4: STLS only in AUTHORIZATION state.
            (State::Transaction { .. }, Command::Stls) => {
                Reply::err("STLS is only allowed before login")
            }
            (State::Transaction { maildrop, .. }, Command::Stat) => {
                return transaction::stat(&mut self.wire, maildrop).await;
            }
            (State::Transaction { maildrop, .. }, Command::List(n)) => {
                return transaction::list(&mut self.wire, maildrop, n).await;
            }
            (State::Transaction { maildrop, .. }, Command::Uidl(n)) => {
                return transaction::uidl(&mut self.wire, maildrop, n).await;
            }
            (State::Transaction { maildrop, .. }, Command::Dele(n)) => {
                return transaction::dele(&mut self.wire, maildrop, n).await;
            }
            (State::Transaction { maildrop, .. }, Command::Rset) => {
                return transaction::rset(&mut self.wire, maildrop).await;
            }
            // RFC 1939 §5 NOOP.
            (State::Transaction { .. }, Command::Noop) => Reply::ok(""),
            (State::Transaction { maildrop, .. }, Command::Retr(n)) => {
                let stats = &mut self.stats;
                return transaction::retrieve(
                    &mut self.wire,
                    &*store,
                    maildrop,
                    stats,
                    n,
                    None,
                    chunk,
                )
                .await;
            }
            (State::Transaction { maildrop, .. }, Command::Top { msg, lines }) => {
                let stats = &mut self.stats;
                return transaction::retrieve(
                    &mut self.wire,
                    &*store,
                    maildrop,
                    stats,
                    msg,
                    Some(lines),
                    chunk,
                )
                .await;
            }
            (State::Update { .. }, _) => return Ok(Flow::Close),
        };
        self.wire.reply(&reply).await?;
        Ok(Flow::Continue)
    }

    /// RFC 2595 §4: `+OK`, then the TLS handshake; the state stays AUTHORIZATION and anything
    /// learnt before (a USER name) is forgotten. Pipelined plaintext is discarded by `Conn`.
    async fn stls(&mut self) -> io::Result<Flow> {
        let acceptor = match (&self.server.tls, self.wire.conn.is_tls()) {
            (_, true) => {
                self.wire.reply(&Reply::err("already using TLS")).await?;
                return Ok(Flow::Continue);
            }
            (None, false) => {
                self.wire.reply(&Reply::err("STLS not available")).await?;
                return Ok(Flow::Continue);
            }
            (Some(acceptor), false) => acceptor.clone(),
        };
        self.wire.reply(&Reply::ok("Begin TLS negotiation")).await?;
        self.wire.flush().await?;
        let handshake = self.wire.conn.start_tls(&acceptor);
        match tokio::time::timeout(self.server.config.tls_handshake_timeout, handshake).await {
            Ok(Ok(discarded)) => {
                if discarded > 0 {
                    tracing::info!(
                        conn = self.info.id,
                        discarded,
                        "pop3: discarded plaintext pipelined after STLS"
                    );
                }
                self.state = State::Authorization { user: None };
                Ok(Flow::Continue)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// Leaves the TRANSACTION/UPDATE state, releasing the maildrop lease and waiting until
    /// the store has recorded it, so a client that reconnects at once finds it free.
    async fn release_lock(&mut self) {
        match std::mem::replace(&mut self.state, State::Authorization { user: None }) {
            State::Transaction { lock, .. } | State::Update { lock, .. } => lock.release().await,
            State::Authorization { .. } => {}
        }
    }

    /// RFC 1939 §6: QUIT from TRANSACTION enters UPDATE and removes the marked messages; `+OK`
    /// only once the store has committed the expunge (it fsyncs before returning).
    async fn update(&mut self) -> io::Result<Flow> {
        let state = std::mem::replace(&mut self.state, State::Authorization { user: None });
        self.state = match state {
            State::Transaction { maildrop, lock } | State::Update { maildrop, lock } => {
                State::Update { maildrop, lock }
            }
            other => other,
        };
        let reply = match &self.state {
            State::Update { maildrop, lock } => {
                let marked = maildrop.marked();
                if marked.is_empty() {
                    Reply::ok("yubin POP3 signing off")
                } else if let Some(refusal) = lost_lock(lock, self.info.id).await {
                    refusal
                } else {
                    match self.server.store.expunge(maildrop.mailbox, &marked).await {
                        Ok(removed) => {
                            self.stats.deleted = removed.len();
                            Reply::ok(format!(
                                "yubin POP3 signing off ({} messages deleted)",
                                marked.len()
                            ))
                        }
                        Err(e) => {
                            tracing::warn!(conn = self.info.id, error = %e, "pop3: expunge failed");
                            // RFC 1939 §6: "-ERR some deleted messages not removed".
                            Reply::err_code(
                                RespCode::SysTemp,
                                "some deleted messages not removed, try again later",
                            )
                        }
                    }
                }
            }
            State::Authorization { .. } | State::Transaction { .. } => {
                Reply::ok("yubin POP3 signing off")
            }
        };
        // The UPDATE state is over: release the maildrop lock and the connection slot before
        // the reply, so a client reconnecting the moment it reads `+OK` finds neither held.
        self.release_lock().await;
        self.info.slot.release();
        self.wire.reply(&reply).await?;
        Ok(Flow::Close)
    }
}

/// RFC 1939 §8: deletions need the exclusive lock. The lease is renewed right before them; if
/// this process stalled past its expiry and another session took the maildrop, nothing is
/// deleted ("-ERR some deleted messages not removed", RFC 1939 §6).
async fn lost_lock(lock: &LeaseGuard, conn: u64) -> Option<Reply> {
    match lock.confirm().await {
        Ok(true) => None,
        Ok(false) => {
            tracing::warn!(
                conn,
                lease = lock.name(),
                "pop3: maildrop lock lost before UPDATE"
            );
            Some(Reply::err_code(
                RespCode::InUse,
                "maildrop lock lost to another session; no messages deleted",
            ))
        }
        Err(e) => {
            tracing::warn!(conn, error = %e, "pop3: cannot renew the maildrop lock");
            Some(Reply::err_code(
                RespCode::SysTemp,
                "some deleted messages not removed, try again later",
            ))
        }
    }
}
