//! [`store::LoginGuardStore`] for the embedded store: thin async glue around
//! `ops_login_guard.rs`.

use async_trait::async_trait;
use store::{
    Ban, FailureCount, FailureWindows, GuardScope, LoginGuardStore, StoreResult, UnixTime,
};

use crate::{SqliteStore, ops_login_guard as ops};

#[async_trait]
impl LoginGuardStore for SqliteStore {
    async fn record_login_failure(
        &self,
        scope: GuardScope,
        subject: &str,
        now: UnixTime,
        windows: FailureWindows,
    ) -> StoreResult<FailureCount> {
        let subject = subject.to_string();
        // A lost count (power failure) only lets one more guess through: no fsync needed.
        self.writer
            .run_lazy(move |tx| ops::record_failure(tx.conn, scope, &subject, now, windows))
            .await
    }

    async fn clear_login_failures(&self, scope: GuardScope, subject: &str) -> StoreResult<()> {
        let subject = subject.to_string();
        self.writer
            .run_lazy(move |tx| ops::clear_failures(tx.conn, scope, &subject))
            .await
    }

    async fn login_failures_since(
        &self,
        scope: GuardScope,
        since: UnixTime,
    ) -> StoreResult<Vec<String>> {
        self.readers
            .read(move |c| ops::failures_since(c, scope, since))
            .await
    }

    async fn add_ban(&self, ban: &Ban) -> StoreResult<()> {
        let ban = ban.clone();
        self.writer.run(move |tx| ops::add_ban(tx.conn, &ban)).await
    }

    async fn remove_ban(&self, ip: &str) -> StoreResult<bool> {
        let ip = ip.to_string();
        self.writer
            .run(move |tx| ops::remove_ban(tx.conn, &ip))
            .await
    }

    async fn active_bans(&self, now: UnixTime) -> StoreResult<Vec<Ban>> {
        self.readers.read(move |c| ops::active_bans(c, now)).await
    }

    async fn purge_login_guard(&self, now: UnixTime, stale_before: UnixTime) -> StoreResult<u64> {
        self.writer
            .run_lazy(move |tx| ops::purge(tx.conn, now, stale_before))
            .await
    }
}
