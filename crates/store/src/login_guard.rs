//! The password-guessing defence's shared state: failed-login counters and IP bans, kept in the
//! store so that they survive a restart and every process and node on one store (one PostgreSQL
//! database) counts and bans together. The policy (thresholds, delays, who is exempt) is the
//! `auth` crate's; this trait only counts and remembers.
//!
//! Invariants every backend keeps:
//! - [`LoginGuardStore::record_login_failure`] counts in ONE statement (an upsert), so parallel
//!   failures on several nodes never lose a count.
//! - A ban is durable when [`LoginGuardStore::add_ban`] returns: a node that announces a ban
//!   (log line, refusal) has already written it.
//! - Subjects are stored as text so an admin can read the tables with SQL: an IP address in its
//!   canonical form (IPv6 by its /64, see `auth::guard`), or an account's address.

use async_trait::async_trait;

use crate::{StoreResult, UnixTime};

/// What a failure counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardScope {
    /// Failures from one client address.
    Ip,
    /// Failures against one existing account, from anywhere.
    Account,
}

impl GuardScope {
    /// The value of the `scope` column.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardScope::Ip => "ip",
            GuardScope::Account => "account",
        }
    }
}

/// The two windows a failure is counted in: a long one (failures a day) and a short one that
/// catches fast bursts. A window starts at the first failure after the previous one ended (fixed
/// windows: one row, no per-failure history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindows {
    pub long_secs: i64,
    pub short_secs: i64,
}

/// Failures counted in the current windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureCount {
    pub long: u32,
    pub short: u32,
}

/// A temporary ban of one client address from every listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The address as text (canonical; IPv6 as the first address of its /64).
    pub ip: String,
    /// When the ban ends (Unix seconds).
    pub until: UnixTime,
    /// When it was made.
    pub created: UnixTime,
    /// Why: `failures`, `burst`, `manual` (the CLI), or another defence's word.
    pub reason: String,
}

#[async_trait]
pub trait LoginGuardStore: Send + Sync {
    /// Counts one failure of `subject` at `now` and returns the counts in both windows after
    /// it. A window that ended before `now` starts again at `now` with this failure.
    async fn record_login_failure(
        &self,
        scope: GuardScope,
        subject: &str,
        now: UnixTime,
        windows: FailureWindows,
    ) -> StoreResult<FailureCount>;

    /// Forgets `subject`'s failures (a successful login from that address).
    async fn clear_login_failures(&self, scope: GuardScope, subject: &str) -> StoreResult<()>;

    /// The subjects of `scope` with a failure at or after `since` (a node learns which
    /// addresses other nodes counted, so a success here can clear them).
    async fn login_failures_since(
        &self,
        scope: GuardScope,
        since: UnixTime,
    ) -> StoreResult<Vec<String>>;

    /// Bans `ban.ip` until `ban.until`, replacing any ban of that address. Durable on return.
    async fn add_ban(&self, ban: &Ban) -> StoreResult<()>;

    /// Lifts the ban of `ip`; `false` if there was none.
    async fn remove_ban(&self, ip: &str) -> StoreResult<bool>;

    /// The bans still in force at `now` (`until > now`), by address.
    async fn active_bans(&self, now: UnixTime) -> StoreResult<Vec<Ban>>;

    /// Removes bans that ended before `now` and counters whose last failure is older than
    /// `stale_before`; returns how many rows went.
    async fn purge_login_guard(&self, now: UnixTime, stale_before: UnixTime) -> StoreResult<u64>;
}
