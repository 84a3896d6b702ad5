//! `imap-select`: times LOGIN, SELECT and `UID FETCH 1:* (UID FLAGS)` on a (large) mailbox.
//!
//! Each repetition opens a new connection, logs in, SELECTs (RFC 9051 §6.3.2), lists every
//! message's flags (§6.4.9 UID FETCH) reading the whole stream, and logs out. SELECT time is
//! command sent → tagged OK read; the flags listing is reported as messages (untagged FETCH
//! responses) and bytes per second.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::imap_client::{ImapClient, tls_connector};
use crate::report::{Latency, json_string};

#[derive(Debug, Clone)]
pub struct SelectConfig {
    pub addr: String,
    pub tls: bool,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    pub repeat: usize,
    pub io_timeout: Duration,
}

pub async fn run(cfg: SelectConfig) -> anyhow::Result<(String, String)> {
    let connector = if cfg.tls {
        Some(tls_connector()?)
    } else {
        None
    };
    let mut login = Vec::new();
    let mut select = Vec::new();
    let mut fetch = Vec::new();
    let (mut messages, mut bytes) = (0u64, 0u64);
    for _ in 0..cfg.repeat.max(1) {
        let mut c = ImapClient::connect(&cfg.addr, connector.as_ref(), cfg.io_timeout).await?;
        let t = Instant::now();
        c.login(&cfg.user, &cfg.password).await?;
        login.push(t.elapsed());
        let t = Instant::now();
        c.ok(&format!(
            "SELECT {}",
            crate::imap_client::quoted(&cfg.mailbox)
        ))
        .await?;
        select.push(t.elapsed());
        let exists = c.exists;
        let t = Instant::now();
        let d = c.ok("UID FETCH 1:* (UID FLAGS)").await?;
        fetch.push(t.elapsed());
        if d.untagged < u64::from(exists) {
            bail!(
                "FETCH returned {} responses for {exists} messages",
                d.untagged
            );
        }
        (messages, bytes) = (d.untagged, d.bytes);
        let _ = c.command("LOGOUT").await;
    }
    let best_fetch = fetch.iter().min().copied().unwrap_or_default();
    let mut fetch_sorted = fetch.clone();
    let med_fetch = Latency::of(&mut fetch_sorted).map_or(0.0, |l| l.p50 / 1000.0);
    let rate = |secs: f64| {
        if secs > 0.0 {
            messages as f64 / secs
        } else {
            0.0
        }
    };
    let login_l = Latency::of(&mut login).unwrap_or_default();
    let select_l = Latency::of(&mut select).unwrap_or_default();
    let human = format!(
        "IMAP SELECT/FETCH on {} ({} repetitions, {} messages)\n  \
         LOGIN  p50 {:.2} ms  p99 {:.2} ms\n  \
         SELECT p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms\n  \
         UID FETCH 1:* (UID FLAGS): {} bytes; median {:.1} ms = {:.0} msgs/s ({:.1} MB/s), best {:.0} msgs/s\n",
        cfg.mailbox,
        cfg.repeat,
        messages,
        login_l.p50,
        login_l.p99,
        select_l.p50,
        select_l.p99,
        select_l.max,
        bytes,
        med_fetch * 1000.0,
        rate(med_fetch),
        bytes as f64 / med_fetch.max(1e-9) / 1e6,
        rate(best_fetch.as_secs_f64()),
    );
    let json = format!(
        "{{\"mode\":\"imap-select\",\"addr\":{},\"mailbox\":{},\"repeat\":{},\"messages\":{messages},\
         \"login_ms\":{{\"p50\":{:.3},\"p99\":{:.3}}},\"select_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}},\
         \"fetch_flags_ms\":{:.3},\"fetch_bytes\":{bytes},\"fetch_msgs_per_s\":{:.0},\"fetch_best_msgs_per_s\":{:.0}}}",
        json_string(&cfg.addr),
        json_string(&cfg.mailbox),
        cfg.repeat,
        login_l.p50,
        login_l.p99,
        select_l.p50,
        select_l.p99,
        select_l.max,
        med_fetch * 1000.0,
        rate(med_fetch),
        rate(best_fetch.as_secs_f64()),
    );
    Ok((human, json))
}
