//! Claims and leases on the outbound queue shared by several nodes (schema version 2; the design
//! is in `store::QueueStore`'s documentation), and the `queue_domains` index of due work that
//! every write of a pending recipient keeps current.
//!
//! Everything runs in one READ COMMITTED write transaction (`tx.rs`). Unlike SQLite, two nodes'
//! claims run at the same time, so:
//! - Per destination, a claim first takes `pg_try_advisory_xact_lock(DESTINATION_LOCK,
//!   hashtext(destination))`, then counts the destination's live leases (a new statement, so it
//!   sees every lease committed before it got the lock) and inserts its own. Two nodes can
//!   therefore never both take the last connection slot. The lock is *tried*: a destination
//!   another node is claiming at that instant is skipped, not waited for (that node takes its
//!   batch; the next round sees its lease). An advisory lock rather than a row lock on
//!   `queue_domains`, because the smarthost destination `""` has no row, and enqueues hold
//!   their domain's row for their whole transaction.
//! - The due recipients of a domain are read with `FOR UPDATE SKIP LOCKED` through a portal, a
//!   chunk of rows at a time, stopping at `per_batch` messages: rows an attempt result, retry
//!   or delete is changing right now are skipped, and rows beyond the batch are never locked.
//! - Expired leases are deleted by a plain (waiting) DELETE at the start of the claim, in the
//!   same transaction as the claim that may take their recipients: a renewal racing with it
//!   either commits first (the lease is live again and its recipients not due) or finds the
//!   lease gone. So a lease row that still exists has lost no recipient to another lease.
//!
//! `queue_domains` under concurrent writers. Invariant: `next_due` is never later than the
//! earliest `next_attempt` of the domain's pending recipients. Writers that make recipients due
//! earlier lower it with `LEAST` ([`lower_domains`]); writers that may raise it
//! ([`refresh_domains`]) lock the row, then read the earliest due time in a new statement
//! (seeing every writer that held the row before), then set or delete the row. A lowering
//! writer that changed recipients before the lock upserts after the refresh commits, so its
//! `LEAST` still applies. Both take the domain rows last in their transaction, in name order,
//! and hold no other lock anyone waits for while doing it: no deadlock between them.
//!
//! Lease expiry compares against the caller's `now`, as in the embedded store (the trait's
//! contract): nodes keep their clocks in step with NTP.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use deadpool_postgres::{GenericClient, Transaction};
use store::{Claim, ClaimLimits, ClaimedMessage, Lease, LeaseId, QueueId, UnixTime};

use crate::db::{exec, one, opt, rows, sql_u64};
use crate::error::PgResult;
use crate::ops_queue::messages_by_id;

/// Due domains read at a time; a round reads pages until it has made its leases, so its cost
/// follows the leases it makes and the domains it skips, not the number of domains with due
/// mail.
const DOMAINS_PER_PAGE: i64 = 64;

/// The first key of the per-destination advisory locks ("yque"); the two-key form never
/// collides with the one-key locks (the schema migration's).
const DESTINATION_LOCK: i32 = 0x7971_7565;

/// Recipient rows fetched at a time from a domain's due rows, at most.
const FETCH_CHUNK: usize = 256;

/// Lowers `next_due` of each of `domains` to `at` (creating rows for new domains), in name
/// order.
pub(crate) async fn lower_domains(
    t: &Transaction<'_>,
    domains: &BTreeSet<String>,
    at: UnixTime,
) -> PgResult<()> {
    if domains.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = domains.iter().map(String::as_str).collect();
    exec(
        t,
        "INSERT INTO queue_domains (domain, next_due)
         SELECT d, $2 FROM unnest($1::text[]) AS d ORDER BY d
         ON CONFLICT (domain) DO UPDATE
         SET next_due = LEAST(queue_domains.next_due, excluded.next_due)",
        &[&names, &at],
    )
    .await?;
    Ok(())
}

/// Sets `next_due` of each of `domains` to the earliest `next_attempt` of its pending
/// recipients, or removes its row when it has none (see the module documentation).
pub(crate) async fn refresh_domains(
    t: &Transaction<'_>,
    domains: &BTreeSet<String>,
) -> PgResult<()> {
    for domain in domains {
        let locked = opt(
            t,
            "SELECT 1 FROM queue_domains WHERE domain = $1 FOR UPDATE",
            &[domain],
        )
        .await?
        .is_some();
        let next: Option<UnixTime> = one(
            t,
            "SELECT min(next_attempt) FROM queue_recipients
             WHERE status = 'pending' AND domain = $1",
            &[domain],
        )
        .await?
        .get(0);
        match (locked, next) {
            (true, Some(at)) => {
                exec(
                    t,
                    "UPDATE queue_domains SET next_due = $2 WHERE domain = $1",
                    &[domain, &at],
                )
                .await?;
            }
            (true, None) => {
                exec(t, "DELETE FROM queue_domains WHERE domain = $1", &[domain]).await?;
            }
            // No row to lock: another writer may be inserting one, so only ever lower it.
            (false, Some(at)) => lower_domains(t, &BTreeSet::from([domain.clone()]), at).await?,
            (false, None) => {}
        }
    }
    Ok(())
}

/// What visiting one due domain gave.
enum Visit {
    Claimed(Claim),
    /// Nothing due after all: its `next_due` was early, to be corrected.
    Nothing,
    /// At its connection limit, or being claimed by another node right now.
    Skipped,
}

/// One claim round (see the module documentation and `store::QueueStore::claim_due`).
pub async fn claim(
    t: &Transaction<'_>,
    holder: &str,
    now: UnixTime,
    lease_secs: u64,
    limits: &ClaimLimits,
) -> PgResult<Vec<Claim>> {
    if limits.leases == 0 || limits.per_batch == 0 || limits.per_destination == 0 {
        return Ok(Vec::new());
    }
    let expires = now.saturating_add(sql_u64(lease_secs.max(1)));
    exec(t, "DELETE FROM queue_leases WHERE expires <= $1", &[&now]).await?;
    let mut claims = Vec::new();
    // Domains whose `next_due` this round changed; refreshed at the end, in name order. Until
    // then the pages read the values from before the round; another node's commit may still
    // move a domain further down the order, so `visited` keeps it to one visit per round.
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut visited: HashSet<String> = HashSet::new();
    let mut after: (UnixTime, String) = (UnixTime::MIN, String::new());
    'pages: while claims.len() < limits.leases {
        let page = rows(
            t,
            "SELECT next_due, domain FROM queue_domains
             WHERE next_due <= $1 AND (next_due, domain) > ($2, $3)
             ORDER BY next_due, domain LIMIT $4",
            &[&now, &after.0, &after.1, &DOMAINS_PER_PAGE],
        )
        .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = (last.get(0), last.get(1));
        for row in &page {
            if claims.len() >= limits.leases {
                break 'pages;
            }
            let domain: String = row.get(1);
            if !visited.insert(domain.clone()) {
                continue;
            }
            match claim_domain(t, holder, &domain, now, expires, limits).await? {
                Visit::Claimed(c) => {
                    claims.push(c);
                    touched.insert(domain);
                }
                Visit::Nothing => {
                    touched.insert(domain);
                }
                Visit::Skipped => {}
            }
        }
    }
    refresh_domains(t, &touched).await?;
    Ok(claims)
}

/// A lease on `domain`'s oldest due messages, unless its destination is at its connection
/// limit, is being claimed by another node, or nothing is due after all.
async fn claim_domain(
    t: &Transaction<'_>,
    holder: &str,
    domain: &str,
    now: UnixTime,
    expires: UnixTime,
    limits: &ClaimLimits,
) -> PgResult<Visit> {
    let destination = if limits.single_destination {
        ""
    } else {
        domain
    };
    let mine: bool = one(
        t,
        "SELECT pg_try_advisory_xact_lock($1, hashtext($2))",
        &[&DESTINATION_LOCK, &destination],
    )
    .await?
    .get(0);
    if !mine {
        return Ok(Visit::Skipped);
    }
    // Leases made earlier in this transaction are rows already, so they count too.
    let live: i64 = one(
        t,
        "SELECT count(*) FROM queue_leases WHERE destination = $1 AND expires > $2",
        &[&destination, &now],
    )
    .await?
    .get(0);
    if usize::try_from(live).unwrap_or(usize::MAX) >= limits.per_destination {
        return Ok(Visit::Skipped);
    }
    let due = due_in_domain(t, domain, now, limits.per_batch).await?;
    if due.is_empty() {
        return Ok(Visit::Nothing);
    }
    let id: LeaseId = one(
        t,
        "INSERT INTO queue_leases (destination, domain, holder, expires)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&destination, &domain, &holder, &expires],
    )
    .await?
    .get(0);
    let taken: Vec<i64> = due.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    exec(
        t,
        "UPDATE queue_recipients SET lease = $2, next_attempt = $3 WHERE id = ANY($1)",
        &[&taken, &id, &expires],
    )
    .await?;
    // Read after the update, so the messages show the lease on their recipients.
    let ids: Vec<QueueId> = due.iter().map(|(m, _)| *m).collect();
    let mut found = messages_by_id(t, &ids).await?;
    let messages = due
        .into_iter()
        .filter_map(|(id, recipients)| {
            found.remove(&id).map(|message| ClaimedMessage {
                message,
                recipients,
            })
        })
        .collect();
    Ok(Visit::Claimed(Claim {
        lease: Lease {
            id,
            destination: destination.to_string(),
            domain: domain.to_string(),
            holder: holder.to_string(),
            expires,
        },
        messages,
    }))
}

/// The oldest due recipients of `domain` that no other transaction is changing, grouped by
/// message (first due first), covering at most `per_batch` messages; locked until the commit.
async fn due_in_domain(
    t: &Transaction<'_>,
    domain: &str,
    now: UnixTime,
    per_batch: usize,
) -> PgResult<Vec<(QueueId, Vec<i64>)>> {
    // A portal, so rows are locked as they are fetched and the scan of the index
    // `queue_recipients_domain_due` stops at the batch's end.
    let st = t
        .prepare_cached(
            "SELECT id, message FROM queue_recipients
             WHERE status = 'pending' AND domain = $1 AND next_attempt <= $2
             ORDER BY next_attempt, id
             FOR UPDATE SKIP LOCKED",
        )
        .await?;
    let portal = t.bind(&st, &[&domain, &now]).await?;
    // A message usually has one recipient per domain: one chunk is usually the batch and the
    // next message's first row (locked too, and left alone).
    let chunk = per_batch.saturating_add(1).min(FETCH_CHUNK);
    let mut out: Vec<(QueueId, Vec<i64>)> = Vec::new();
    let mut index: BTreeMap<QueueId, usize> = BTreeMap::new();
    loop {
        let batch = t
            .query_portal(&portal, i32::try_from(chunk).unwrap_or(i32::MAX))
            .await?;
        let complete = batch.len() < chunk;
        for row in &batch {
            let (rcpt, message): (i64, QueueId) = (row.get(0), row.get(1));
            match index.get(&message) {
                Some(&i) => out[i].1.push(rcpt),
                None if out.len() >= per_batch => return Ok(out),
                None => {
                    index.insert(message, out.len());
                    out.push((message, vec![rcpt]));
                }
            }
        }
        if complete {
            return Ok(out);
        }
    }
}

/// Extends `lease` and its recipients to `now + lease_secs`; `false` if it is gone.
pub async fn renew(
    t: &Transaction<'_>,
    lease: LeaseId,
    holder: &str,
    now: UnixTime,
    lease_secs: u64,
) -> PgResult<bool> {
    let expires = now.saturating_add(sql_u64(lease_secs.max(1)));
    let n = exec(
        t,
        "UPDATE queue_leases SET expires = $3 WHERE id = $1 AND holder = $2",
        &[&lease, &holder, &expires],
    )
    .await?;
    if n == 0 {
        return Ok(false);
    }
    // No `queue_domains` change: pushing a due time later leaves the hint early, never late.
    exec(
        t,
        "UPDATE queue_recipients SET next_attempt = $2 WHERE lease = $1 AND status = 'pending'",
        &[&lease, &expires],
    )
    .await?;
    Ok(true)
}

/// Deletes `lease`; the recipients it still holds are due at `now`.
pub async fn release(t: &Transaction<'_>, lease: LeaseId, now: UnixTime) -> PgResult<()> {
    exec(t, "DELETE FROM queue_leases WHERE id = $1", &[&lease]).await?;
    let freed = rows(
        t,
        "UPDATE queue_recipients SET lease = NULL, next_attempt = $2
         WHERE lease = $1 AND status = 'pending' RETURNING domain",
        &[&lease, &now],
    )
    .await?;
    let domains: BTreeSet<String> = freed.iter().map(|r| r.get(0)).collect();
    lower_domains(t, &domains, now).await
}

/// The live leases, oldest first.
pub async fn leases<C: GenericClient>(c: &C, now: UnixTime) -> PgResult<Vec<Lease>> {
    Ok(rows(
        c,
        "SELECT id, destination, domain, holder, expires FROM queue_leases
         WHERE expires > $1 ORDER BY id",
        &[&now],
    )
    .await?
    .iter()
    .map(|r| Lease {
        id: r.get(0),
        destination: r.get(1),
        domain: r.get(2),
        holder: r.get(3),
        expires: r.get(4),
    })
    .collect())
}
