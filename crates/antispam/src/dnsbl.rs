//! DNS blocklists (RFC 5782): is the client's address listed in one of the configured zones?
//!
//! A query name is the address reversed (IPv4 octets, §2.1; IPv6 nibbles, §2.4) under the
//! zone; an A record in 127.0.0.0/8 means listed, and the TXT record at the same name, if any,
//! says why (§2.1). Lookups run for every zone at once, each bounded by the timeout; a lookup
//! that fails or times out counts as "not listed" and is logged: a broken blocklist must not
//! stop mail.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// The DNS lookups a blocklist needs; yubin answers them from its resolver (with the
/// `[dns.override]` table in front).
#[async_trait]
pub trait DnsLookup: Send + Sync {
    /// The IPv4 addresses of `name`: empty when the name does not exist or has none; `Err` when
    /// the lookup failed.
    async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, String>;
    /// The TXT strings of `name` (each record's strings joined); empty when there are none.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
}

/// A hit: which zone lists the client, and its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub zone: String,
    /// The zone's TXT text, made safe for an SMTP reply line.
    pub text: Option<String>,
}

/// The name to look up for `ip` in `zone`. RFC 5782 §2.1 (IPv4: `2.0.0.127.zone`) and §2.4
/// (IPv6: 32 nibbles, least significant first).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                name.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
                name.push('.');
                name.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                name.push('.');
            }
            name.push_str(zone);
            name
        }
    }
}

/// Whether an answer means "listed". RFC 5782 §2.1: listings are in 127.0.0.0/8; 127.0.0.1 is
/// never a listing (§5), and large lists answer 127.255.255.0/24 to signal a refused or
/// malformed query, not a listing.
fn is_listing(a: Ipv4Addr) -> bool {
    let [first, second, third, last] = a.octets();
    first == 127 && a != Ipv4Addr::LOCALHOST && !(second == 255 && third == 255 && last != 0)
}

/// Printable ASCII only, at most 200 characters: the text goes into a reply line.
fn reply_safe(text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

async fn check_zone(
    dns: Arc<dyn DnsLookup>,
    ip: IpAddr,
    zone: String,
    timeout: Duration,
) -> Option<Listing> {
    let name = query_name(ip, &zone);
    let deadline = tokio::time::Instant::now() + timeout;
    let answer = match tokio::time::timeout_at(deadline, dns.ipv4(&name)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            tracing::warn!(target: "audit", event = %"dnsbl_error", ip = %ip, zone = %zone, error = %e, "blocklist lookup failed; client let through");
            return None;
        }
        Err(_) => {
            tracing::warn!(target: "audit", event = %"dnsbl_error", ip = %ip, zone = %zone, error = %"timeout", "blocklist lookup timed out; client let through");
            return None;
        }
    };
    if !answer.iter().copied().any(is_listing) {
        return None;
    }
    // The explanation is optional: a slow or failed TXT lookup still refuses, without text.
    let text = match tokio::time::timeout_at(deadline, dns.txt(&name)).await {
        Ok(Ok(txt)) => txt.first().and_then(|t| reply_safe(t)),
        _ => None,
    };
    Some(Listing { zone, text })
}

/// Looks `ip` up in every zone at once; the first zone (in configuration order) that lists it.
pub async fn check(
    dns: &Arc<dyn DnsLookup>,
    zones: &[String],
    ip: IpAddr,
    timeout: Duration,
) -> Option<Listing> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, zone) in zones.iter().enumerate() {
        let lookup = check_zone(Arc::clone(dns), ip, zone.clone(), timeout);
        tasks.spawn(async move { (i, lookup.await) });
    }
    let mut found: Option<(usize, Listing)> = None;
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, Some(listing))) = done
            && found.as_ref().is_none_or(|(j, _)| i < *j)
        {
            found = Some((i, listing));
        }
    }
    found.map(|(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// RFC 5782 §2.1 and §2.4's own examples.
    #[test]
    fn query_names() {
        let v4: IpAddr = "192.168.42.23".parse().unwrap();
        assert_eq!(query_name(v4, "bl.test."), "23.42.168.192.bl.test");
        let v6: IpAddr = "2001:db8:1:2:3:4:567:89ab".parse().unwrap();
        assert_eq!(
            query_name(v6, "ugly.example.com"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(query_name(mapped, "bl.test"), "2.0.0.127.bl.test");
    }

    #[test]
    fn listings() {
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(is_listing(Ipv4Addr::new(127, 0, 1, 4)));
        assert!(!is_listing(Ipv4Addr::LOCALHOST));
        assert!(!is_listing(Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!is_listing(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(
            reply_safe(" Listed\r\nfor spam "),
            Some("Listed??for spam".into())
        );
        assert_eq!(reply_safe("  "), None);
    }

    /// Per name: the A answer and the TXT strings.
    type Answers = HashMap<String, (Result<Vec<Ipv4Addr>, String>, Vec<String>)>;

    struct Table(Answers, Duration);

    #[async_trait]
    impl DnsLookup for Table {
        async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, String> {
            tokio::time::sleep(self.1).await;
            self.0.get(name).map_or(Ok(Vec::new()), |e| e.0.clone())
        }
        async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
            Ok(self.0.get(name).map_or(Vec::new(), |e| e.1.clone()))
        }
    }

    #[tokio::test]
    async fn first_listing_zone_wins_and_failures_let_through() {
        let mut t = HashMap::new();
        let listed = Ok(vec![Ipv4Addr::new(127, 0, 0, 2)]);
        t.insert("9.2.0.192.a.test".into(), (Err("SERVFAIL".into()), vec![]));
        t.insert("9.2.0.192.b.test".into(), (listed.clone(), vec![]));
        t.insert("9.2.0.192.c.test".into(), (listed, vec!["see c".into()]));
        let dns: Arc<dyn DnsLookup> = Arc::new(Table(t, Duration::ZERO));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let zones: Vec<String> = ["a.test", "c.test", "b.test"].map(String::from).into();
        let hit = check(&dns, &zones, ip, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            hit,
            Listing {
                zone: "c.test".into(),
                text: Some("see c".into())
            }
        );
        assert_eq!(
            check(&dns, &zones[..1], ip, Duration::from_secs(1)).await,
            None
        );
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(
            check(&dns, &zones, other, Duration::from_secs(1)).await,
            None
        );
    }

    #[tokio::test]
    async fn slow_lookups_are_cut_off() {
        let mut t = HashMap::new();
        t.insert(
            "9.2.0.192.a.test".into(),
            (Ok(vec![Ipv4Addr::new(127, 0, 0, 2)]), vec![]),
        );
        let dns: Arc<dyn DnsLookup> = Arc::new(Table(t, Duration::from_secs(5)));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let started = std::time::Instant::now();
        let zones = vec!["a.test".to_string()];
        assert_eq!(
            check(&dns, &zones, ip, Duration::from_millis(100)).await,
            None
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
