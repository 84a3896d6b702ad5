//! AUTH PLAIN, LOGIN and SCRAM-SHA-256 (RFC 4954, RFC 4616, draft-murchison-sasl-login,
//! RFC 5802, RFC 7677).
//!
//! Invariant: passwords are never logged; failures are logged by `auth::Authenticator`.

use std::io;

use auth::AuthError;
use sasl::{Credentials, SaslError};
use server_kit::LineError;
use smtp_proto::Reply;

use crate::session::{Flow, Session, io_error};

/// Why an exchange did not yield credentials.
enum Abort {
    /// The reply was queued; the session goes on.
    Answered,
    /// The session must end (timeout, EOF).
    Close,
}

impl Session {
    /// RFC 4954 §4. The caller checked the state (greeted, no transaction, not authenticated).
    pub(crate) async fn auth_command(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
    ) -> io::Result<Flow> {
        if !self.auth_permitted() {
            // RFC 4954 §6 (538): this mechanism needs an encrypted connection first.
            return self
                .answer(
                    538,
                    "5.7.11",
                    "Encryption required for requested authentication mechanism",
                )
                .await;
        }
        let (credentials, mechanism) = match mechanism {
            "SCRAM-SHA-256" => return self.scram(initial).await,
            "PLAIN" => (self.plain(initial).await?, "PLAIN"),
            "LOGIN" => (self.login(initial).await?, "LOGIN"),
            // RFC 4954 §4: 504 for an unsupported mechanism.
            _ => {
                return self
                    .answer(504, "5.5.4", "Unrecognized authentication type")
                    .await;
            }
        };
        let credentials = match credentials {
            Ok(c) => c,
            Err(Abort::Answered) => return Ok(Flow::Continue),
            Err(Abort::Close) => return Ok(Flow::Close),
        };
        let result = self
            .server
            .auth
            .authenticate(
                &credentials.username,
                &credentials.password,
                "smtp",
                self.info.peer.ip(),
            )
            .await;
        // RFC 4616 §2: we do not let one user act as another; an authzid must name the
        // same account.
        let result = result.and_then(|user| {
            let same = credentials
                .authzid
                .as_deref()
                .is_none_or(|z| mail_types::Address::parse(z).is_ok_and(|a| a == user.address));
            if same {
                Ok(user)
            } else {
                Err(AuthError::Invalid)
            }
        });
        auth::count_attempt("smtp", mechanism, &result);
        match result {
            Ok(user) => {
                self.auth = Some(user);
                self.answer(235, "2.7.0", "Authentication successful").await
            }
            Err(AuthError::Invalid) => self.auth_failed().await,
            Err(e) => self.auth_unavailable(e).await,
        }
    }

    /// RFC 4954 §6: `454 4.7.0` for a temporary failure — the directory, or a ban of the
    /// client's address for too many failed logins (no password was checked).
    async fn auth_unavailable(&mut self, e: AuthError) -> io::Result<Flow> {
        match e {
            AuthError::Banned { until } => {
                let text = format!(
                    "Too many failed authentications from your address, try again after {}",
                    auth::format_time(until)
                );
                self.answer(454, "4.7.0", &text).await
            }
            _ => {
                self.answer(454, "4.7.0", "Temporary authentication failure")
                    .await
            }
        }
    }

    /// `535 5.7.8` (RFC 4954 §6); after `max_auth_failures` the session ends with 421.
    async fn auth_failed(&mut self) -> io::Result<Flow> {
        self.auth_failures += 1;
        self.reply(Reply::new(
            535,
            "5.7.8",
            "Authentication credentials invalid",
        ))
        .await?;
        if self.auth_failures >= self.server.config.max_auth_failures {
            let host = self.server.config.hostname.clone();
            let text = format!("{host} Too many failed authentications");
            self.reply(Reply::new(421, "4.7.0", text)).await?;
            return Ok(Flow::Close);
        }
        Ok(Flow::Continue)
    }

    /// SCRAM-SHA-256 (RFC 5802 §5, RFC 7677): client-first (initial response or after an
    /// empty challenge), server-first as a 334 challenge, client-final, then the server-final
    /// `v=` as a 334 challenge the client answers with an empty line (RFC 4954 §4: a server
    /// with data to send on success sends it as a challenge), then 235.
    async fn scram(&mut self, initial: Option<String>) -> io::Result<Flow> {
        let first = match initial {
            Some(text) => self.decoded(&text).await?,
            None => self.challenge("").await?,
        };
        let first = match first {
            Ok(m) => m,
            Err(Abort::Answered) => return Ok(Flow::Continue),
            Err(Abort::Close) => return Ok(Flow::Close),
        };
        let first = match sasl::scram::client_first(&first) {
            Ok(f) => f,
            Err(e) => {
                self.sasl_failure(e).await?;
                return Ok(Flow::Continue);
            }
        };
        let (peer, auth) = (self.info.peer.ip(), self.server.auth.clone());
        let (exchange, server_first) = match auth.scram_start(first, "smtp", peer).await {
            Ok(x) => x,
            Err(e) => {
                auth::count_attempt::<()>("smtp", "SCRAM-SHA-256", &Err(e.clone()));
                return self.auth_unavailable(e).await;
            }
        };
        let last = match self.challenge(&sasl::encode(&server_first)).await? {
            Ok(m) => m,
            Err(Abort::Answered) => return Ok(Flow::Continue),
            Err(Abort::Close) => return Ok(Flow::Close),
        };
        let authzid = exchange.authzid.clone();
        // RFC 5802 §5.1: an authzid must name the same account (no acting as another).
        let finished = auth
            .scram_finish(exchange, &last, "smtp", peer)
            .await
            .and_then(|(user, v)| {
                let same = authzid
                    .as_deref()
                    .is_none_or(|z| mail_types::Address::parse(z).is_ok_and(|a| a == user.address));
                if same {
                    Ok((user, v))
                } else {
                    Err(AuthError::Invalid)
                }
            });
        auth::count_attempt("smtp", "SCRAM-SHA-256", &finished);
        let (user, server_final) = match finished {
            Ok(x) => x,
            Err(AuthError::Invalid) => return self.auth_failed().await,
            Err(e) => return self.auth_unavailable(e).await,
        };
        match self.challenge(&sasl::encode(&server_final)).await? {
            Ok(_) => {
                self.auth = Some(user);
                self.answer(235, "2.7.0", "Authentication successful").await
            }
            Err(Abort::Answered) => Ok(Flow::Continue),
            Err(Abort::Close) => Ok(Flow::Close),
        }
    }

    /// PLAIN (RFC 4616): one message, as initial response or after an empty challenge.
    async fn plain(&mut self, initial: Option<String>) -> io::Result<Result<Credentials, Abort>> {
        let message = match initial {
            Some(text) => self.decoded(&text).await?,
            None => self.challenge("").await?,
        };
        let message = match message {
            Ok(m) => m,
            Err(abort) => return Ok(Err(abort)),
        };
        match sasl::parse_plain(&message) {
            Ok(c) => Ok(Ok(c)),
            Err(e) => Ok(Err(self.sasl_failure(e).await?)),
        }
    }

    /// LOGIN: username (initial response or first challenge), then password.
    async fn login(&mut self, initial: Option<String>) -> io::Result<Result<Credentials, Abort>> {
        let user = match initial {
            Some(text) => self.decoded(&text).await?,
            None => self.challenge(sasl::LOGIN_USERNAME_CHALLENGE).await?,
        };
        let user = match user {
            Ok(u) => u,
            Err(abort) => return Ok(Err(abort)),
        };
        let pass = match self.challenge(sasl::LOGIN_PASSWORD_CHALLENGE).await? {
            Ok(p) => p,
            Err(abort) => return Ok(Err(abort)),
        };
        let fields =
            sasl::parse_login_field(&user).and_then(|u| Ok((u, sasl::parse_login_field(&pass)?)));
        match fields {
            Ok((username, password)) if !username.is_empty() => Ok(Ok(Credentials {
                authzid: None,
                username,
                password,
            })),
            Ok(_) => Ok(Err(self.sasl_failure(SaslError::Malformed).await?)),
            Err(e) => Ok(Err(self.sasl_failure(e).await?)),
        }
    }

    /// Decodes a base64 response, answering 501 when it is bad or `*`.
    async fn decoded(&mut self, text: &str) -> io::Result<Result<Vec<u8>, Abort>> {
        match sasl::decode_response(text) {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(e) => Ok(Err(self.sasl_failure(e).await?)),
        }
    }

    /// Sends a `334` challenge and reads the client's response line.
    async fn challenge(&mut self, challenge: &str) -> io::Result<Result<Vec<u8>, Abort>> {
        self.reply(Reply::plain(334, challenge)).await?;
        self.conn.flush().await?;
        let cfg = &self.server.config;
        let (max, timeout) = (cfg.max_line_length, cfg.command_timeout);
        let line = match tokio::time::timeout(timeout, self.conn.read_line(max)).await {
            Err(_) => {
                let host = self.server.config.hostname.clone();
                let text = format!("{host} Error: timeout exceeded");
                self.reply(Reply::new(421, "4.4.2", text)).await?;
                return Ok(Err(Abort::Close));
            }
            // RFC 4954 §4: 500 5.5.6 for a response line too long.
            Ok(Err(LineError::TooLong)) => {
                self.answer(500, "5.5.6", "Authentication exchange line is too long")
                    .await?;
                return Ok(Err(Abort::Answered));
            }
            Ok(Err(e)) => return Err(io_error(e)),
            Ok(Ok(line)) => line,
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            return Ok(Err(self.sasl_failure(SaslError::Base64).await?));
        };
        let text = text.to_string();
        self.decoded(&text).await
    }

    /// Answers a failed exchange with 501 (RFC 4954 §4): cancelled or undecodable.
    async fn sasl_failure(&mut self, e: SaslError) -> io::Result<Abort> {
        match e {
            SaslError::Cancelled => {
                self.answer(501, "5.7.0", "Authentication cancelled")
                    .await?
            }
            SaslError::Base64 | SaslError::Malformed => {
                self.answer(501, "5.5.2", "Cannot decode response").await?
            }
        };
        Ok(Abort::Answered)
    }
}
