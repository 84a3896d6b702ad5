//! MAIL and RCPT: the envelope, and the rule that makes yubin never an open relay.
//!
//! Recipient policy (RFC 5321 §3.6.2 and §7.1):
//! - a local domain's address is resolved at once (aliases → accounts); nobody → `550 5.1.1`;
//! - any other domain from an unauthenticated client → `550 5.7.1` (no relaying);
//! - any other domain from an authenticated client → accepted for the outbound queue when the
//!   server has one, else `451 4.4.0` (a temporary error keeps the message in the client's
//!   outbox).
//!
//! Authenticated senders are also held to the submission policy (see `submission`).

use std::io;

use mail_types::{Address, Domain};
use smtp_proto::{ForwardPath, MailParams, RcptParams, ReversePath};
use store::{AccountId, Store};

use crate::SmtpMode;
use crate::delivery::store_error_reply;
use crate::session::{Flow, Recipient, Session, State, Transaction};
use crate::submission::{may_send_as, message_limit, recipient_limit};

/// Whether `address` is all ASCII (checked per MAIL/RCPT, without formatting it).
fn is_ascii(address: &Address) -> bool {
    address.local().is_ascii() && address.domain().as_str().is_ascii()
}

/// RFC 6531 §3.5 / RFC 5248 X.6.7.
const NON_ASCII: &str = "Non-ASCII address needs the SMTPUTF8 parameter";

impl Session {
    /// RFC 5321 §4.1.1.2. The caller checked that the session is greeted and idle.
    pub(crate) async fn mail(&mut self, from: ReversePath, params: MailParams) -> io::Result<Flow> {
        if self.server.config.mode == SmtpMode::Submission && self.auth.is_none() {
            // RFC 4954 §6: 530 when the server requires authentication first.
            telemetry::smtp_rejected(telemetry::Rejection::AuthRequired);
            return self.answer(530, "5.7.0", "Authentication required").await;
        }
        if let Some(refused) = self.check_message_rate().await? {
            return Ok(refused);
        }
        let cfg = &self.server.config;
        // RFC 6531 §3.4: a non-ASCII address needs the SMTPUTF8 parameter on MAIL (§3.5:
        // 553 with X.6.7 otherwise).
        if let ReversePath::Mailbox(address) = &from
            && !params.smtputf8
            && !is_ascii(address)
        {
            telemetry::smtp_rejected(telemetry::Rejection::Other);
            return self.answer(553, "5.6.7", NON_ASCII).await;
        }
        // RFC 1870 §6.1: a declared size over the limit is refused at once with 552.
        if params.size.is_some_and(|s| s > cfg.max_message_size as u64) {
            telemetry::smtp_rejected(telemetry::Rejection::Size);
            return self
                .answer(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                )
                .await;
        }
        if let Some(user) = self.auth.clone() {
            match message_limit(cfg, &self.server.rate, &user).await {
                Ok(None) => {}
                Ok(Some(reply)) => {
                    telemetry::smtp_rejected(telemetry::Rejection::RateLimit);
                    return self.reply(reply).await.map(|()| Flow::Continue);
                }
                Err(e) => {
                    return self
                        .reply(store_error_reply(&e))
                        .await
                        .map(|()| Flow::Continue);
                }
            }
            if let ReversePath::Mailbox(address) = &from {
                let store = std::sync::Arc::clone(&self.server.store);
                match may_send_as(store.as_ref(), &user, address).await {
                    Ok(true) => {}
                    // RFC 6409 §6.1 / RFC 3463 X.7.1: not authorised to send as this address.
                    Ok(false) => {
                        telemetry::smtp_rejected(telemetry::Rejection::SenderNotOwned);
                        return self
                            .answer(
                                553,
                                "5.7.1",
                                "Sender address not owned by authenticated user",
                            )
                            .await;
                    }
                    Err(e) => {
                        return self
                            .reply(store_error_reply(&e))
                            .await
                            .map(|()| Flow::Continue);
                    }
                }
            }
        }
        let State::Ready(helo) = std::mem::replace(&mut self.state, State::Connected) else {
            return self.answer(503, "5.5.1", "Bad sequence of commands").await;
        };
        self.state = State::Mail(
            helo,
            Transaction {
                from,
                params,
                rcpts: Vec::new(),
                bdat: None,
                bdat_charge: None,
                checks: None,
            },
        );
        self.answer(250, "2.1.0", "Ok").await
    }

    /// RFC 5321 §4.1.1.3. The caller checked that a transaction is open.
    pub(crate) async fn rcpt(&mut self, to: ForwardPath, params: RcptParams) -> io::Result<Flow> {
        let State::Mail(_, txn) = &self.state else {
            return self.answer(503, "5.5.1", "Need MAIL command").await;
        };
        // RFC 6531 §3.4: the transaction's MAIL must have declared SMTPUTF8 for a non-ASCII
        // recipient.
        if let ForwardPath::Mailbox(address) = &to
            && !txn.params.smtputf8
            && !is_ascii(address)
        {
            telemetry::smtp_rejected(telemetry::Rejection::Other);
            return self.answer(553, "5.6.7", NON_ASCII).await;
        }
        // RFC 5321 §4.5.3.1.10: 452 for too many recipients; the client sends the rest later.
        if txn.rcpts.len() >= self.server.config.max_recipients {
            telemetry::smtp_rejected(telemetry::Rejection::TooManyRecipients);
            return self.answer(452, "4.5.3", "Too many recipients").await;
        }
        if let Some(user) = &self.auth {
            let limit = recipient_limit(
                &self.server.config,
                &self.server.rate,
                user,
                txn.rcpts.len(),
            )
            .await;
            match limit {
                Ok(None) => {}
                Ok(Some(reply)) => {
                    telemetry::smtp_rejected(telemetry::Rejection::RateLimit);
                    return self.reply(reply).await.map(|()| Flow::Continue);
                }
                Err(e) => {
                    return self
                        .reply(store_error_reply(&e))
                        .await
                        .map(|()| Flow::Continue);
                }
            }
        }
        let declared_size = txn.params.size.unwrap_or(0);
        let relay = match (&self.auth, &self.server.outbound) {
            (None, _) => Relay::Denied,
            (Some(_), None) => Relay::Unavailable,
            (Some(_), Some(_)) => Relay::Queue,
        };
        let to_text = match &to {
            ForwardPath::Postmaster => "postmaster".to_string(),
            ForwardPath::Mailbox(a) => a.to_string(),
        };
        // Only Send data crosses the awaits below (the session's stream is not Sync).
        let store = self.server.store.as_ref();
        let resolved = match to {
            ForwardPath::Postmaster => resolve_postmaster(store).await,
            ForwardPath::Mailbox(address) => resolve(store, relay, address).await,
        };
        let (address, accounts) = match resolved {
            Ok(Ok(found)) => found,
            Ok(Err((code, status, text))) => {
                telemetry::smtp_rejected(match status {
                    "5.7.1" => telemetry::Rejection::RelayDenied,
                    "5.1.1" => telemetry::Rejection::UnknownUser,
                    _ => telemetry::Rejection::Other,
                });
                if relay == Relay::Denied && status == "5.7.1" {
                    // The audit trail: someone tried to use us as a relay.
                    tracing::warn!(
                        event = %"relay_refused",
                        conn = self.info.id,
                        ip = %self.info.peer.ip(),
                        recipient = %to_text,
                        "smtp: relay access denied"
                    );
                }
                return self.answer(code, status, text).await;
            }
            Err(e) => {
                return self
                    .reply(store_error_reply(&e))
                    .await
                    .map(|()| Flow::Continue);
            }
        };
        // Refuse a full mailbox now rather than fail the whole message after DATA: with
        // RFC 1870 SIZE= the declared size must fit, else at least one octet (`quota.rs`).
        match crate::quota::split(store, &accounts, declared_size.max(1)).await {
            Ok((_, full)) if !full.is_empty() => {
                tracing::info!(
                    conn = self.info.id,
                    recipient = %to_text,
                    size = declared_size,
                    event = %"quota_refused",
                    "smtp: recipient over quota"
                );
                telemetry::smtp_rejected(telemetry::Rejection::OverQuota);
                let reply = crate::quota::over_quota_reply(self.server.config.over_quota_permanent);
                return self.reply(reply).await.map(|()| Flow::Continue);
            }
            Ok(_) => {}
            Err(e) => {
                return self
                    .reply(store_error_reply(&e))
                    .await
                    .map(|()| Flow::Continue);
            }
        }
        if self.guard.is_some() {
            let from = match &self.state {
                State::Mail(_, txn) => txn.from.clone(),
                _ => ReversePath::Null,
            };
            if let Some(refused) = self.check_greylist(&from, &address.to_string()).await? {
                return Ok(refused);
            }
        }
        let checks = self.start_checks();
        if let State::Mail(_, txn) = &mut self.state {
            txn.rcpts.push(Recipient {
                address,
                accounts,
                params,
            });
            if txn.checks.is_none() {
                txn.checks = checks;
            }
        }
        self.answer(250, "2.1.5", "Ok").await
    }
}

/// What happens to a recipient in another domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Not authenticated: never an open relay.
    Denied,
    /// Authenticated, but this server has no outbound queue.
    Unavailable,
    /// Authenticated: accepted for the outbound queue.
    Queue,
}

/// Applies the recipient policy to one address: the accounts (none for a remote recipient
/// accepted for the queue), or the refusal to send.
async fn resolve(
    store: &dyn Store,
    relay: Relay,
    address: Address,
) -> store::StoreResult<Resolution> {
    if !store.is_local_domain(address.domain()).await? {
        return Ok(match relay {
            Relay::Queue => Ok((address, Vec::new())),
            Relay::Unavailable => Err((
                451,
                "4.4.0",
                "Outbound delivery is not available, try again later",
            )),
            // RFC 5321 §7.1 / RFC 3463 X.7.1: no relaying for strangers.
            Relay::Denied => Err((550, "5.7.1", "Relay access denied")),
        });
    }
    let accounts = store.resolve_recipient(&address).await?;
    if accounts.is_empty() {
        return Ok(Err((550, "5.1.1", "User unknown in local recipient table")));
    }
    Ok(Ok((address, accounts)))
}

/// `<Postmaster>` (RFC 5321 §4.1.1.3): the postmaster of our first local domain that has
/// one.
async fn resolve_postmaster(store: &dyn Store) -> store::StoreResult<Resolution> {
    for domain in store.list_domains().await? {
        let Ok(address) = postmaster_of(&domain) else {
            continue;
        };
        let accounts = store.resolve_recipient(&address).await?;
        if !accounts.is_empty() {
            return Ok(Ok((address, accounts)));
        }
    }
    Ok(Err((550, "5.1.1", "User unknown in local recipient table")))
}

/// The accepted recipient, or the refusal reply (code, enhanced code, text).
type Resolution = Result<(Address, Vec<AccountId>), (u16, &'static str, &'static str)>;

fn postmaster_of(domain: &Domain) -> Result<Address, mail_types::AddressError> {
    Address::parse(&format!("postmaster@{domain}"))
}
