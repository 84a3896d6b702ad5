//! The password-guessing defence at run time: per-address and per-account failure counters in
//! the store, progressive delays, temporary bans of addresses, and the in-memory view that keeps
//! the hot path (every connection and every successful login) free of store calls.
//!
//! Invariants:
//! - Counters and bans live in the store ([`store::LoginGuardStore`]): they survive a restart
//!   and every process and node on the store counts and bans together. A ban is written before
//!   it is logged or enforced.
//! - The view of bans is reread from the store at most [`GuardPolicy::refresh`] after the last
//!   read, so `yubin ban add/del` and other nodes' bans take effect within that; bans this
//!   process makes take effect at once.
//! - A successful login clears its address's counter only when this process knows of failures
//!   from it (its own, or other nodes' seen at a refresh): successes cost no store write.
//! - An account under attack from many addresses makes failed logins against it wait longer,
//!   except from the addresses its owner logged in from lately ([`KnownIps`]); an account is
//!   never locked, and a correct password is never delayed.
//! - Trusted networks are neither counted nor banned; a store error fails open (the login goes
//!   on with the base delay) and is logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::{Ban, GuardScope, LoginGuardStore, UnixTime};

use crate::guard_policy::{GuardPolicy, KnownIps, subject};

/// The time in Unix seconds; injected so tests can move it.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}

/// How often stale counters and ended bans are removed from the store.
const PURGE_EVERY: i64 = 3_600;

/// Addresses with failures tracked in memory at most (a wide attack must not grow the process
/// without bound). Beyond it the oldest are forgotten: a success from one of them then leaves
/// its counter in the store, where it ends with its window.
const MAX_TRACKED_FAILED: usize = 100_000;

/// Keeps `failed` within [`MAX_TRACKED_FAILED`]: drops entries older than an hour, then, if
/// still too many, the older half.
fn bound_failed(failed: &mut HashMap<String, UnixTime>, now: UnixTime) {
    if failed.len() <= MAX_TRACKED_FAILED {
        return;
    }
    failed.retain(|_, t| now.saturating_sub(*t) < 3_600);
    if failed.len() > MAX_TRACKED_FAILED {
        let mut times: Vec<UnixTime> = failed.values().copied().collect();
        let mid = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(mid);
        let median = *median;
        failed.retain(|_, t| *t > median);
    }
}

/// `2026-12-05T23:10:00Z` for log lines and replies.
pub fn format_time(t: UnixTime) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

#[derive(Default)]
struct View {
    /// Active bans by subject.
    bans: HashMap<String, Ban>,
    /// When the bans were last read from the store.
    refreshed: Option<UnixTime>,
    last_purge: UnixTime,
    /// Subjects with counted failures → the last one this process knows of.
    failed: HashMap<String, UnixTime>,
    known: KnownIps,
}

/// The defence shared by every listener and protocol of a process.
pub struct LoginGuard {
    store: Arc<dyn LoginGuardStore>,
    policy: GuardPolicy,
    clock: Clock,
    view: Mutex<View>,
    /// Held while the view is reread, so one caller rereads and the others use the old view.
    refreshing: tokio::sync::Mutex<()>,
}

impl LoginGuard {
    pub fn new(store: Arc<dyn LoginGuardStore>, policy: GuardPolicy) -> LoginGuard {
        LoginGuard::with_clock(store, policy, system_clock())
    }

    pub fn with_clock(
        store: Arc<dyn LoginGuardStore>,
        policy: GuardPolicy,
        clock: Clock,
    ) -> LoginGuard {
        LoginGuard {
            store,
            policy,
            clock,
            view: Mutex::new(View::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        !self.policy.enabled || self.policy.is_trusted(ip)
    }

    /// The ban in force for `ip`, if any. Rereads the store's bans when the view is older than
    /// the refresh interval (the first call waits for the first read).
    pub async fn banned(&self, ip: IpAddr) -> Option<Ban> {
        if self.exempt(ip) {
            return None;
        }
        self.refresh_if_due().await;
        let now = (self.clock)();
        let key = subject(ip);
        self.view()
            .bans
            .get(&key)
            .filter(|b| b.until > now)
            .cloned()
    }

    async fn refresh_if_due(&self) {
        let now = (self.clock)();
        let refresh = i64::try_from(self.policy.refresh.as_secs()).unwrap_or(i64::MAX);
        let due = match self.view().refreshed {
            None => true,
            Some(t) => now.saturating_sub(t) >= refresh,
        };
        if !due {
            return;
        }
        let first = self.view().refreshed.is_none();
        let _lock = if first {
            self.refreshing.lock().await
        } else {
            match self.refreshing.try_lock() {
                Ok(l) => l,
                // Another caller is rereading; the current view serves meanwhile.
                Err(_) => return,
            }
        };
        if first && self.view().refreshed.is_some() {
            return;
        }
        self.refresh(now).await;
    }

    /// Rereads the bans, and learns which addresses failed since the last read (on any node).
    async fn refresh(&self, now: UnixTime) {
        let since = self.view().refreshed.unwrap_or(now).saturating_sub(60);
        let bans = self.store.active_bans(now).await;
        let failed = self.store.login_failures_since(GuardScope::Ip, since).await;
        let window = i64::try_from(self.policy.window.as_secs()).unwrap_or(i64::MAX);
        let purge = {
            let mut view = self.view();
            match bans {
                Ok(bans) => {
                    let mut fresh: HashMap<String, Ban> =
                        bans.into_iter().map(|b| (b.ip.clone(), b)).collect();
                    // A ban this process made while the read was under way may be missing
                    // from it: keep it (it is in the store, the next read has it).
                    for (ip, ban) in view.bans.drain() {
                        if ban.created >= now && !fresh.contains_key(&ip) {
                            fresh.insert(ip, ban);
                        }
                    }
                    view.bans = fresh;
                }
                Err(e) => tracing::warn!(error = %e, "login guard: cannot read bans"),
            }
            if let Ok(failed) = failed {
                for s in failed {
                    view.failed.entry(s).or_insert(now);
                }
            }
            view.failed.retain(|_, t| now.saturating_sub(*t) < window);
            bound_failed(&mut view.failed, now);
            view.refreshed = Some(now);
            let purge = now.saturating_sub(view.last_purge) >= PURGE_EVERY;
            if purge {
                view.last_purge = now;
            }
            purge
        };
        if purge {
            let stale = now.saturating_sub(window);
            if let Err(e) = self.store.purge_login_guard(now, stale).await {
                tracing::warn!(error = %e, "login guard: cannot purge old counters and bans");
            }
        }
    }

    /// Counts a failed login from `ip` (against `account`, the canonical address of an existing
    /// account) and returns how long its answer waits. Bans the address when it reaches a
    /// threshold. Trusted addresses, and failures the store cannot count, wait the base delay.
    pub async fn failed(
        &self,
        ip: IpAddr,
        account: Option<&str>,
        protocol: &'static str,
    ) -> Duration {
        if self.exempt(ip) {
            return self.policy.base_delay;
        }
        let now = (self.clock)();
        let key = subject(ip);
        let windows = self.policy.windows();
        let ip_count = match self
            .store
            .record_login_failure(GuardScope::Ip, &key, now, windows)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "login guard: cannot count a failure");
                return self.policy.base_delay;
            }
        };
        {
            let mut view = self.view();
            view.failed.insert(key.clone(), now);
            bound_failed(&mut view.failed, now);
        }
        let mut failures = ip_count.long;
        if let Some(account) = account {
            match self
                .store
                .record_login_failure(GuardScope::Account, account, now, windows)
                .await
            {
                Ok(c) => {
                    let known =
                        self.view()
                            .known
                            .is_known(account, &key, now, self.policy.known_ip_ttl);
                    if !known {
                        failures = failures.max(c.long);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "login guard: cannot count a failure"),
            }
        }
        if let Some((duration, reason)) = self.policy.ban_for(ip_count) {
            let until = now.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX));
            let ban = Ban {
                ip: key.clone(),
                until,
                created: now,
                reason: reason.as_str().to_string(),
            };
            match self.store.add_ban(&ban).await {
                Ok(()) => {
                    telemetry::ban_issued(reason.as_str());
                    tracing::warn!(
                        event = %"ban",
                        ip = %key,
                        reason = %reason.as_str(),
                        until = %format_time(until),
                        failures = ip_count.long,
                        burst = ip_count.short,
                        protocol = %protocol,
                        "login guard: address banned"
                    );
                    self.view().bans.insert(key, ban);
                }
                Err(e) => tracing::warn!(error = %e, ip = %key, "login guard: cannot store a ban"),
            }
        }
        self.policy.delay(failures)
    }

    /// A successful login of `account` from `ip`: the address becomes known for the account,
    /// and its failure counter (if any) is cleared.
    pub async fn succeeded(&self, ip: IpAddr, account: &str) {
        if self.exempt(ip) {
            return;
        }
        let now = (self.clock)();
        let key = subject(ip);
        let had_failures = {
            let mut view = self.view();
            view.known
                .remember(account, &key, now, self.policy.known_ip_ttl);
            view.failed.remove(&key).is_some()
        };
        if had_failures && let Err(e) = self.store.clear_login_failures(GuardScope::Ip, &key).await
        {
            tracing::warn!(error = %e, "login guard: cannot clear a counter");
        }
    }

    /// Bans `ip` now (the CLI writes the store directly; this is for other defences and tests).
    pub async fn ban(
        &self,
        ip: IpAddr,
        duration: Duration,
        reason: &str,
    ) -> store::StoreResult<Ban> {
        let now = (self.clock)();
        let ban = Ban {
            ip: subject(ip),
            until: now.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)),
            created: now,
            reason: reason.to_string(),
        };
        self.store.add_ban(&ban).await?;
        self.view().bans.insert(ban.ip.clone(), ban.clone());
        Ok(ban)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_failures_are_bounded() {
        let mut failed = HashMap::new();
        // Old entries go first.
        for i in 0..=MAX_TRACKED_FAILED {
            failed.insert(format!("a{i}"), if i == 0 { 0 } else { 10_000 });
        }
        bound_failed(&mut failed, 10_000);
        assert_eq!(failed.len(), MAX_TRACKED_FAILED);
        assert!(!failed.contains_key("a0"));
        // All recent: the older half goes.
        for i in 0..=MAX_TRACKED_FAILED {
            failed.insert(format!("b{i}"), 10_000 + i as i64);
        }
        bound_failed(&mut failed, 20_000);
        assert!(failed.len() <= MAX_TRACKED_FAILED);
        assert!(failed.contains_key(&format!("b{MAX_TRACKED_FAILED}")));
    }
}
