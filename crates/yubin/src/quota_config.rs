//! The `[quota]` table: default limits (RFC 9208 STORAGE and MESSAGE) for every account and
//! per domain, the SMTP reply for a full mailbox, the IMAP quota administrators, and the
//! warnings. Account overrides live in the store (`yubin quota set`).

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Deserialize;

/// A size in bytes: an integer, or a string with a binary suffix (`"512K"`, `"10M"`, `"10G"`,
/// `"1T"`; `K` = 1024 octets, as IMAP's STORAGE unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Size(n)),
            Raw::Text(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

/// `"10G"` → bytes; also used by `yubin quota set --storage`.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        Some('B') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a size (e.g. 500M, 10G, or bytes)"))?;
    match n.checked_mul(mult) {
        Some(v) if v <= i64::MAX as u64 => Ok(v),
        _ => bail!("size {s:?} is too large"),
    }
}

/// The language of the warning messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Ja,
}

/// What SMTP answers for a full mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverQuota {
    /// `452 4.2.2`: the sender keeps the message and retries.
    #[default]
    Temporary,
    /// `552 5.2.2`: the sender bounces the message at once.
    Permanent,
}

/// The defaults of one domain (`[quota.domain."example.com"]`); a key left out falls back to
/// the `[quota]` value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainQuota {
    pub storage: Option<Size>,
    pub messages: Option<u64>,
    pub language: Option<Language>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quota {
    /// Default storage limit of every account (absent: unlimited).
    pub storage: Option<Size>,
    /// Default message-count limit of every account (absent: unlimited).
    pub messages: Option<u64>,
    /// Per-domain defaults, by domain name.
    pub domain: BTreeMap<String, DomainQuota>,
    pub smtp_over_quota: OverQuota,
    /// Addresses that may change limits over IMAP (RFC 9208 QUOTASET, SETQUOTA) and read any
    /// account's quota root.
    pub admins: Vec<String>,
    /// Percentages of either limit at which the user gets a warning in the INBOX (once per
    /// crossing); empty: no warnings.
    pub warn_at: Vec<u8>,
    /// The language of the warnings (`en` or `ja`), unless the domain names its own.
    pub language: Language,
    /// How often queued warnings are delivered, in seconds.
    pub warning_interval_secs: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            storage: None,
            messages: None,
            domain: BTreeMap::new(),
            smtp_over_quota: OverQuota::default(),
            admins: Vec::new(),
            warn_at: store::DEFAULT_WARN_AT.to_vec(),
            language: Language::default(),
            warning_interval_secs: 5,
        }
    }
}

impl Quota {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(p) = self.warn_at.iter().find(|&&p| p == 0 || p > 100) {
            bail!("[quota] warn_at: {p} is not a percentage between 1 and 100");
        }
        for d in self.domain.keys() {
            if mail_types::Domain::parse(d).is_err() {
                bail!("[quota.domain.{d:?}]: not a domain name");
            }
        }
        for a in &self.admins {
            if mail_types::Address::parse(a).is_err() {
                bail!("[quota] admins: {a:?} is not an address");
            }
        }
        if self.warning_interval_secs == 0 {
            bail!("[quota] warning_interval_secs must be at least 1");
        }
        Ok(())
    }

    /// The defaults the store applies.
    pub fn defaults(&self) -> store::QuotaDefaults {
        let mut warn_at = self.warn_at.clone();
        warn_at.sort_unstable();
        warn_at.dedup();
        store::QuotaDefaults {
            global: store::QuotaLimits {
                storage: self.storage.map(|s| s.0),
                messages: self.messages,
            },
            domains: self
                .domain
                .iter()
                .map(|(name, d)| {
                    let limits = store::QuotaLimits {
                        storage: d.storage.map(|s| s.0),
                        messages: d.messages,
                    };
                    (name.to_ascii_lowercase(), limits)
                })
                .collect(),
            warn_at,
        }
    }

    /// The warning language of an account of `domain`.
    pub fn language(&self, domain: &str) -> Language {
        self.domain
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .and_then(|(_, q)| q.language)
            .unwrap_or(self.language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("99999999T").is_err());
    }

    #[test]
    fn domain_defaults_fall_back_per_resource() {
        let q: Quota = toml::from_str(
            "storage = \"1G\"\nmessages = 10\n[domain.\"Example.com\"]\nstorage = 2048\nlanguage = \"ja\"\n",
        )
        .unwrap();
        q.validate().unwrap();
        let d = q.defaults();
        let l = d.resolve("example.com", store::QuotaLimits::default());
        assert_eq!((l.storage, l.messages), (Some(2048), Some(10)));
        assert_eq!(q.language("EXAMPLE.com"), Language::Ja);
        assert_eq!(q.language("other.test"), Language::En);
    }
}
