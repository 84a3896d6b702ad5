//! Login: USER/PASS (RFC 1939 §7) and AUTH (RFC 5034 with PLAIN, RFC 4616, and LOGIN), then
//! opening the maildrop (lock + INBOX snapshot).
//!
//! Credentials are checked by `auth::Authenticator`, which logs failures and delays them.
//! Passwords are never logged or kept after the check.

use std::io;

use auth::AuthError;
use pop3_proto::{Reply, RespCode};
use sasl::{Credentials, SaslError};
use std::sync::Arc;
use std::time::Duration;

use store::{AccountId, Coordination, LeaseGuard, Store};

use crate::errors::store_error;
use crate::maildrop::Maildrop;
use crate::session::{Flow, Input, Session, State};

/// How a SASL exchange ended.
enum Step {
    Credentials(Credentials),
    /// The exchange failed without a password check (cancelled, malformed); reply and go on.
    Fail(Reply),
    /// The connection is going away (already answered).
    Close,
}

impl Session {
    /// Checks the credentials, then locks and opens the maildrop (RFC 1939 §7 PASS, RFC 5034
    /// §4). Failures leave the session in AUTHORIZATION until too many of them.
    pub(crate) async fn login(
        &mut self,
        username: &str,
        password: &str,
        mechanism: &'static str,
    ) -> io::Result<Flow> {
        if let Some(refusal) = self.refuse_plaintext() {
            self.wire.reply(&refusal).await?;
            return Ok(Flow::Continue);
        }
        let peer = self.info.peer.ip();
        let result = self
            .server
            .auth
            .authenticate(username, password, "pop3", peer)
            .await;
        auth::count_attempt("pop3", mechanism, &result);
        let reply = match result {
            Ok(user) => match open_maildrop(
                &self.server.store,
                user.account,
                self.server.config.maildrop_lease,
            )
            .await
            {
                Ok((maildrop, lock)) => {
                    let (count, size) = maildrop.stat();
                    self.stats.user = Some(user.address.to_string());
                    self.state = State::Transaction { maildrop, lock };
                    Reply::ok(format!("maildrop has {count} messages ({size} octets)"))
                }
                Err(reply) => {
                    tracing::info!(conn = self.info.id, user = %user.address, reply = %reply.text, "pop3: maildrop not opened");
                    reply
                }
            },
            // RFC 3206 §4: [SYS/TEMP], a temporary refusal the client may retry later (not
            // [AUTH]: the credentials were not even checked).
            Err(AuthError::Banned { until }) => Reply::err_code(
                RespCode::SysTemp,
                format!(
                    "too many failed logins from your address; try again after {}",
                    auth::format_time(until)
                ),
            ),
            Err(AuthError::Temporary) => Reply::err_code(
                RespCode::SysTemp,
                "authentication temporarily unavailable, try again later",
            ),
            Err(AuthError::Invalid) => {
                self.auth_failures += 1;
                if self.auth_failures >= self.server.config.max_auth_failures {
                    // RFC 1939 §4: the server may close the connection after failed logins.
                    self.wire
                        .reply(&Reply::err_code(
                            RespCode::Auth,
                            "invalid user name or password; too many failures, closing",
                        ))
                        .await?;
                    return Ok(Flow::Close);
                }
                Reply::err_code(RespCode::Auth, "invalid user name or password")
            }
        };
        self.wire.reply(&reply).await?;
        Ok(Flow::Continue)
    }

    /// RFC 5034 §4: `AUTH mechanism [initial-response]`; `AUTH` alone lists the mechanisms.
    pub(crate) async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial_response: Option<String>,
    ) -> io::Result<Flow> {
        if let Some(refusal) = self.refuse_plaintext() {
            self.wire.reply(&refusal).await?;
            return Ok(Flow::Continue);
        }
        let name = match mechanism.as_deref() {
            Some("PLAIN") => "PLAIN",
            _ => "LOGIN",
        };
        let step = match mechanism.as_deref() {
            None => {
                self.wire
                    .write(b"+OK SASL mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n")
                    .await?;
                return Ok(Flow::Continue);
            }
            Some("PLAIN") => self.plain(initial_response).await?,
            Some("LOGIN") => self.login_mechanism(initial_response).await?,
            Some(_) => Step::Fail(Reply::err("unsupported SASL mechanism")),
        };
        match step {
            Step::Credentials(c) => {
                // No proxy authorization: an authzid must name the user itself (RFC 4616 §2).
                if c.authzid.as_ref().is_some_and(|z| *z != c.username) {
                    let reply = Reply::err_code(RespCode::Auth, "authorization identity refused");
                    self.wire.reply(&reply).await?;
                    return Ok(Flow::Continue);
                }
                self.login(&c.username, &c.password, name).await
            }
            Step::Fail(reply) => {
                self.wire.reply(&reply).await?;
                Ok(Flow::Continue)
            }
            Step::Close => Ok(Flow::Close),
        }
    }

    /// PLAIN (RFC 4616): one message, in the initial response or after an empty challenge.
    async fn plain(&mut self, initial_response: Option<String>) -> io::Result<Step> {
        let message = match initial_response {
            Some(ir) => sasl::decode_response(&ir).map_err(sasl_failure),
            None => self.sasl_exchange("").await?,
        };
        Ok(match message {
            Ok(m) => match sasl::parse_plain(&m) {
                Ok(c) => Step::Credentials(c),
                Err(e) => sasl_failure(e),
            },
            Err(step) => step,
        })
    }

    /// LOGIN: a username (possibly as initial response), then a password.
    async fn login_mechanism(&mut self, initial_response: Option<String>) -> io::Result<Step> {
        let username = match initial_response {
            Some(ir) => sasl::decode_response(&ir).map_err(sasl_failure),
            None => self.sasl_exchange(sasl::LOGIN_USERNAME_CHALLENGE).await?,
        };
        let username = match username.map(|u| sasl::parse_login_field(&u)) {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => return Ok(sasl_failure(e)),
            Err(step) => return Ok(step),
        };
        let password = match self.sasl_exchange(sasl::LOGIN_PASSWORD_CHALLENGE).await? {
            Ok(p) => match sasl::parse_login_field(&p) {
                Ok(p) => p,
                Err(e) => return Ok(sasl_failure(e)),
            },
            Err(step) => return Ok(step),
        };
        Ok(Step::Credentials(Credentials {
            authzid: None,
            username,
            password,
        }))
    }

    /// Sends a `+ challenge` and reads the client's base64 response line.
    async fn sasl_exchange(&mut self, challenge: &str) -> io::Result<Result<Vec<u8>, Step>> {
        let mut out = Vec::new();
        pop3_proto::continuation(challenge, &mut out);
        self.wire.write(&out).await?;
        Ok(match self.next_line().await? {
            Input::Line(line) => match std::str::from_utf8(&line) {
                Ok(text) => sasl::decode_response(text).map_err(sasl_failure),
                Err(_) => Err(sasl_failure(SaslError::Base64)),
            },
            Input::TooLong => Err(Step::Fail(Reply::err("line too long"))),
            other => {
                self.end_of_input(other).await?;
                Err(Step::Close)
            }
        })
    }
}

fn sasl_failure(error: SaslError) -> Step {
    Step::Fail(match error {
        // RFC 5034 §4: a "*" response cancels; the server rejects the AUTH with -ERR.
        SaslError::Cancelled => Reply::err("authentication cancelled"),
        SaslError::Base64 | SaslError::Malformed => Reply::err("invalid SASL response"),
    })
}

/// The name of an account's maildrop lease, the same on every node.
pub(crate) fn maildrop_lease_name(account: AccountId) -> String {
    format!("pop3-maildrop/{account}")
}

/// Locks the maildrop (RFC 1939 §8), then snapshots INBOX. The lock comes first so that two
/// sessions can never work on the same snapshot. The lock is a lease in the store, so a
/// session of another process on the same store (or another node) is refused too, and the
/// lock of a killed process expires after `ttl`.
async fn open_maildrop(
    store: &Arc<dyn Store>,
    account: AccountId,
    ttl: Duration,
) -> Result<(Maildrop, LeaseGuard), Reply> {
    let leases: Arc<dyn Coordination> = store.clone();
    let lock = LeaseGuard::acquire(leases, maildrop_lease_name(account), ttl)
        .await
        .map_err(|e| store_error(&e))?;
    match snapshot(store.as_ref(), account).await {
        Ok(maildrop) => Ok((maildrop, lock)),
        Err(reply) => {
            lock.release().await;
            Err(reply)
        }
    }
}

async fn snapshot(store: &dyn Store, account: AccountId) -> Result<Maildrop, Reply> {
    let inbox = store
        .find_mailbox(account, store::INBOX)
        .await
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| store_error(&store::StoreError::NotFound("INBOX".into())))?;
    let messages = store
        .list_messages(inbox.id)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Maildrop::new(inbox.id, inbox.uid_validity, messages))
}
