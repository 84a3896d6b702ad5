//! Submission policy (RFC 6409): who may send as whom, the From: check after DATA, and the
//! sending rate limits.
//!
//! Rules, for every authenticated session (submission on 587/465, or AUTH on port 25):
//! - the envelope sender is the user's own address or one of their aliases — an alias whose
//!   source is exactly that address and whose targets include the user (a domain catch-all
//!   does not count); otherwise `553 5.7.1` (RFC 6409 §6.1 lets the MSA refuse);
//!   the null sender `<>` is allowed (MDNs are sent with it, RFC 8098 §2.1);
//! - the message has exactly one From: field (RFC 5322 §3.6) and every address in it is the
//!   user's or an alias's; otherwise `553 5.7.1` after the data;
//! - at most `max_messages_per_hour` messages and `max_recipients_per_hour` recipients per
//!   account in a sliding hour; over → `450 4.7.1` at MAIL or RCPT, or after the data when
//!   parallel sessions used the allowance meanwhile (counted in the store: `rate.rs`).

use auth::Authenticated;
use mail_types::Address;
use smtp_proto::Reply;
use store::{SendingLimits, Store, StoreResult};

use crate::SmtpConfig;
use crate::headers::{count, from_addresses};
use crate::rate::RateLimiter;

/// Whether `user` may use `address` as a sender: their own address, or an alias of theirs.
pub(crate) async fn may_send_as(
    store: &dyn Store,
    user: &Authenticated,
    address: &Address,
) -> StoreResult<bool> {
    if *address == user.address {
        return Ok(true);
    }
    let aliases = store.list_aliases().await?;
    Ok(aliases.iter().any(|alias| {
        Address::parse(&alias.source).is_ok_and(|source| source == *address)
            && alias.targets.contains(&user.address)
    }))
}

/// The refusal for a message whose From: field is not the user's (RFC 6409 §6.1), or `None`.
pub(crate) async fn check_from(
    store: &dyn Store,
    user: &Authenticated,
    message: &[u8],
) -> StoreResult<Option<Reply>> {
    let forged = || {
        Some(Reply::new(
            553,
            "5.7.1",
            "From: header address not owned by authenticated user",
        ))
    };
    if count(message, "From") != 1 {
        return Ok(Some(Reply::new(
            553,
            "5.7.1",
            "Message must have exactly one From: header",
        )));
    }
    let Some(addresses) = from_addresses(message) else {
        return Ok(forged());
    };
    for text in addresses {
        let Ok(address) = Address::parse(&text) else {
            return Ok(forged());
        };
        if !may_send_as(store, user, &address).await? {
            return Ok(forged());
        }
    }
    Ok(None)
}

impl SmtpConfig {
    /// The hourly allowance per account.
    pub(crate) fn sending_limits(&self) -> SendingLimits {
        SendingLimits {
            max_messages: self.max_messages_per_hour,
            max_recipients: self.max_recipients_per_hour,
        }
    }
}

/// RFC 3463 X.7.1: delivery not authorized; 4yz: the client may try again later.
fn over(max: u32, what: &str) -> Reply {
    Reply::new(
        450,
        "4.7.1",
        format!("Sending limit reached ({max} {what} per hour), try again later"),
    )
}

/// `450 4.7.1` at MAIL when the account has sent its messages for the hour.
pub(crate) async fn message_limit(
    cfg: &SmtpConfig,
    rate: &RateLimiter,
    user: &Authenticated,
) -> StoreResult<Option<Reply>> {
    let Some(max) = cfg.max_messages_per_hour else {
        return Ok(None);
    };
    let used = rate.usage(user.account).await?.messages;
    Ok((used >= u64::from(max)).then(|| over(max, "messages")))
}

/// `450 4.7.1` at RCPT when one more recipient would exceed the hourly allowance.
pub(crate) async fn recipient_limit(
    cfg: &SmtpConfig,
    rate: &RateLimiter,
    user: &Authenticated,
    in_transaction: usize,
) -> StoreResult<Option<Reply>> {
    let Some(max) = cfg.max_recipients_per_hour else {
        return Ok(None);
    };
    let used = rate.usage(user.account).await?.recipients + in_transaction as u64;
    Ok((used >= u64::from(max)).then(|| over(max, "recipients")))
}

/// Counts an accepted message against the allowance, in one store transaction with the
/// check (parallel sessions passed MAIL and RCPT on the same usage; only as many as fit are
/// counted). `Ok(Err(reply))`: over the allowance, refuse the message. `Ok(Ok(None))`: no
/// limits configured, nothing counted.
pub(crate) async fn count_message(
    cfg: &SmtpConfig,
    rate: &RateLimiter,
    user: &Authenticated,
    recipients: usize,
) -> StoreResult<Result<Option<i64>, Reply>> {
    let limits = cfg.sending_limits();
    if limits == SendingLimits::default() {
        return Ok(Ok(None));
    }
    let n = u32::try_from(recipients).unwrap_or(u32::MAX);
    Ok(match rate.count(user.account, n, limits).await? {
        Ok(entry) => Ok(Some(entry)),
        Err(used) => Err(match cfg.max_messages_per_hour {
            Some(max) if used.messages >= u64::from(max) => over(max, "messages"),
            _ => over(cfg.max_recipients_per_hour.unwrap_or(0), "recipients"),
        }),
    })
}
