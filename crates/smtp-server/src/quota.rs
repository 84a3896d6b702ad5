//! Quotas at SMTP: a full mailbox is refused at RCPT when the size is known (RFC 1870 `SIZE=`,
//! else as if one octet) and at the end of DATA, with `452 4.2.2` (temporary: the sender
//! retries, and the mail arrives once the user makes room) or, by configuration, `552 5.2.2`
//! (RFC 3463 X.2.2 "mailbox full"; RFC 5321 §4.5.3.1.10). The store's atomic check-and-add
//! decides (`store::quota`); the checks here only pick the recipients with room.
//!
//! Per recipient: at RCPT a full mailbox refuses that recipient only. After DATA, SMTP has
//! one reply for the whole message: when every local recipient is full (and none is remote)
//! the message is refused; when only some are, the others get it and the sender gets a
//! delivery status notification (RFC 3464) for the full ones — an acknowledged message must
//! reach every recipient or be reported (RFC 5321 §6.1).

use std::sync::Arc;

use smtp_proto::{Reply, ReversePath};
use store::{
    AccountId, DsnNotify, OutboundEnvelope, OutboundRecipient, Store, StoreError, StoreResult,
};

use crate::inbound::deliver_junk;
use crate::session::Recipient;

/// The reply for a recipient whose mailbox is full.
pub(crate) fn over_quota_reply(permanent: bool) -> Reply {
    if permanent {
        Reply::new(552, "5.2.2", "Mailbox full")
    } else {
        Reply::new(452, "4.2.2", "Mailbox full")
    }
}

/// `accounts` split into those with room for one more message of `size` octets and those
/// without (a snapshot: the store's deliver decides atomically).
pub(crate) async fn split(
    store: &dyn Store,
    accounts: &[AccountId],
    size: u64,
) -> StoreResult<(Vec<AccountId>, Vec<AccountId>)> {
    let (mut room, mut full) = (Vec::new(), Vec::new());
    for &a in accounts {
        if store.quota(a).await?.would_exceed(size) {
            full.push(a);
        } else {
            room.push(a);
        }
    }
    Ok((room, full))
}

/// How many times a delivery that lost a race for the last bytes is tried again.
const ATTEMPTS: usize = 3;

/// Delivers `message` to every account of `accounts` that has room; returns the accounts it
/// could not take for quota. A concurrent delivery that took the last bytes of one account
/// between the check and the store's transaction makes the whole transaction fail with
/// `OverQuota` (nothing stored): the accounts are checked again and the delivery retried.
pub(crate) async fn deliver_with_room(
    store: &dyn Store,
    message: Arc<Vec<u8>>,
    date: i64,
    accounts: &[AccountId],
    junk: bool,
) -> StoreResult<Vec<AccountId>> {
    let size = message.len() as u64;
    let mut full = Vec::new();
    if junk {
        // Filed one account at a time (each in its Junk mailbox): a full one fails alone.
        for &a in accounts {
            match deliver_junk(store, Arc::clone(&message), date, &[a]).await {
                Err(StoreError::OverQuota) => full.push(a),
                other => other?,
            }
        }
        return Ok(full);
    }
    let mut pending = accounts.to_vec();
    for attempt in 1..=ATTEMPTS {
        let (room, over) = split(store, &pending, size).await?;
        full.extend(over);
        if room.is_empty() {
            return Ok(full);
        }
        match store.deliver(Arc::clone(&message), date, &room).await {
            Ok(_) => return Ok(full),
            Err(StoreError::OverQuota) if attempt < ATTEMPTS => pending = room,
            Err(e) => return Err(e),
        }
    }
    Ok(full)
}

/// The recipients (as given in RCPT) that map to one of the `full` accounts.
pub(crate) fn full_recipients(rcpts: &[Recipient], full: &[AccountId]) -> Vec<String> {
    rcpts
        .iter()
        .filter(|r| r.accounts.iter().any(|a| full.contains(a)))
        .map(|r| r.address.to_string())
        .collect()
}

/// Reports `failed` recipients (mailbox full) to the sender of the message whose header
/// section starts `original`: an RFC 3464 report, delivered locally when the sender is a
/// local user, else queued from the null sender. Never to the null sender (RFC 5321 §4.5.5).
pub(crate) async fn report_full(
    store: &dyn Store,
    outbound: Option<&Arc<dyn store::QueueStore>>,
    hostname: &str,
    sender: &ReversePath,
    failed: &[String],
    original: &[u8],
    queue_id: &str,
) -> StoreResult<()> {
    let ReversePath::Mailbox(sender) = sender else {
        return Ok(());
    };
    let report = Arc::new(build_report(
        hostname,
        &sender.to_string(),
        failed,
        original,
        queue_id,
    ));
    let local = store.resolve_recipient(sender).await?;
    if !local.is_empty() {
        return store
            .deliver(report, chrono::Utc::now().timestamp(), &local)
            .await
            .map(drop);
    }
    let Some(queue) = outbound else {
        return Err(StoreError::Temporary(
            "no outbound queue for the report".into(),
        ));
    };
    let envelope = OutboundEnvelope {
        sender: String::new(),
        recipients: vec![OutboundRecipient {
            address: sender.to_string(),
            orcpt: None,
            notify: DsnNotify::default(),
        }],
        envid: None,
        ret: None,
        account: None,
        smtputf8: false,
    };
    queue.enqueue(report, &envelope).await.map(drop)
}

/// A `multipart/report; report-type=delivery-status` (RFC 3464, RFC 6522) with the original
/// header section (`text/rfc822-headers`).
fn build_report(
    hostname: &str,
    sender: &str,
    failed: &[String],
    original: &[u8],
    queue_id: &str,
) -> Vec<u8> {
    let now = chrono::Utc::now();
    let boundary = format!("{queue_id}.quota/{hostname}");
    let headers_end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(original.len(), |p| p + 2);
    let mut list = String::new();
    let mut blocks = String::new();
    for r in failed {
        list.push_str(&format!("<{r}>: mailbox full\r\n"));
        blocks.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.2.2\r\n\
             Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"
        ));
    }
    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{sender}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{queue_id}.quota@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This is the mail system at {hostname}.\r\n\r\n\
         Your message was delivered to its other recipients, but not to the following,\r\n\
         whose mailboxes are full:\r\n\r\n{list}\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         X-Queue-ID: {queue_id}\r\n{blocks}\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n",
        date = now.to_rfc2822(),
    )
    .into_bytes();
    out.extend_from_slice(&original[..headers_end]);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}
