//! `yubin ban list|add|del`: the bans of the password-guessing defence, through the same store
//! as the running servers. A server rereads the bans every `[auth] ban_refresh_secs`, so a
//! change here takes effect on every node within that, without a restart or a signal.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use store::{Ban, LoginGuardStore};

use crate::cli::BanCommand;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `90s`, `30m`, `1h`, `2d`, `1w` (a bare number is seconds).
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .with_context(|| format!("invalid duration {text:?} (e.g. 30m, 1h, 2d)"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("invalid duration {text:?}: the unit is one of s, m, h, d, w"),
    };
    if n == 0 {
        bail!("invalid duration {text:?}: must be longer than 0");
    }
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .with_context(|| format!("duration {text:?} is too long"))
}

/// An address as the guard stores it (IPv6: its /64), or a clear error.
fn subject(ip: &str) -> anyhow::Result<(IpAddr, String)> {
    let parsed: IpAddr = ip
        .trim()
        .parse()
        .with_context(|| format!("{ip:?} is not an IP address"))?;
    Ok((parsed, auth::subject(parsed)))
}

fn remaining(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

pub async fn run(
    store: &dyn LoginGuardStore,
    trusted: &server_kit::TrustedNetworks,
    cmd: BanCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let t = now();
    match cmd {
        BanCommand::List => {
            let bans = store.active_bans(t).await?;
            if bans.is_empty() {
                writeln!(out, "no bans")?;
            }
            for b in bans {
                writeln!(
                    out,
                    "{}\tuntil {} ({} left)\t{}\tsince {}",
                    b.ip,
                    auth::format_time(b.until),
                    remaining(b.until - t),
                    b.reason,
                    auth::format_time(b.created)
                )?;
            }
        }
        BanCommand::Add { ip, duration } => {
            let (parsed, key) = subject(&ip)?;
            let d = parse_duration(&duration)?;
            let until = t.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            store
                .add_ban(&Ban {
                    ip: key.clone(),
                    until,
                    created: t,
                    reason: "manual".into(),
                })
                .await?;
            writeln!(out, "banned {key} until {}", auth::format_time(until))?;
            if trusted.contains(parsed) {
                writeln!(
                    out,
                    "warning: {ip} is in [limits] trusted_networks, which bans do not apply to"
                )?;
            }
        }
        BanCommand::Del { ip } => {
            let (_, key) = subject(&ip)?;
            if !store.remove_ban(&key).await? {
                bail!("{key} is not banned");
            }
            writeln!(out, "lifted the ban of {key}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).map(|d| d.as_secs()).ok();
        assert_eq!(d("90"), Some(90));
        assert_eq!(d("90s"), Some(90));
        assert_eq!(d("30m"), Some(1800));
        assert_eq!(d("1h"), Some(3600));
        assert_eq!(d("2d"), Some(172_800));
        assert_eq!(d("1w"), Some(604_800));
        assert_eq!(d("0h"), None);
        assert_eq!(d("h"), None);
        assert_eq!(d("1y"), None);
        assert_eq!(d("-1h"), None);
        assert_eq!(d("99999999999999999999d"), None);
    }

    #[test]
    fn subjects() {
        assert_eq!(subject("192.0.2.1").unwrap().1, "192.0.2.1");
        assert_eq!(subject("2001:db8::1").unwrap().1, "2001:db8::");
        assert!(subject("example.com").is_err());
    }
}
