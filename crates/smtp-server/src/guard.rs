//! The MX defences inside the session (see the `antispam` crate): blocklists and early talkers
//! before the greeting, improper pipelining, HELO sanity, the per-address message rate at MAIL
//! and greylisting at RCPT. They apply on port 25 only, and never to trusted networks.
//!
//! Every refusal logs one audit line (`target: "audit"`, `event=… ip=…`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use antispam::{Antispam, Verdict};
use server_kit::{CLOSING_TIMEOUT, LineError};
use smtp_proto::{Command, Reply, ReversePath, parse_command};

use crate::SmtpMode;
use crate::session::{Flow, Session, State};

/// What happens after the pre-greeting checks.
pub(crate) enum Opening {
    /// Greet and serve.
    Serve,
    /// Refuse with this reply as the greeting.
    Refuse(Reply),
    /// The client is gone.
    Gone,
}

/// Commands a refused client may send before it is disconnected anyway.
const REFUSED_COMMANDS: usize = 5;

/// The defences for a session, if they apply: the MX listener and a client outside the
/// trusted networks.
pub(crate) fn guard_for(
    server: &crate::SmtpServer,
    peer: std::net::IpAddr,
) -> Option<Arc<Antispam>> {
    if server.config.mode != SmtpMode::Mx {
        return None;
    }
    let a = server.antispam.as_ref()?;
    (!a.exempt(peer)).then(|| Arc::clone(a))
}

/// RFC 2920 §3.1: with PIPELINING (offered in every EHLO reply), RSET, MAIL and RCPT may stand
/// anywhere in a group of commands; EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP only last.
/// Without EHLO nothing may be pipelined. BDAT carries its chunk after it (RFC 3030 §2) and
/// STARTTLS discards what follows it (RFC 3207 §4.2); AUTH is left alone.
fn may_be_followed(command: &Command, state: &State) -> bool {
    let pipelining = match state {
        State::Ready(h) | State::Mail(h, _) => h.extended,
        State::Connected => false,
    };
    match command {
        Command::Rset | Command::Mail { .. } | Command::Rcpt { .. } => pipelining,
        Command::Bdat { .. } | Command::StartTls | Command::Auth { .. } => true,
        _ => false,
    }
}

impl Session {
    /// Before the greeting: the blocklist lookups and the pregreet wait, at once (the lookups'
    /// time counts as waiting time). Postfix postscreen's pregreet and DNSBL tests.
    pub(crate) async fn opening(&mut self) -> Opening {
        let Some(g) = self.guard.clone() else {
            return Opening::Serve;
        };
        let ip = self.info.peer.ip();
        let early = g.config.reject_early_talkers;
        let delay = if early {
            g.config.pregreet_delay
        } else {
            Duration::ZERO
        };
        let conn = &mut self.conn;
        let (listing, waited) = tokio::join!(g.blocklisted(ip), async {
            if early {
                tokio::time::timeout(delay, conn.fill_buf()).await.ok()
            } else {
                None
            }
        });
        // Bytes that came in while the lookups ran count too.
        let waited = match waited {
            None if early => tokio::time::timeout(Duration::ZERO, self.conn.fill_buf())
                .await
                .ok(),
            w => w,
        };
        let host = &self.server.config.hostname;
        if let Some(l) = listing {
            tracing::info!(target: "audit", event = %"dnsbl_hit", ip = %ip, zone = %l.zone, conn = self.info.id, "client refused: listed in a DNS blocklist");
            // Postfix's wording; RFC 3463 X.7.1: delivery not authorized.
            let mut text = format!(
                "{host} Service unavailable; client [{ip}] blocked using {}",
                l.zone
            );
            if let Some(why) = &l.text {
                text.push_str("; ");
                text.push_str(why);
            }
            telemetry::smtp_rejected(telemetry::Rejection::Dnsbl);
            return Opening::Refuse(Reply::new(554, "5.7.1", text));
        }
        match waited {
            Some(Ok(_)) => {
                telemetry::smtp_rejected(telemetry::Rejection::EarlyTalker);
                tracing::info!(target: "audit", event = %"early_talker", ip = %ip, stage = %"pregreet", conn = self.info.id, "client refused: talked before the greeting");
                // RFC 5321 §4.3.2 / RFC 3463 X.5.0: a protocol error.
                Opening::Refuse(Reply::new(
                    554,
                    "5.5.0",
                    format!("{host} Protocol error: talked before the greeting"),
                ))
            }
            Some(Err(_)) => Opening::Gone,
            None => Opening::Serve,
        }
    }

    /// A refused client: RFC 5321 §3.1 — after a 554 greeting the server waits for QUIT and
    /// answers other commands with 503. Bounded: a few commands, each within
    /// [`CLOSING_TIMEOUT`].
    pub(crate) async fn refused(&mut self, greeting: Reply) {
        if self.reply(greeting).await.is_err() {
            return;
        }
        let max = self.server.config.max_line_length;
        for _ in 0..REFUSED_COMMANDS {
            if self.conn.flush().await.is_err() {
                return;
            }
            let line = match tokio::time::timeout(CLOSING_TIMEOUT, self.conn.read_line(max)).await {
                Ok(Ok(line)) => line,
                Ok(Err(LineError::TooLong)) => continue,
                Ok(Err(_)) | Err(_) => return,
            };
            if matches!(parse_command(&line), Ok(Command::Quit)) {
                let _ = self.reply(Reply::new(221, "2.0.0", "Bye")).await;
                return;
            }
            let bad = Reply::new(503, "5.5.1", "Bad sequence of commands; send QUIT");
            if self.reply(bad).await.is_err() {
                return;
            }
        }
    }

    /// Whether `command` came with more input behind it where the client had to wait for the
    /// reply first (see [`may_be_followed`]). Checked right after the command was read, before
    /// its reply is sent: a client that waits for replies cannot have sent more yet.
    pub(crate) async fn improper_pipelining(&mut self, command: &Command) -> io::Result<bool> {
        let Some(g) = &self.guard else {
            return Ok(false);
        };
        if !g.config.reject_early_talkers
            || self.conn.buffered() == 0
            || may_be_followed(command, &self.state)
        {
            return Ok(false);
        }
        let ip = self.info.peer.ip();
        let verb = format!("{command:?}");
        let verb = verb.split(['(', ' ', '{']).next().unwrap_or("");
        telemetry::smtp_rejected(telemetry::Rejection::EarlyTalker);
        tracing::info!(target: "audit", event = %"early_talker", ip = %ip, stage = %"pipelining", command = %verb, conn = self.info.id, "client refused: sent a command before the reply to the previous one");
        let host = self.server.config.hostname.clone();
        self.reply(Reply::new(
            554,
            "5.5.0",
            format!("{host} Error: SMTP protocol synchronization"),
        ))
        .await?;
        Ok(true)
    }

    /// HELO/EHLO sanity: `Some(flow)` when the argument is refused.
    pub(crate) async fn check_helo(&mut self, name: &str) -> io::Result<Option<Flow>> {
        let Some(g) = self.guard.clone() else {
            return Ok(None);
        };
        let ip = self.info.peer.ip();
        if g.config.reject_invalid_helo && !antispam::valid_helo(name) {
            telemetry::smtp_rejected(telemetry::Rejection::Helo);
            tracing::info!(target: "audit", event = %"helo_refused", ip = %ip, helo = ?name, reason = %"invalid", conn = self.info.id, "HELO refused");
            // RFC 5321 §4.1.1.1: the argument is a domain or an address literal.
            return self
                .answer(501, "5.5.2", "Invalid HELO/EHLO hostname")
                .await
                .map(Some);
        }
        let host = &self.server.config.hostname;
        if g.config.reject_helo_as_us && antispam::claims_to_be_us(name, host, self.info.local.ip())
        {
            telemetry::smtp_rejected(telemetry::Rejection::Helo);
            tracing::info!(target: "audit", event = %"helo_refused", ip = %ip, helo = ?name, reason = %"ours", conn = self.info.id, "HELO refused");
            return self
                .answer(
                    550,
                    "5.7.1",
                    "HELO/EHLO names this server, and you are not it",
                )
                .await
                .map(Some);
        }
        Ok(None)
    }

    /// The per-address message rate, counted at MAIL: `Some(flow)` when over it.
    pub(crate) async fn check_message_rate(&mut self) -> io::Result<Option<Flow>> {
        let Some(g) = self.guard.clone() else {
            return Ok(None);
        };
        if self.auth.is_some() || g.message_allowed(self.info.peer.ip()) {
            return Ok(None);
        }
        let ip = self.info.peer.ip();
        telemetry::smtp_rejected(telemetry::Rejection::RateLimit);
        tracing::info!(target: "audit", event = %"message_rate", ip = %ip, limit = g.config.message_rate_per_ip, conn = self.info.id, "MAIL refused: too much mail from this address");
        // Postfix's reply for smtpd_client_message_rate_limit; RFC 3463 X.7.1.
        let text = format!("Error: too much mail from {ip}, try again later");
        self.answer(450, "4.7.1", &text).await.map(Some)
    }

    /// Greylisting of one accepted local recipient: `Some(flow)` when it must wait.
    pub(crate) async fn check_greylist(
        &mut self,
        from: &ReversePath,
        recipient: &str,
    ) -> io::Result<Option<Flow>> {
        let Some(g) = self.guard.clone() else {
            return Ok(None);
        };
        if self.auth.is_some() || !g.config.greylisting {
            return Ok(None);
        }
        let sender = match from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(a) => a.to_string(),
        };
        let ip = self.info.peer.ip();
        match g.greylist(ip, &sender, recipient).await {
            Verdict::Accept => Ok(None),
            Verdict::Wait(secs) => {
                telemetry::smtp_rejected(telemetry::Rejection::Greylisted);
                tracing::info!(target: "audit", event = %"greylisted", ip = %ip, network = %antispam::network_of(ip), sender = ?sender, rcpt = ?recipient, retry_in = secs, conn = self.info.id, "recipient greylisted");
                // RFC 5321 §4.2.5 / RFC 3463 X.7.1: a temporary refusal the client retries.
                let text = format!("Greylisted, please try again in {secs} seconds");
                self.answer(451, "4.7.1", &text).await.map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Helo;

    #[test]
    fn pipelining_rules() {
        let ehlo = State::Ready(Helo {
            name: "c".into(),
            extended: true,
        });
        let helo = State::Ready(Helo {
            name: "c".into(),
            extended: false,
        });
        let mail = parse_command(b"MAIL FROM:<a@b.test>\r\n").unwrap();
        assert!(may_be_followed(&mail, &ehlo));
        assert!(!may_be_followed(&mail, &helo));
        assert!(!may_be_followed(&mail, &State::Connected));
        for last in ["DATA", "QUIT", "NOOP", "EHLO x", "HELO x", "VRFY x"] {
            let c = parse_command(format!("{last}\r\n").as_bytes()).unwrap();
            assert!(!may_be_followed(&c, &ehlo), "{last}");
        }
        let bdat = parse_command(b"BDAT 10\r\n").unwrap();
        assert!(may_be_followed(&bdat, &helo));
    }
}
