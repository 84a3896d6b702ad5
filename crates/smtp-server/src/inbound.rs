//! The session's side of the checks on arriving mail (the `inbound-auth` crate does them):
//! when they start, what their verdict does to the message, and filing into Junk.
//!
//! Checked: every transaction on the MX port without AUTH, trusted network or not (issue 9).
//! Submissions (authenticated) are not checked. SPF and iprev start at the first accepted
//! recipient — not at MAIL FROM, so a client trying addresses that do not exist costs no DNS
//! queries — and run while the message arrives.

use std::sync::Arc;

use inbound_auth::{Disposition, Pending, strip_forged};
use smtp_proto::{Reply, ReversePath};
use store::{AccountId, Flags, SpecialUse, Store, StoreResult};

use crate::SmtpMode;
use crate::session::{Session, State};

/// What the checks decided for a message.
pub(crate) enum Checked {
    /// Deliver `body` (forged results removed) with `header` prepended; into Junk if `junk`.
    Accept {
        body: Vec<u8>,
        header: String,
        junk: bool,
        /// `method=result …` for the delivery log line.
        summary: String,
        /// The client's forward-confirmed PTR name, for `Received:`.
        client_name: Option<String>,
    },
    Refuse(Reply),
}

impl Session {
    /// The envelope checks for the transaction's first recipient, if this session is checked.
    pub(crate) fn start_checks(&self) -> Option<Box<Pending>> {
        let checker = self.server.inbound_auth.as_ref()?;
        if self.server.config.mode != SmtpMode::Mx || self.auth.is_some() {
            return None;
        }
        let State::Mail(helo, txn) = &self.state else {
            return None;
        };
        if txn.checks.is_some() {
            return None;
        }
        let from = match &txn.from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(a) => a.to_string(),
        };
        Some(Box::new(checker.begin(
            self.info.peer.ip(),
            &helo.name,
            &from,
        )))
    }
}

/// Completes the checks on `body` as received and applies the verdict.
pub(crate) async fn check(
    pending: Box<Pending>,
    body: Vec<u8>,
    hostname: &str,
    conn: u64,
) -> Checked {
    let verdict = (*pending).finish(&body).await;
    let mut summary = String::new();
    for r in verdict.results.all() {
        if !summary.is_empty() {
            summary.push(' ');
        }
        summary.push_str(r.method);
        summary.push('=');
        summary.push_str(r.result.as_str());
    }
    match verdict.disposition {
        Disposition::Refuse { code, status, text } => {
            // Accepted messages log their results on the delivery line.
            tracing::info!(conn, results = %summary, code, status, %text, "smtp: refused by inbound authentication");
            Checked::Refuse(Reply::new(code, status, text))
        }
        d => {
            // RFC 8601 §5: results claiming our authserv-id that came from outside go first.
            let (body, removed) = strip_forged(&body, hostname);
            if removed > 0 {
                tracing::info!(conn, removed, "smtp: removed forged Authentication-Results");
            }
            Checked::Accept {
                body,
                header: verdict.header,
                junk: matches!(d, Disposition::Junk { .. }),
                summary,
                client_name: verdict.client_name,
            }
        }
    }
}

/// Files `message` into each account's Junk mailbox (the RFC 6154 `\Junk` special use) with
/// the `$Junk` keyword (RFC 5788 registry); an account without one gets it in its INBOX. One
/// append per account: if a later one fails, the client retries and the earlier accounts get
/// a duplicate, never a loss.
pub(crate) async fn deliver_junk(
    store: &dyn Store,
    message: Arc<Vec<u8>>,
    date: i64,
    accounts: &[AccountId],
) -> StoreResult<()> {
    let flags = Flags {
        keywords: vec!["$Junk".to_string()],
        ..Flags::default()
    };
    let mut inbox = Vec::new();
    for &account in accounts {
        let junk = store
            .lookup_mailboxes(account)
            .await?
            .into_iter()
            .find(|m| m.special_use == Some(SpecialUse::Junk));
        match junk {
            Some(mailbox) => {
                store
                    .append(mailbox.id, Arc::clone(&message), &flags, date)
                    .await?;
            }
            None => inbox.push(account),
        }
    }
    if !inbox.is_empty() {
        store.deliver(message, date, &inbox).await?;
    }
    Ok(())
}
