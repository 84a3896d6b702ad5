//! Quotas (RFC 9208): the two resources every account is limited in, STORAGE (bytes here; KiB
//! on the IMAP wire) and MESSAGE (a count), with defaults per domain and for the whole server,
//! and the warnings sent when usage crosses a threshold.
//!
//! Invariants every backend keeps:
//! - The usage counters (`accounts.quota_used`, `accounts.messages_used`) change in the same
//!   transaction as the messages they count — delivery, APPEND, COPY, MOVE, expunge, mailbox
//!   and account deletion — so they always equal the real sums.
//! - The limit test and the increment are one step under the account row's lock: two
//!   deliveries racing for the last bytes cannot both pass, and a refused write leaves nothing.
//! - A MOVE within an account changes neither counter and is never refused for quota.
//! - Limits are resolved per resource: the account's override, else its domain's default,
//!   else the server's default, else unlimited. Defaults come from the configuration and are
//!   handed to the store handle ([`QuotaStore::set_quota_defaults`]); overrides are stored.
//! - Each time a counter rises to or past a warning threshold it had not reached, a
//!   [`QuotaWarning`] is queued in the same transaction; once usage falls below a threshold,
//!   crossing it again queues a new warning. [`QuotaStore::take_quota_warnings`] hands each
//!   queued warning out once (on every node).

use std::collections::HashMap;

use async_trait::async_trait;
use mail_types::Address;

use crate::{AccountId, StoreResult};

/// The warning thresholds in percent when the configuration names none.
pub const DEFAULT_WARN_AT: [u8; 2] = [80, 95];

/// Limits of one account, or defaults of a domain or of the server. `None`: not set here
/// (for an account: its domain's default applies; for a resolved limit: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// STORAGE in bytes.
    pub storage: Option<u64>,
    /// MESSAGE, a count.
    pub messages: Option<u64>,
}

impl QuotaLimits {
    /// Each resource from `self`, else from `fallback`.
    pub fn or(self, fallback: QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            storage: self.storage.or(fallback.storage),
            messages: self.messages.or(fallback.messages),
        }
    }
}

/// The configured defaults, which a backend applies to accounts without an override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDefaults {
    /// For accounts of domains without their own default.
    pub global: QuotaLimits,
    /// Per domain (ASCII lower case); a resource left `None` falls back to `global`.
    pub domains: HashMap<String, QuotaLimits>,
    /// Warning thresholds in percent, ascending (RFC 9208 leaves warnings to the server).
    pub warn_at: Vec<u8>,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        QuotaDefaults {
            global: QuotaLimits::default(),
            domains: HashMap::new(),
            warn_at: DEFAULT_WARN_AT.to_vec(),
        }
    }
}

impl QuotaDefaults {
    /// The limits of an account of `domain` whose stored overrides are `account`.
    pub fn resolve(&self, domain: &str, account: QuotaLimits) -> QuotaLimits {
        let domain_default = self
            .domains
            .get(&domain.to_ascii_lowercase())
            .copied()
            .unwrap_or_default();
        account.or(domain_default).or(self.global)
    }

    /// The highest threshold `used` has reached of `limit` (0: none, or no limit).
    pub fn level(&self, used: u64, limit: Option<u64>) -> u8 {
        let Some(limit) = limit.filter(|&l| l > 0) else {
            return 0;
        };
        self.warn_at
            .iter()
            .copied()
            .filter(|&t| u128::from(used) * 100 >= u128::from(t) * u128::from(limit))
            .max()
            .unwrap_or(0)
    }
}

/// The RFC 9208 §5 resources yubin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaResource {
    /// Bytes of all messages (RFC 9208 §5.1; KiB on the wire).
    Storage,
    /// The number of messages (RFC 9208 §5.2).
    Messages,
}

impl QuotaResource {
    /// The RFC 9208 resource name.
    pub fn name(self) -> &'static str {
        match self {
            QuotaResource::Storage => "STORAGE",
            QuotaResource::Messages => "MESSAGE",
        }
    }

    /// The code stored in `quota_warnings.resource`.
    pub fn code(self) -> &'static str {
        match self {
            QuotaResource::Storage => "storage",
            QuotaResource::Messages => "messages",
        }
    }

    pub fn from_code(s: &str) -> Option<QuotaResource> {
        match s {
            "storage" => Some(QuotaResource::Storage),
            "messages" => Some(QuotaResource::Messages),
            _ => None,
        }
    }
}

/// A threshold an account's usage crossed upward, queued for the warning message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaWarning {
    pub account: AccountId,
    pub address: Address,
    pub resource: QuotaResource,
    /// The threshold crossed, in percent.
    pub percent: u8,
    /// Usage and limit right after the change that crossed it.
    pub used: u64,
    pub limit: u64,
}

/// One account's quota as `yubin quota show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountQuota {
    pub account: AccountId,
    pub address: Address,
    /// Usage and the resolved limits.
    pub quota: crate::Quota,
    /// The account's own overrides (`None`: the default applies).
    pub overrides: QuotaLimits,
}

/// Quota administration and warnings; usage and resolved limits of one account are
/// [`crate::MailStore::quota`].
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Replaces the defaults this handle applies (from the configuration, at start).
    fn set_quota_defaults(&self, defaults: QuotaDefaults);
    /// Sets the account's overrides; a `None` resource falls back to the default. `NotFound`
    /// without the user. Lowering a limit below the usage refuses further mail but removes
    /// nothing.
    async fn set_quota_limits(&self, address: &Address, limits: QuotaLimits) -> StoreResult<()>;
    /// Every account's usage, resolved limits and overrides, by address.
    async fn quota_report(&self) -> StoreResult<Vec<AccountQuota>>;
    /// Removes and returns up to `max` queued warnings, oldest first; each is returned once,
    /// whichever handle or node asks.
    async fn take_quota_warnings(&self, max: usize) -> StoreResult<Vec<QuotaWarning>>;
}

/// An account's quota row as a backend reads it while charging (after the change for a
/// backend that updates first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub used: u64,
    pub messages: u64,
    pub overrides: QuotaLimits,
    /// The account's domain, for its default.
    pub domain: String,
    /// The thresholds (percent) usage had reached, per resource.
    pub storage_warned: u8,
    pub messages_warned: u8,
}

/// What a charge leaves: the new counters and warning levels, and the thresholds crossed
/// upward (to queue as warnings: resource, percent, used, limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub used: u64,
    pub messages: u64,
    pub storage_warned: u8,
    pub messages_warned: u8,
    pub crossed: Vec<(QuotaResource, u8, u64, u64)>,
}

impl Charged {
    /// Whether the warning levels differ from `row`'s (the row needs writing back).
    pub fn levels_changed(&self, row: &QuotaRow) -> bool {
        self.storage_warned != row.storage_warned || self.messages_warned != row.messages_warned
    }
}

/// The backends' one rule for a change of `bytes` and `messages` on an account in state
/// `before`: `OverQuota` when `check` and a growing resource would pass its resolved limit
/// (then nothing may be written); else the new counters (never below 0) and warning levels.
pub fn charge(
    defaults: &QuotaDefaults,
    before: &QuotaRow,
    bytes: i64,
    messages: i64,
    check: bool,
) -> Result<Charged, crate::StoreError> {
    let limits = defaults.resolve(&before.domain, before.overrides);
    let add = |v: u64, d: i64| -> u64 {
        if d >= 0 {
            v.saturating_add(d as u64)
        } else {
            v.saturating_sub(d.unsigned_abs())
        }
    };
    let used = add(before.used, bytes);
    let count = add(before.messages, messages);
    if check
        && ((bytes > 0 && limits.storage.is_some_and(|l| used > l))
            || (messages > 0 && limits.messages.is_some_and(|l| count > l)))
    {
        return Err(crate::StoreError::OverQuota);
    }
    let mut crossed = Vec::new();
    let mut level = |res: QuotaResource, was: u8, v: u64, limit: Option<u64>| -> u8 {
        let now = defaults.level(v, limit);
        if now > was {
            crossed.push((res, now, v, limit.unwrap_or(0)));
        }
        now
    };
    let storage_warned = level(
        QuotaResource::Storage,
        before.storage_warned,
        used,
        limits.storage,
    );
    let messages_warned = level(
        QuotaResource::Messages,
        before.messages_warned,
        count,
        limits.messages,
    );
    Ok(Charged {
        used,
        messages: count,
        storage_warned,
        messages_warned,
        crossed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(used: u64, messages: u64) -> QuotaRow {
        QuotaRow {
            used,
            messages,
            overrides: QuotaLimits::default(),
            domain: "a.test".into(),
            storage_warned: 0,
            messages_warned: 0,
        }
    }

    #[test]
    fn limits_resolve_per_resource() {
        let mut d = QuotaDefaults {
            global: QuotaLimits {
                storage: Some(1000),
                messages: Some(10),
            },
            ..Default::default()
        };
        d.domains.insert(
            "a.test".into(),
            QuotaLimits {
                storage: Some(500),
                messages: None,
            },
        );
        let own = QuotaLimits {
            storage: None,
            messages: Some(3),
        };
        assert_eq!(
            d.resolve("A.test", own),
            QuotaLimits {
                storage: Some(500),
                messages: Some(3)
            }
        );
        assert_eq!(d.resolve("b.test", QuotaLimits::default()), d.global);
    }

    #[test]
    fn charge_refuses_past_the_limit_and_reports_crossings_once() {
        let d = QuotaDefaults {
            global: QuotaLimits {
                storage: Some(100),
                messages: None,
            },
            ..Default::default()
        };
        assert_eq!(
            charge(&d, &row(90, 1), 11, 1, true),
            Err(crate::StoreError::OverQuota)
        );
        // Unchecked (MOVE, restore) may pass the limit.
        assert_eq!(charge(&d, &row(90, 1), 11, 1, false).unwrap().used, 101);
        let c = charge(&d, &row(70, 1), 12, 1, true).unwrap();
        assert_eq!(c.crossed, vec![(QuotaResource::Storage, 80, 82, 100)]);
        let mut r = row(82, 2);
        r.storage_warned = 80;
        assert!(charge(&d, &r, 1, 1, true).unwrap().crossed.is_empty());
        // Falling below re-arms.
        let c = charge(&d, &r, -10, -1, true).unwrap();
        assert_eq!((c.storage_warned, c.crossed.len()), (0, 0));
        // Jumping past both thresholds at once is one crossing, of the higher.
        let c = charge(&d, &row(0, 0), 96, 1, true).unwrap();
        assert_eq!(c.crossed, vec![(QuotaResource::Storage, 95, 96, 100)]);
        assert_eq!(d.level(5, None), 0);
    }
}
