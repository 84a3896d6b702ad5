//! The outbound queue's SQL: `queue_messages` and `queue_recipients`, the same semantics as the
//! embedded store's. Claims and leases, and the `queue_domains` index of due work that every
//! change of a pending recipient here keeps current, are in `claims.rs`.
//!
//! Invariants:
//! - A queued message holds exactly one reference on its body's blob, taken in the same
//!   transaction that inserts the row and released in the one that deletes it.
//! - A recipient's status only moves away from `pending` (an attempt result for a recipient
//!   that is no longer pending is ignored), so a late result cannot resurrect a deleted or
//!   finished recipient.
//! - An attempt result counts only from the lease holding the recipient: a holder that lost
//!   its lease cannot overwrite the new holder's work.
//! - `queue_domains` rows are taken last in each transaction, after the recipient rows (see
//!   `claims.rs`).

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;
use store::{
    AttemptResult, DsnNotify, DsnRet, LeaseId, OutboundEnvelope, QueueId, QueuedMessage,
    QueuedRecipient, RecipientStatus, StoreError, UnixTime,
};
use tokio_postgres::Row;

use crate::claims::{lower_domains, refresh_domains};
use crate::db::{col_u32, col_u64, exec, now, opt, rows};
use crate::error::PgResult;
use crate::ops_msg::NewBlob;
use crate::prim::{acquire_blob, release_blobs};
use crate::tx::Tx;

fn notify_bits(n: DsnNotify) -> i16 {
    i16::from(n.bits())
}

fn notify_from_bits(b: i16) -> DsnNotify {
    DsnNotify::from_bits(u8::try_from(b).unwrap_or(0))
}

fn ret_str(r: Option<DsnRet>) -> Option<&'static str> {
    r.map(DsnRet::as_str)
}

fn ret_from(s: Option<String>) -> Option<DsnRet> {
    s.as_deref().and_then(DsnRet::parse)
}

/// The lower-case domain of an address (after the last `@`); empty when there is none.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default()
}

pub async fn enqueue(
    tx: &mut Tx<'_>,
    blob: &NewBlob<'_>,
    envelope: &OutboundEnvelope,
) -> PgResult<QueueId> {
    if envelope.recipients.is_empty() {
        return Err(StoreError::Invalid("a queued message needs recipients".into()).into());
    }
    tx.queue_wake = true;
    acquire_blob(tx, blob.hash, 1, Some(blob.bytes)).await?;
    let created = now();
    let id: QueueId = opt(
        &tx.t,
        "INSERT INTO queue_messages (blob, size, sender, envid, ret, account, smtputf8, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &blob.hash,
            &(blob.bytes.len() as i64),
            &envelope.sender,
            &envelope.envid,
            &ret_str(envelope.ret),
            &envelope.account,
            &envelope.smtputf8,
            &created,
        ],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::Temporary("queue insert returned nothing".into()))?;
    let addresses: Vec<&str> = envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    let domains: Vec<String> = addresses.iter().map(|a| domain_of(a)).collect();
    let orcpts: Vec<Option<&str>> = envelope
        .recipients
        .iter()
        .map(|r| r.orcpt.as_deref())
        .collect();
    let notifies: Vec<i16> = envelope
        .recipients
        .iter()
        .map(|r| notify_bits(r.notify))
        .collect();
    // WITH ORDINALITY keeps the envelope's order in the recipient ids.
    exec(
        &tx.t,
        "INSERT INTO queue_recipients (message, address, domain, orcpt, notify, next_attempt)
         SELECT $1, r.address, r.domain, r.orcpt, r.notify, $6
         FROM unnest($2::text[], $3::text[], $4::text[], $5::smallint[])
              WITH ORDINALITY AS r(address, domain, orcpt, notify, ord)
         ORDER BY r.ord",
        &[&id, &addresses, &domains, &orcpts, &notifies, &created],
    )
    .await?;
    lower_domains(&tx.t, &domains.into_iter().collect(), created).await?;
    Ok(id)
}

const MESSAGE_COLUMNS: &str =
    "m.id, m.size, m.sender, m.envid, m.ret, m.account, m.smtputf8, m.created, m.delay_notified";

fn message_from_row(r: &Row) -> QueuedMessage {
    QueuedMessage {
        id: r.get(0),
        size: col_u64(r.get(1)),
        sender: r.get(2),
        envid: r.get(3),
        ret: ret_from(r.get(4)),
        account: r.get(5),
        smtputf8: r.get(6),
        created: r.get(7),
        delay_notified: r.get(8),
        recipients: Vec::new(),
    }
}

fn recipient_from_row(r: &Row) -> QueuedRecipient {
    let status: &str = r.get(6);
    QueuedRecipient {
        lease: r.get(11),
        id: r.get(1),
        address: r.get(2),
        domain: r.get(3),
        orcpt: r.get(4),
        notify: notify_from_bits(r.get(5)),
        status: RecipientStatus::parse(status).unwrap_or(RecipientStatus::Pending),
        attempts: col_u32(i64::from(r.get::<_, i32>(7))),
        next_attempt: r.get(8),
        last_error: r.get(9),
        last_attempt: r.get(10),
    }
}

/// Attaches the recipients of `msgs` (one statement for all of them).
async fn with_recipients<C: GenericClient>(
    c: &C,
    mut msgs: Vec<QueuedMessage>,
) -> PgResult<Vec<QueuedMessage>> {
    if msgs.is_empty() {
        return Ok(msgs);
    }
    let ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
    let rs = rows(
        c,
        "SELECT r.message, r.id, r.address, r.domain, r.orcpt, r.notify, r.status, r.attempts,
                r.next_attempt, r.last_error, r.last_attempt, l.id
         FROM queue_recipients r LEFT JOIN queue_leases l ON l.id = r.lease
         WHERE r.message = ANY($1) ORDER BY r.message, r.id",
        &[&ids],
    )
    .await?;
    let mut by_message: BTreeMap<i64, Vec<QueuedRecipient>> = BTreeMap::new();
    for r in &rs {
        by_message
            .entry(r.get(0))
            .or_default()
            .push(recipient_from_row(r));
    }
    for m in &mut msgs {
        m.recipients = by_message.remove(&m.id).unwrap_or_default();
    }
    Ok(msgs)
}

/// The messages `ids` that exist, with their recipients (inside the caller's transaction).
pub async fn messages_by_id<C: GenericClient>(
    c: &C,
    ids: &[QueueId],
) -> PgResult<BTreeMap<QueueId, QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages m WHERE m.id = ANY($1)");
    let rs = rows(c, &sql, &[&ids]).await?;
    Ok(
        with_recipients(c, rs.iter().map(message_from_row).collect())
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect(),
    )
}

pub async fn next_due<C: GenericClient>(c: &C) -> PgResult<Option<UnixTime>> {
    Ok(rows(
        c,
        "SELECT min(next_attempt) FROM queue_recipients WHERE status = 'pending'",
        &[],
    )
    .await?[0]
        .get(0))
}

/// Call inside a snapshot (message and recipients agree).
pub async fn queued_message<C: GenericClient>(
    c: &C,
    id: QueueId,
) -> PgResult<Option<QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages m WHERE m.id = $1");
    let rs = rows(c, &sql, &[&id]).await?;
    Ok(
        with_recipients(c, rs.iter().map(message_from_row).collect())
            .await?
            .pop(),
    )
}

/// Call inside a snapshot.
pub async fn list_queue<C: GenericClient>(c: &C) -> PgResult<Vec<QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages m ORDER BY m.id");
    let rs = rows(c, &sql, &[]).await?;
    with_recipients(c, rs.iter().map(message_from_row).collect()).await
}

/// The bytes of a queued message.
pub async fn body<C: GenericClient>(c: &C, id: QueueId) -> PgResult<Vec<u8>> {
    Ok(opt(
        c,
        "SELECT b.data FROM queue_messages m JOIN blobs b ON b.hash = m.blob WHERE m.id = $1",
        &[&id],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))?
    .get(0))
}

/// Records the results of recipients `lease` still holds; ends its hold on them. One statement
/// for all results; of several results for one recipient the first counts (as recorded one
/// after the other, the first ends the hold).
pub async fn record_attempts(
    tx: &mut Tx<'_>,
    lease: LeaseId,
    results: &[AttemptResult],
) -> PgResult<()> {
    let mut seen = BTreeSet::new();
    let results: Vec<&AttemptResult> = results
        .iter()
        .filter(|r| seen.insert(r.recipient))
        .collect();
    let ids: Vec<i64> = results.iter().map(|r| r.recipient).collect();
    let statuses: Vec<&str> = results.iter().map(|r| r.status.as_str()).collect();
    let next: Vec<UnixTime> = results.iter().map(|r| r.next_attempt).collect();
    let errors: Vec<Option<&str>> = results.iter().map(|r| r.error.as_deref()).collect();
    let at: Vec<UnixTime> = results.iter().map(|r| r.at).collect();
    let changed = rows(
        &tx.t,
        "UPDATE queue_recipients r
         SET status = x.status, next_attempt = x.next_attempt, last_error = x.error,
             last_attempt = x.at, attempts = r.attempts + 1, lease = NULL
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])
              AS x(id, status, next_attempt, error, at)
         WHERE r.id = x.id AND r.status = 'pending' AND r.lease = $6
         RETURNING r.domain",
        &[&ids, &statuses, &next, &errors, &at, &lease],
    )
    .await?;
    let domains: BTreeSet<String> = changed.iter().map(|r| r.get(0)).collect();
    refresh_domains(&tx.t, &domains).await
}

pub async fn set_delay_notified(tx: &mut Tx<'_>, id: QueueId) -> PgResult<()> {
    exec(
        &tx.t,
        "UPDATE queue_messages SET delay_notified = true WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(())
}

/// Makes pending recipients due now, except those a lease holds (being delivered: a claimed
/// recipient's `next_attempt` is its lease's expiry, so `lease IS NULL` tells them apart; an
/// expired lease's recipients are due already).
pub async fn retry(tx: &mut Tx<'_>, id: Option<QueueId>, now: UnixTime) -> PgResult<u64> {
    tx.queue_wake = true;
    match id {
        Some(id) => {
            if opt(&tx.t, "SELECT 1 FROM queue_messages WHERE id = $1", &[&id])
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("queued message {id}")).into());
            }
            let changed = rows(
                &tx.t,
                "UPDATE queue_recipients SET next_attempt = $2
                 WHERE message = $1 AND status = 'pending' AND lease IS NULL
                 RETURNING domain",
                &[&id, &now],
            )
            .await?;
            let domains: BTreeSet<String> = changed.iter().map(|r| r.get(0)).collect();
            lower_domains(&tx.t, &domains, now).await?;
            Ok(changed.len() as u64)
        }
        None => {
            let n = exec(
                &tx.t,
                "UPDATE queue_recipients SET next_attempt = $1
                 WHERE status = 'pending' AND next_attempt > $1 AND lease IS NULL",
                &[&now],
            )
            .await?;
            // Every domain with such a recipient is now due: a lower bound for all of them,
            // the rows taken in name order like everywhere else.
            exec(
                &tx.t,
                "UPDATE queue_domains SET next_due = $1 WHERE domain IN
                   (SELECT domain FROM queue_domains WHERE next_due > $1
                    ORDER BY domain FOR UPDATE)",
                &[&now],
            )
            .await?;
            Ok(n)
        }
    }
}

/// Deletes one message row with its recipients and releases its blob reference.
pub async fn delete(tx: &mut Tx<'_>, id: QueueId) -> PgResult<()> {
    // Statuses only move away from pending, so these are all the domains the delete may
    // leave without pending recipients.
    let domains: BTreeSet<String> = rows(
        &tx.t,
        "SELECT DISTINCT domain FROM queue_recipients WHERE message = $1 AND status = 'pending'",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let hash: String = opt(
        &tx.t,
        "DELETE FROM queue_messages WHERE id = $1 RETURNING blob",
        &[&id],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))?
    .get(0);
    // Recipients go by ON DELETE CASCADE.
    release_blobs(tx, &BTreeMap::from([(hash, 1)])).await?;
    refresh_domains(&tx.t, &domains).await
}

pub async fn remove_finished(tx: &mut Tx<'_>) -> PgResult<u64> {
    let gone = rows(
        &tx.t,
        "DELETE FROM queue_messages m WHERE NOT EXISTS
           (SELECT 1 FROM queue_recipients r WHERE r.message = m.id AND r.status = 'pending')
         RETURNING blob",
        &[],
    )
    .await?;
    let mut per_blob: BTreeMap<String, u64> = BTreeMap::new();
    for r in &gone {
        *per_blob.entry(r.get(0)).or_default() += 1;
    }
    release_blobs(tx, &per_blob).await?;
    Ok(gone.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_bits_round_trip() {
        for n in [DsnNotify::default(), DsnNotify::NEVER] {
            assert_eq!(notify_from_bits(notify_bits(n)), n);
        }
        assert_eq!(domain_of("a@B.Example"), "b.example");
        assert_eq!(domain_of("\"a@b\"@c.org"), "c.org");
        assert_eq!(domain_of("nodomain"), "");
    }
}
