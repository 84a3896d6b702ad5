//! The outbound queue's SQL: `queue_messages` and `queue_recipients`, the same semantics as the
//! embedded store's.
//!
//! Invariants:
//! - A queued message holds exactly one reference on its body's blob, taken in the same
//!   transaction that inserts the row and released in the one that deletes it.
//! - A recipient's status only moves away from `pending` (an attempt result for a recipient
//!   that is no longer pending is ignored), so a late result cannot resurrect a deleted or
//!   finished recipient.
//! - Work is taken with `FOR UPDATE SKIP LOCKED` ([`due_messages`]): a node never waits for,
//!   and never takes, messages another node is taking at that moment. Leases that keep a
//!   claim beyond the transaction come with the queue's claim API.

use std::collections::BTreeMap;

use deadpool_postgres::{GenericClient, Transaction};
use store::{
    AttemptResult, DsnNotify, DsnRet, OutboundEnvelope, QueueId, QueuedMessage, QueuedRecipient,
    RecipientStatus, StoreError, UnixTime,
};
use tokio_postgres::Row;

use crate::db::{col_u32, col_u64, exec, now, opt, rows, sql_u64};
use crate::error::PgResult;
use crate::ops_msg::NewBlob;
use crate::prim::{acquire_blob, release_blobs};
use crate::tx::Tx;

fn notify_bits(n: DsnNotify) -> i16 {
    i16::from(n.success) | (i16::from(n.failure) << 1) | (i16::from(n.delay) << 2)
}

fn notify_from_bits(b: i16) -> DsnNotify {
    DsnNotify {
        success: b & 1 != 0,
        failure: b & 2 != 0,
        delay: b & 4 != 0,
    }
}

fn ret_str(r: Option<DsnRet>) -> Option<&'static str> {
    r.map(|r| match r {
        DsnRet::Full => "full",
        DsnRet::Headers => "hdrs",
    })
}

fn ret_from(s: Option<&str>) -> Option<DsnRet> {
    match s {
        Some("full") => Some(DsnRet::Full),
        Some("hdrs") => Some(DsnRet::Headers),
        _ => None,
    }
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
        lease: None,
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
        "SELECT message, id, address, domain, orcpt, notify, status, attempts, next_attempt,
                last_error, last_attempt
         FROM queue_recipients WHERE message = ANY($1) ORDER BY message, id",
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

/// Messages with a pending recipient due at `now`, oldest first, at most `limit`, each with all
/// its recipients. Taken with `FOR UPDATE SKIP LOCKED` inside `t`: rows another node is taking
/// right now are skipped rather than waited for (the claim of the queue's lease API goes in the
/// same transaction).
pub async fn due_messages(
    t: &Transaction<'_>,
    now: UnixTime,
    limit: usize,
) -> PgResult<Vec<QueuedMessage>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM queue_messages m
         WHERE EXISTS (SELECT 1 FROM queue_recipients r
                       WHERE r.message = m.id AND r.status = 'pending' AND r.next_attempt <= $1)
         ORDER BY m.id LIMIT $2
         FOR UPDATE OF m SKIP LOCKED"
    );
    let rs = rows(t, &sql, &[&now, &sql_u64(limit as u64)]).await?;
    with_recipients(t, rs.iter().map(message_from_row).collect()).await
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

pub async fn record_attempts(tx: &mut Tx<'_>, results: &[AttemptResult]) -> PgResult<()> {
    for r in results {
        exec(
            &tx.t,
            "UPDATE queue_recipients
             SET status = $2, next_attempt = $3, last_error = $4, last_attempt = $5,
                 attempts = attempts + 1
             WHERE id = $1 AND status = 'pending'",
            &[
                &r.recipient,
                &r.status.as_str(),
                &r.next_attempt,
                &r.error,
                &r.at,
            ],
        )
        .await?;
    }
    Ok(())
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

pub async fn retry(tx: &mut Tx<'_>, id: Option<QueueId>, now: UnixTime) -> PgResult<u64> {
    match id {
        Some(id) => {
            if opt(&tx.t, "SELECT 1 FROM queue_messages WHERE id = $1", &[&id])
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("queued message {id}")).into());
            }
            exec(
                &tx.t,
                "UPDATE queue_recipients SET next_attempt = $2
                 WHERE message = $1 AND status = 'pending'",
                &[&id, &now],
            )
            .await
        }
        None => {
            exec(
                &tx.t,
                "UPDATE queue_recipients SET next_attempt = $1
                 WHERE status = 'pending' AND next_attempt > $1",
                &[&now],
            )
            .await
        }
    }
}

/// Deletes one message row with its recipients and releases its blob reference.
pub async fn delete(tx: &mut Tx<'_>, id: QueueId) -> PgResult<()> {
    let hash: String = opt(
        &tx.t,
        "DELETE FROM queue_messages WHERE id = $1 RETURNING blob",
        &[&id],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))?
    .get(0);
    // Recipients go by ON DELETE CASCADE.
    release_blobs(tx, &BTreeMap::from([(hash, 1)])).await
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
