//! `yubin quota set|clear|show`: the accounts' own limits (RFC 9208 STORAGE and MESSAGE) and
//! their usage, through the same store as the running servers; a change applies to the next
//! delivery on every node. The defaults are `[quota]` in the configuration.

use std::io::Write;

use anyhow::{Context, bail};
use mail_types::Address;
use store::{AccountQuota, QuotaLimits, Store, StoreError};

use crate::cli::QuotaCommand;
use crate::quota_config::parse_size;

fn address(s: &str) -> anyhow::Result<Address> {
    Address::parse(s).map_err(|_| anyhow::anyhow!("{s:?} is not an address"))
}

/// `None`: leave the limit; `Some(None)`: back to the default; `Some(Some(n))`: set.
fn limit(
    text: Option<&str>,
    parse: fn(&str) -> anyhow::Result<u64>,
) -> anyhow::Result<Option<Option<u64>>> {
    match text {
        None => Ok(None),
        Some(t) if t.eq_ignore_ascii_case("default") => Ok(Some(None)),
        Some(t) => parse(t).map(|n| Some(Some(n))),
    }
}

fn count(t: &str) -> anyhow::Result<u64> {
    t.trim()
        .parse()
        .with_context(|| format!("{t:?} is not a number of messages"))
}

pub async fn run(store: &dyn Store, cmd: QuotaCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        QuotaCommand::Set {
            address: a,
            storage,
            messages,
        } => {
            let a = address(&a)?;
            let storage = limit(storage.as_deref(), parse_size)?;
            let messages = limit(messages.as_deref(), count)?;
            if storage.is_none() && messages.is_none() {
                bail!("give --storage and/or --messages");
            }
            let user = store
                .find_user(&a)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_context(|| format!("no such user {a}"))?;
            let limits = QuotaLimits {
                storage: storage.unwrap_or(user.quota_limit),
                messages: messages.unwrap_or(user.message_limit),
            };
            set(store, &a, limits).await?;
            show(store, Some(&a), out).await
        }
        QuotaCommand::Clear { address: a } => {
            let a = address(&a)?;
            set(store, &a, QuotaLimits::default()).await?;
            show(store, Some(&a), out).await
        }
        QuotaCommand::Show { address: a, .. } => {
            let a = a.as_deref().map(address).transpose()?;
            show(store, a.as_ref(), out).await
        }
    }
}

async fn set(store: &dyn Store, a: &Address, limits: QuotaLimits) -> anyhow::Result<()> {
    match store.set_quota_limits(a, limits).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => bail!("no such user {a}"),
        Err(e) => Err(anyhow::anyhow!("cannot set the quota of {a}: {e}")),
    }
}

/// A size for people: `1.2 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Percentage used, rounded down (`-` without a limit).
fn percent(used: u64, limit: Option<u64>) -> String {
    match limit {
        Some(0) => "100%".into(),
        Some(l) => format!("{}%", (u128::from(used) * 100 / u128::from(l)) as u64),
        None => "-".into(),
    }
}

fn limit_text(limit: Option<u64>, own: bool, fmt: fn(u64) -> String) -> String {
    match limit {
        Some(l) => format!("{}{}", fmt(l), if own { "*" } else { "" }),
        None => "unlimited".into(),
    }
}

async fn show(
    store: &dyn Store,
    only: Option<&Address>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut rows: Vec<AccountQuota> = store
        .quota_report()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the quotas: {e}"))?;
    if let Some(a) = only {
        rows.retain(|r| &r.address == a);
        if rows.is_empty() {
            bail!("no such user {a}");
        }
    }
    writeln!(
        out,
        "{:<32} {:>10} {:>11} {:>5} {:>9} {:>10} {:>5}",
        "ADDRESS", "STORAGE", "LIMIT", "USE", "MESSAGES", "LIMIT", "USE"
    )?;
    for r in rows {
        let q = r.quota;
        writeln!(
            out,
            "{:<32} {:>10} {:>11} {:>5} {:>9} {:>10} {:>5}",
            r.address.to_string(),
            human(q.used),
            limit_text(q.limit, r.overrides.storage.is_some(), human),
            percent(q.used, q.limit),
            q.messages,
            limit_text(q.message_limit, r.overrides.messages.is_some(), |n| n
                .to_string()),
            percent(q.messages, q.message_limit),
        )?;
    }
    Ok(())
}
