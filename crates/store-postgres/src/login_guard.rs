//! [`store::LoginGuardStore`] for the PostgreSQL store: failed-login counters
//! (`login_failures`) and IP bans (`login_bans`), schema version 5, shared by every node.
//!
//! A failure is counted by one upsert: `INSERT … ON CONFLICT DO UPDATE` locks the row, and
//! its `SET` expressions read the row as it was, so two nodes counting the same address at once
//! both count (the second waits for the first's row lock, then sees its count).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use store::{
    Ban, FailureCount, FailureWindows, GuardScope, LoginGuardStore, StoreResult, UnixTime,
};

use crate::PgStore;
use crate::db::{col_u32, exec, one, rows};
use crate::error::PgResult;
use crate::tx::{Tx, read, write_tx};

/// $1 scope, $2 subject, $3 now, $4 long window, $5 short window (seconds). A window that
/// ended (`now - start >= window`) restarts at `now` with this failure.
const COUNT_FAILURE: &str = "
INSERT INTO login_failures AS f
    (scope, subject, window_start, failures, burst_start, burst_failures, last_failure)
VALUES ($1, $2, $3, 1, $3, 1, $3)
ON CONFLICT (scope, subject) DO UPDATE SET
    failures = CASE WHEN $3 - f.window_start >= $4 THEN 1 ELSE f.failures + 1 END,
    window_start = CASE WHEN $3 - f.window_start >= $4 THEN $3 ELSE f.window_start END,
    burst_failures = CASE WHEN $3 - f.burst_start >= $5 THEN 1 ELSE f.burst_failures + 1 END,
    burst_start = CASE WHEN $3 - f.burst_start >= $5 THEN $3 ELSE f.burst_start END,
    last_failure = greatest(f.last_failure, $3)
RETURNING failures::bigint, burst_failures::bigint";

async fn record(
    tx: &Tx<'_>,
    scope: GuardScope,
    subject: &str,
    now: UnixTime,
    windows: FailureWindows,
) -> PgResult<FailureCount> {
    let row = one(
        &tx.t,
        COUNT_FAILURE,
        &[
            &scope.as_str(),
            &subject,
            &now,
            &windows.long_secs,
            &windows.short_secs,
        ],
    )
    .await?;
    Ok(FailureCount {
        long: col_u32(row.get(0)),
        short: col_u32(row.get(1)),
    })
}

async fn clear(tx: &Tx<'_>, scope: GuardScope, subject: &str) -> PgResult<()> {
    exec(
        &tx.t,
        "DELETE FROM login_failures WHERE scope = $1 AND subject = $2",
        &[&scope.as_str(), &subject],
    )
    .await?;
    Ok(())
}

async fn failures_since<C: GenericClient>(
    c: &C,
    scope: GuardScope,
    since: UnixTime,
) -> PgResult<Vec<String>> {
    Ok(rows(
        c,
        "SELECT subject FROM login_failures WHERE scope = $1 AND last_failure >= $2
         ORDER BY subject",
        &[&scope.as_str(), &since],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

async fn add_ban(tx: &Tx<'_>, ban: &Ban) -> PgResult<()> {
    exec(
        &tx.t,
        "INSERT INTO login_bans (ip, until, created, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (ip) DO UPDATE SET until = $2, created = $3, reason = $4",
        &[&ban.ip, &ban.until, &ban.created, &ban.reason],
    )
    .await?;
    Ok(())
}

async fn remove_ban(tx: &Tx<'_>, ip: &str) -> PgResult<bool> {
    Ok(exec(&tx.t, "DELETE FROM login_bans WHERE ip = $1", &[&ip]).await? > 0)
}

async fn active_bans<C: GenericClient>(c: &C, now: UnixTime) -> PgResult<Vec<Ban>> {
    Ok(rows(
        c,
        "SELECT ip, until, created, reason FROM login_bans WHERE until > $1 ORDER BY ip",
        &[&now],
    )
    .await?
    .iter()
    .map(|r| Ban {
        ip: r.get(0),
        until: r.get(1),
        created: r.get(2),
        reason: r.get(3),
    })
    .collect())
}

async fn purge(tx: &Tx<'_>, now: UnixTime, stale_before: UnixTime) -> PgResult<u64> {
    let bans = exec(&tx.t, "DELETE FROM login_bans WHERE until <= $1", &[&now]).await?;
    let counters = exec(
        &tx.t,
        "DELETE FROM login_failures WHERE last_failure < $1",
        &[&stale_before],
    )
    .await?;
    Ok(bans + counters)
}

#[async_trait]
impl LoginGuardStore for PgStore {
    async fn record_login_failure(
        &self,
        scope: GuardScope,
        subject: &str,
        now: UnixTime,
        windows: FailureWindows,
    ) -> StoreResult<FailureCount> {
        write_tx!(self, |tx| record(tx, scope, subject, now, windows))
    }

    async fn clear_login_failures(&self, scope: GuardScope, subject: &str) -> StoreResult<()> {
        write_tx!(self, |tx| clear(tx, scope, subject))
    }

    async fn login_failures_since(
        &self,
        scope: GuardScope,
        since: UnixTime,
    ) -> StoreResult<Vec<String>> {
        read!(self, |c| failures_since(c, scope, since))
    }

    async fn add_ban(&self, ban: &Ban) -> StoreResult<()> {
        write_tx!(self, |tx| add_ban(tx, ban))
    }

    async fn remove_ban(&self, ip: &str) -> StoreResult<bool> {
        write_tx!(self, |tx| remove_ban(tx, ip))
    }

    async fn active_bans(&self, now: UnixTime) -> StoreResult<Vec<Ban>> {
        read!(self, |c| active_bans(c, now))
    }

    async fn purge_login_guard(&self, now: UnixTime, stale_before: UnixTime) -> StoreResult<u64> {
        write_tx!(self, |tx| purge(tx, now, stale_before))
    }
}
