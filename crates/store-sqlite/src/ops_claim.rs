//! Claims and leases on the outbound queue (schema version 9; the design is in
//! `store::QueueStore`'s documentation).
//!
//! Everything here runs in the writer's transaction, and SQLite lets one writer in at a time
//! (the `BEGIN IMMEDIATE` of every batch, across processes too): two processes claiming at the
//! same instant take turns, and the second sees the first one's leases.
//!
//! What a claim round reads (each an index search, no scan of the queue):
//! - `queue_domains WHERE next_due <= now AND (next_due, domain) > (…) ORDER BY next_due,
//!   domain LIMIT 64` — SEARCH COVERING INDEX `queue_domains_due`: only the domains with due
//!   work, earliest first, a page at a time;
//! - per domain, `count(*) FROM queue_leases WHERE destination = ? AND expires > now` —
//!   SEARCH COVERING INDEX `queue_leases_destination`: the live leases (connections);
//! - per domain, `queue_recipients WHERE status = 'pending' AND domain = ? AND next_attempt <=
//!   now ORDER BY next_attempt` — SEARCH the partial index `queue_recipients_domain_due`
//!   (domain=? AND next_attempt<?), stopped after `per_batch` messages.
//!
//! Invariants:
//! - A recipient held by a live lease has `lease` = that lease and `next_attempt` = its
//!   expiry, so it is not due for anyone else until the lease expires or is released.
//! - Expired leases are deleted at the start of the claim that may take their recipients, in
//!   the same transaction: a lease row that still exists has not lost any recipient to another
//!   lease, which is what lets `renew` revive a lease that ran out unnoticed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rusqlite::{Connection, params};
use store::{Claim, ClaimLimits, ClaimedMessage, Lease, LeaseId, QueueId, StoreResult, UnixTime};

use crate::db::{Db, sql_u64};
use crate::ops_queue::message_in;

/// Due domains read at a time; a round reads pages until it has made its leases, so its cost
/// follows the leases it makes and the domains it skips (at their connection limit), not the
/// number of domains with due mail.
const DOMAINS_PER_PAGE: i64 = 64;

/// Sets `queue_domains.next_due` of `domain` to the earliest `next_attempt` of its pending
/// recipients (an index seek), or removes the row when it has none.
pub(crate) fn refresh_domain(conn: &Connection, domain: &str) -> StoreResult<()> {
    let next: Option<UnixTime> = conn
        .prepare_cached(
            "SELECT min(next_attempt) FROM queue_recipients
             WHERE status = 'pending' AND domain = ?1",
        )
        .db()?
        .query_row([domain], |r| r.get(0))
        .db()?;
    match next {
        Some(t) => conn
            .prepare_cached(
                "INSERT INTO queue_domains (domain, next_due) VALUES (?1, ?2)
                 ON CONFLICT (domain) DO UPDATE SET next_due = excluded.next_due",
            )
            .db()?
            .execute(params![domain, t])
            .db()?,
        None => conn
            .prepare_cached("DELETE FROM queue_domains WHERE domain = ?1")
            .db()?
            .execute([domain])
            .db()?,
    };
    Ok(())
}

/// The oldest due recipients of `domain`, grouped by message (first due first), covering at
/// most `per_batch` messages.
fn due_in_domain(
    conn: &Connection,
    domain: &str,
    now: UnixTime,
    per_batch: usize,
) -> StoreResult<Vec<(QueueId, Vec<i64>)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, message FROM queue_recipients
             WHERE status = 'pending' AND domain = ?1 AND next_attempt <= ?2
             ORDER BY next_attempt, id",
        )
        .db()?;
    let mut rows = stmt.query(params![domain, now]).db()?;
    let mut out: Vec<(QueueId, Vec<i64>)> = Vec::new();
    let mut index: BTreeMap<QueueId, usize> = BTreeMap::new();
    while let Some(row) = rows.next().db()? {
        let (rcpt, message): (i64, QueueId) = (row.get(0).db()?, row.get(1).db()?);
        match index.get(&message) {
            Some(&i) => out[i].1.push(rcpt),
            None if out.len() >= per_batch => break,
            None => {
                index.insert(message, out.len());
                out.push((message, vec![rcpt]));
            }
        }
    }
    Ok(out)
}

fn live_leases(conn: &Connection, destination: &str, now: UnixTime) -> StoreResult<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM queue_leases WHERE destination = ?1 AND expires > ?2")
        .db()?
        .query_row(params![destination, now], |r| r.get(0))
        .db()?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// One claim round (see the module documentation).
pub fn claim(
    conn: &Connection,
    holder: &str,
    now: UnixTime,
    lease_secs: u64,
    limits: &ClaimLimits,
) -> StoreResult<Vec<Claim>> {
    if limits.leases == 0 || limits.per_batch == 0 || limits.per_destination == 0 {
        return Ok(Vec::new());
    }
    let expires = now.saturating_add(sql_u64(lease_secs.max(1)));
    conn.prepare_cached("DELETE FROM queue_leases WHERE expires <= ?1")
        .db()?
        .execute([now])
        .db()?;
    let mut claims = Vec::new();
    // Due domains in pages, earliest first. A domain's `next_due` changes when it is visited,
    // which may move it further down the order: `visited` keeps it to one visit per round.
    let mut visited: HashSet<String> = HashSet::new();
    let mut after: (UnixTime, String) = (UnixTime::MIN, String::new());
    'pages: while claims.len() < limits.leases {
        let page = due_domains(conn, now, &after)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.clone();
        for (_, domain) in page {
            if claims.len() >= limits.leases {
                break 'pages;
            }
            if !visited.insert(domain.clone()) {
                continue;
            }
            if let Some(claim) = claim_domain(conn, holder, domain, now, expires, limits)? {
                claims.push(claim);
            }
        }
    }
    Ok(claims)
}

/// The next page of due domains after `after` in (next_due, domain) order.
fn due_domains(
    conn: &Connection,
    now: UnixTime,
    after: &(UnixTime, String),
) -> StoreResult<Vec<(UnixTime, String)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT next_due, domain FROM queue_domains
             WHERE next_due <= ?1 AND (next_due, domain) > (?2, ?3)
             ORDER BY next_due, domain LIMIT ?4",
        )
        .db()?;
    let rows = stmt
        .query_map(params![now, after.0, after.1, DOMAINS_PER_PAGE], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// A lease on `domain`'s oldest due messages, unless its destination is at its connection
/// limit or nothing is due after all.
fn claim_domain(
    conn: &Connection,
    holder: &str,
    domain: String,
    now: UnixTime,
    expires: UnixTime,
    limits: &ClaimLimits,
) -> StoreResult<Option<Claim>> {
    let destination = if limits.single_destination {
        ""
    } else {
        domain.as_str()
    };
    // Leases made earlier in this round are rows already, so they count too.
    if live_leases(conn, destination, now)? >= limits.per_destination {
        return Ok(None);
    }
    let due = due_in_domain(conn, &domain, now, limits.per_batch)?;
    if due.is_empty() {
        // The hint was early (leased or rescheduled recipients): correct it.
        refresh_domain(conn, &domain)?;
        return Ok(None);
    }
    let id: LeaseId = conn
        .prepare_cached(
            "INSERT INTO queue_leases (destination, domain, holder, expires)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .db()?
        .query_row(params![destination, domain, holder, expires], |r| r.get(0))
        .db()?;
    let mut take = conn
        .prepare_cached("UPDATE queue_recipients SET lease = ?2, next_attempt = ?3 WHERE id = ?1")
        .db()?;
    let mut messages = Vec::with_capacity(due.len());
    for (message, recipients) in due {
        for &r in &recipients {
            take.execute(params![r, id, expires]).db()?;
        }
        // Read after the update, so the message shows the lease on its recipients.
        if let Some(message) = message_in(conn, message)? {
            messages.push(ClaimedMessage {
                message,
                recipients,
            });
        }
    }
    refresh_domain(conn, &domain)?;
    Ok(Some(Claim {
        lease: Lease {
            id,
            destination: destination.to_string(),
            domain,
            holder: holder.to_string(),
            expires,
        },
        messages,
    }))
}

/// Extends `lease` and its recipients to `now + lease_secs`; `false` if it is gone.
pub fn renew(
    conn: &Connection,
    lease: LeaseId,
    holder: &str,
    now: UnixTime,
    lease_secs: u64,
) -> StoreResult<bool> {
    let expires = now.saturating_add(sql_u64(lease_secs.max(1)));
    let n = conn
        .prepare_cached("UPDATE queue_leases SET expires = ?3 WHERE id = ?1 AND holder = ?2")
        .db()?
        .execute(params![lease, holder, expires])
        .db()?;
    if n == 0 {
        return Ok(false);
    }
    // No `queue_domains` change: pushing a due time later leaves the hint early, never late.
    conn.prepare_cached(
        "UPDATE queue_recipients SET next_attempt = ?2 WHERE lease = ?1 AND status = 'pending'",
    )
    .db()?
    .execute(params![lease, expires])
    .db()?;
    Ok(true)
}

/// Deletes `lease`; the recipients it still holds are due at `now`.
pub fn release(conn: &Connection, lease: LeaseId, now: UnixTime) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM queue_leases WHERE id = ?1")
        .db()?
        .execute([lease])
        .db()?;
    let domains: BTreeSet<String> = {
        let mut stmt = conn
            .prepare_cached(
                "UPDATE queue_recipients SET lease = NULL, next_attempt = ?2
                 WHERE lease = ?1 AND status = 'pending' RETURNING domain",
            )
            .db()?;
        let rows = stmt.query_map(params![lease, now], |r| r.get(0)).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    for d in &domains {
        refresh_domain(conn, d)?;
    }
    Ok(())
}

/// The live leases, oldest first.
pub fn leases(conn: &Connection, now: UnixTime) -> StoreResult<Vec<Lease>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, destination, domain, holder, expires FROM queue_leases
             WHERE expires > ?1 ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([now], |r| {
            Ok(Lease {
                id: r.get(0)?,
                destination: r.get(1)?,
                domain: r.get(2)?,
                holder: r.get(3)?,
                expires: r.get(4)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

#[cfg(test)]
mod tests {
    use crate::schema::{connect, migrate};

    /// Each read of a claim round is an index search (the plans the module documentation
    /// lists), so a round costs the due domains and the work it takes, never the whole queue.
    #[test]
    fn claim_reads_are_index_searches() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("q.db"), false).unwrap();
        migrate(&conn).unwrap();
        for (sql, index) in [
            (
                "SELECT next_due, domain FROM queue_domains
                 WHERE next_due <= ?1 AND (next_due, domain) > (?1, ?1)
                 ORDER BY next_due, domain LIMIT ?1",
                "COVERING INDEX queue_domains_due (",
            ),
            (
                "SELECT count(*) FROM queue_leases WHERE destination = ?1 AND expires > ?1",
                "COVERING INDEX queue_leases_destination (destination=? AND expires>?)",
            ),
            (
                "SELECT id, message FROM queue_recipients
                 WHERE status = 'pending' AND domain = ?1 AND next_attempt <= ?1
                 ORDER BY next_attempt, id",
                "INDEX queue_recipients_domain_due (domain=? AND next_attempt<?)",
            ),
            (
                "SELECT min(next_attempt) FROM queue_recipients
                 WHERE status = 'pending' AND domain = ?1",
                "queue_recipients_domain_due (domain=?)",
            ),
            (
                "UPDATE queue_recipients SET next_attempt = ?1 WHERE lease = ?1 AND status = 'pending'",
                "INDEX queue_recipients_lease (lease=?)",
            ),
            (
                "DELETE FROM queue_leases WHERE expires <= ?1",
                "queue_leases_expires (expires<?)",
            ),
            (
                "SELECT count(*), coalesce(sum(recipients), 0) FROM sending_log
                 WHERE account = ?1 AND at >= ?1",
                "INDEX sending_log_account (account=? AND at>?)",
            ),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([1], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains(index), "{sql}: {plan}");
            assert!(plan.starts_with("SEARCH"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts: {plan}");
        }
    }
}
