//! [`store::Greylist`] on PostgreSQL (`greylist`, schema version 6): the greylisting triples,
//! shared by every node.
//!
//! Invariant: an attempt first makes sure the row exists (`INSERT … ON CONFLICT DO NOTHING`),
//! then locks it (`SELECT … FOR UPDATE`) and writes [`store::GreylistPolicy::next`] of it, all
//! in one transaction: parallel attempts on any nodes are applied one after the other, so the
//! first attempt is recorded once and a pass is never lost.

use async_trait::async_trait;
use store::{Greylist, GreylistEntry, GreylistPolicy, GreylistTriple, StoreResult, UnixTime};

use crate::PgStore;
use crate::db::{exec, one};
use crate::error::PgResult;
use crate::tx::{Tx, write_tx};

async fn attempt(
    tx: &Tx<'_>,
    t: &GreylistTriple,
    now: UnixTime,
    policy: GreylistPolicy,
) -> PgResult<GreylistEntry> {
    let created = exec(
        &tx.t,
        "INSERT INTO greylist (network, sender, recipient, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (network, sender, recipient) DO NOTHING",
        &[&t.network, &t.sender, &t.recipient, &now],
    )
    .await?;
    if created == 1 {
        return Ok(policy.next(None, now));
    }
    let row = one(
        &tx.t,
        "SELECT first_seen, last_seen, passed FROM greylist
         WHERE network = $1 AND sender = $2 AND recipient = $3 FOR UPDATE",
        &[&t.network, &t.sender, &t.recipient],
    )
    .await?;
    let stored = GreylistEntry {
        first_seen: row.get(0),
        last_seen: row.get(1),
        passed: row.get(2),
    };
    let next = policy.next(Some(stored), now);
    exec(
        &tx.t,
        "UPDATE greylist SET first_seen = $4, last_seen = $5, passed = $6
         WHERE network = $1 AND sender = $2 AND recipient = $3",
        &[
            &t.network,
            &t.sender,
            &t.recipient,
            &next.first_seen,
            &next.last_seen,
            &next.passed,
        ],
    )
    .await?;
    Ok(next)
}

async fn purge(tx: &Tx<'_>, now: UnixTime, policy: GreylistPolicy) -> PgResult<u64> {
    // The same rule as GreylistPolicy::is_stale.
    exec(
        &tx.t,
        "DELETE FROM greylist WHERE
             (passed IS NOT NULL AND last_seen < $1)
          OR (passed IS NULL AND first_seen < $2)",
        &[
            &now.saturating_sub(policy.pass_ttl),
            &now.saturating_sub(policy.retry_window),
        ],
    )
    .await
}

#[async_trait]
impl Greylist for PgStore {
    async fn greylist_attempt(
        &self,
        triple: &GreylistTriple,
        now: UnixTime,
        policy: GreylistPolicy,
    ) -> StoreResult<GreylistEntry> {
        write_tx!(self, |tx| attempt(tx, triple, now, policy))
    }

    async fn greylist_purge(&self, now: UnixTime, policy: GreylistPolicy) -> StoreResult<u64> {
        write_tx!(self, |tx| purge(tx, now, policy))
    }
}
