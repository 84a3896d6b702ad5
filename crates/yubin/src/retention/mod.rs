//! Retention policies (`[retention]`): old Trash and Junk expunged by save date (RFC 8514),
//! an optional move of old INBOX mail to Archive, and the server side of POP3's "leave a copy
//! on the server for N days" (RFC 2449 §6.7 EXPIRE), per domain with per-account overrides.
//!
//! Overrides live in the configuration (`[retention.domains."example.com"]`,
//! `[retention.accounts."user@example.com"]`), not in the store: a policy is an admin's
//! decision, reviewed and versioned with the rest of the configuration, and every node reads
//! the same file. The one exception is the POP3 period a user picks on the account pages
//! (among `[account_pages] pop3_expire_choices`): it is the user's, so it is stored with the
//! account (`choices.rs`) and wins over the configured POP3 period. The background task (`task.rs`) applies it on one node at a time; `yubin
//! retention run` (`cli.rs`) shows or applies it by hand. Both remove through the ordinary
//! store calls (`pass.rs`), so IMAP sessions see the expunges live.

pub mod choices;
pub mod cli;
pub mod pass;
pub mod task;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A retention period: a number of days, or never (`"never"` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    Never,
    After(u32),
}

impl Days {
    /// The period in seconds, `None` for never.
    pub fn seconds(self) -> Option<i64> {
        match self {
            Days::Never => None,
            Days::After(n) => Some(i64::from(n) * 86_400),
        }
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Days::Never => f.write_str("never"),
            Days::After(n) => write!(f, "{n} days"),
        }
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Days, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => u32::try_from(n)
                .map(Days::After)
                .map_err(|_| serde::de::Error::custom("days must be 0 or more, or \"never\"")),
            Raw::S(s) if s.eq_ignore_ascii_case("never") => Ok(Days::Never),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "expected a number of days or \"never\", got {s:?}"
            ))),
        }
    }
}

/// The `[retention]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Whether `yubin serve` runs the background task (`yubin retention run` works anyway).
    pub enabled: bool,
    /// Seconds between the starts of two passes.
    pub interval_secs: u64,
    /// Messages removed per store transaction: bounds how long one write holds the store.
    pub batch_size: usize,
    /// Milliseconds the task sleeps between two batches, so sessions' writes go first.
    pub batch_pause_ms: u64,
    /// How long the task's lease (one node at a time) lasts without renewal.
    pub lease_secs: u64,
    /// The defaults for every account.
    pub trash_days: Days,
    pub junk_days: Days,
    pub archive_days: Days,
    pub pop3_expire_days: Days,
    /// Per-domain overrides, keyed by domain.
    pub domains: BTreeMap<String, Overrides>,
    /// Per-account overrides, keyed by address; they win over the domain's.
    pub accounts: BTreeMap<String, Overrides>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            enabled: true,
            interval_secs: 3600,
            batch_size: 200,
            batch_pause_ms: 20,
            lease_secs: 60,
            trash_days: Days::After(30),
            junk_days: Days::After(30),
            archive_days: Days::Never,
            pop3_expire_days: Days::Never,
            domains: BTreeMap::new(),
            accounts: BTreeMap::new(),
        }
    }
}

/// A domain's or an account's overrides; a key left out inherits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub trash_days: Option<Days>,
    pub junk_days: Option<Days>,
    pub archive_days: Option<Days>,
    pub pop3_expire_days: Option<Days>,
}

/// The policy of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Expunge from the `\Trash` mailbox this long after the save date.
    pub trash: Days,
    /// Expunge from the `\Junk` mailbox this long after the save date.
    pub junk: Days,
    /// Move INBOX mail to the `\Archive` mailbox this long after the save date.
    pub archive: Days,
    /// Expunge INBOX mail this long after its first POP3 RETR.
    pub pop3: Days,
}

impl Retention {
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.max(1))
    }
    pub fn batch_pause(&self) -> Duration {
        Duration::from_millis(self.batch_pause_ms)
    }
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(3))
    }

    /// The policy of `address` with the user's own POP3 choice, if any, in place of the
    /// configured POP3 period.
    pub fn policy_with(&self, address: &str, pop3_choice: Option<Days>) -> Policy {
        let mut p = self.policy(address);
        if let Some(c) = pop3_choice {
            p.pop3 = c;
        }
        p
    }

    /// The policy of `address` (canonical `local@domain`): the account's override, else the
    /// domain's, else the default, key by key.
    pub fn policy(&self, address: &str) -> Policy {
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let find = |m: &BTreeMap<String, Overrides>, k: &str| {
            m.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, o)| o.clone())
        };
        let acc = find(&self.accounts, address).unwrap_or_default();
        let dom = find(&self.domains, domain).unwrap_or_default();
        let pick = |a: Option<Days>, d: Option<Days>, def: Days| a.or(d).unwrap_or(def);
        Policy {
            trash: pick(acc.trash_days, dom.trash_days, self.trash_days),
            junk: pick(acc.junk_days, dom.junk_days, self.junk_days),
            archive: pick(acc.archive_days, dom.archive_days, self.archive_days),
            pop3: pick(
                acc.pop3_expire_days,
                dom.pop3_expire_days,
                self.pop3_expire_days,
            ),
        }
    }

    /// Checks what serde cannot: override keys must be addresses and domains.
    pub fn validate(&self) -> anyhow::Result<()> {
        for a in self.accounts.keys() {
            if mail_types::Address::parse(a).is_err() {
                anyhow::bail!("[retention.accounts.{a:?}]: not an email address");
            }
        }
        for d in self.domains.keys() {
            if mail_types::Domain::parse(d).is_err() {
                anyhow::bail!("[retention.domains.{d:?}]: not a domain name");
            }
        }
        if self.batch_size == 0 {
            anyhow::bail!("[retention] batch_size must be at least 1");
        }
        Ok(())
    }
}

fn expire_of(d: Days) -> pop3_server::Expire {
    match d {
        Days::Never => pop3_server::Expire::Never,
        Days::After(n) => pop3_server::Expire::Days(n),
    }
}

/// What POP3 CAPA announces as EXPIRE (RFC 2449 §6.7), from the same policy the task applies
/// (the configuration and the users' own choices).
#[derive(Debug, Clone)]
pub struct Pop3Expire(pub Retention, pub choices::Pop3Choices);

impl pop3_server::ExpirePolicy for Pop3Expire {
    fn before_login(&self) -> (pop3_server::Expire, bool) {
        let r = &self.0;
        let all = std::iter::once(r.pop3_expire_days).chain(
            r.domains
                .values()
                .chain(r.accounts.values())
                .filter_map(|o| o.pop3_expire_days)
                .chain(self.1.values()),
        );
        let values: Vec<Days> = all.collect();
        let varies = values.iter().any(|v| *v != r.pop3_expire_days);
        // RFC 2449 §6.7: before login, the shortest period any user has.
        let shortest = values
            .iter()
            .filter_map(|d| match d {
                Days::After(n) => Some(*n),
                Days::Never => None,
            })
            .min()
            .map_or(Days::Never, Days::After);
        (expire_of(shortest), varies)
    }

    fn for_user(&self, address: &str) -> pop3_server::Expire {
        expire_of(self.0.policy_with(address, self.1.get(address)).pop3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pop3_server::{Expire, ExpirePolicy};

    fn parse(s: &str) -> Retention {
        toml::from_str(s).unwrap()
    }

    /// Account beats domain beats default, key by key; "never" and numbers both parse.
    #[test]
    fn policy_resolution() {
        let r = parse(
            r#"
            trash_days = 30
            pop3_expire_days = "never"
            [domains."a.test"]
            trash_days = 7
            pop3_expire_days = 14
            [accounts."boss@a.test"]
            trash_days = "never"
            "#,
        );
        let p = r.policy("x@a.test");
        assert_eq!(
            (p.trash, p.junk, p.pop3),
            (Days::After(7), Days::After(30), Days::After(14))
        );
        let p = r.policy("Boss@A.test");
        assert_eq!((p.trash, p.pop3), (Days::Never, Days::After(14)));
        let p = r.policy("y@b.test");
        assert_eq!(
            (p.trash, p.archive, p.pop3),
            (Days::After(30), Days::Never, Days::Never)
        );
        assert!(toml::from_str::<Retention>("trash_days = \"soon\"").is_err());
        assert!(toml::from_str::<Retention>("trash_days = -1").is_err());
        assert!(toml::from_str::<Retention>("[domains.\"a.test\"]\ntrash = 1").is_err());
    }

    /// RFC 2449 §6.7: one value for all is announced plainly; a per-user one is the shortest
    /// with USER before login and the user's own after.
    #[test]
    fn expire_announcement() {
        let never = Pop3Expire(Retention::default(), Default::default());
        assert_eq!(never.before_login(), (Expire::Never, false));
        let all = Pop3Expire(parse("pop3_expire_days = 14"), Default::default());
        assert_eq!(all.before_login(), (Expire::Days(14), false));
        let per = Pop3Expire(
            parse("pop3_expire_days = 30\n[accounts.\"a@x.test\"]\npop3_expire_days = 7"),
            Default::default(),
        );
        assert_eq!(per.before_login(), (Expire::Days(7), true));
        assert_eq!(per.for_user("a@x.test"), Expire::Days(7));
        assert_eq!(per.for_user("b@x.test"), Expire::Days(30));
        // A user's own choice wins for that user, and counts before login.
        per.1.set("b@x.test", Some(Days::After(2)));
        assert_eq!(per.for_user("b@x.test"), Expire::Days(2));
        assert_eq!(per.before_login(), (Expire::Days(2), true));
        per.1.set("b@x.test", Some(Days::Never));
        assert_eq!(per.for_user("b@x.test"), Expire::Never);
        assert_eq!(per.before_login(), (Expire::Days(7), true));
    }
}
