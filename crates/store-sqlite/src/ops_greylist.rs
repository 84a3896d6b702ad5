//! Greylisting state (`store::Greylist`, schema version 13): one row per (network, sender,
//! recipient) triple.
//!
//! An attempt reads the row and writes its next state ([`store::GreylistPolicy::next`]) in the
//! writer's transaction; SQLite admits one writer at a time (across processes too), so two
//! sessions never both create the row or lose a pass.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use store::{Greylist, GreylistEntry, GreylistPolicy, GreylistTriple, StoreResult, UnixTime};

use crate::SqliteStore;
use crate::db::Db;

fn attempt(
    conn: &Connection,
    t: &GreylistTriple,
    now: UnixTime,
    policy: GreylistPolicy,
) -> StoreResult<GreylistEntry> {
    let stored = conn
        .prepare_cached(
            "SELECT first_seen, last_seen, passed FROM greylist
             WHERE network = ?1 AND sender = ?2 AND recipient = ?3",
        )
        .db()?
        .query_row(params![t.network, t.sender, t.recipient], |r| {
            Ok(GreylistEntry {
                first_seen: r.get(0)?,
                last_seen: r.get(1)?,
                passed: r.get(2)?,
            })
        })
        .optional()
        .db()?;
    let next = policy.next(stored, now);
    conn.prepare_cached(
        "INSERT INTO greylist (network, sender, recipient, first_seen, last_seen, passed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (network, sender, recipient) DO UPDATE SET
             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
             passed = excluded.passed",
    )
    .db()?
    .execute(params![
        t.network,
        t.sender,
        t.recipient,
        next.first_seen,
        next.last_seen,
        next.passed
    ])
    .db()?;
    Ok(next)
}

fn purge(conn: &Connection, now: UnixTime, policy: GreylistPolicy) -> StoreResult<u64> {
    // The same rule as GreylistPolicy::is_stale.
    let n = conn
        .prepare_cached(
            "DELETE FROM greylist WHERE
                 (passed IS NOT NULL AND last_seen < ?1)
              OR (passed IS NULL AND first_seen < ?2)",
        )
        .db()?
        .execute(params![
            now.saturating_sub(policy.pass_ttl),
            now.saturating_sub(policy.retry_window)
        ])
        .db()?;
    Ok(n as u64)
}

#[async_trait]
impl Greylist for SqliteStore {
    async fn greylist_attempt(
        &self,
        triple: &GreylistTriple,
        now: UnixTime,
        policy: GreylistPolicy,
    ) -> StoreResult<GreylistEntry> {
        let triple = triple.clone();
        self.writer
            .run(move |tx| attempt(tx.conn, &triple, now, policy))
            .await
    }

    async fn greylist_purge(&self, now: UnixTime, policy: GreylistPolicy) -> StoreResult<u64> {
        self.writer.run(move |tx| purge(tx.conn, now, policy)).await
    }
}
