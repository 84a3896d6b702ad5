//! What the router reads from a request: query parameters, the host the client asked for,
//! and the address it names.

use mail_types::{Address, Domain};

/// The first query parameter named `name` (ASCII case-insensitive: Outlook sends `Email`,
/// Thunderbird `emailaddress`), percent- and `+`-decoded (the form encoding of the URL
/// standard, which every client here uses).
pub fn query_param(query: Option<&str>, names: &[&str]) -> Option<String> {
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.into_owned())
}

/// Percent-decodes one path segment (RFC 3986 §2.1); `None` when it is not UTF-8.
/// `pct-encoded = "%" HEXDIG HEXDIG`: anything else after `%` (`%+B`, which
/// `from_str_radix` would take as a signed number) is kept as it is.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && hex.iter().all(u8::is_ascii_hexdigit)
            && let Some(Ok(b)) = std::str::from_utf8(hex)
                .ok()
                .map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The host name of a `Host` header value (RFC 9110 §7.2), port removed, lower-cased;
/// `None` for an IP literal or anything that is not a domain name.
pub fn host_name(host: &str) -> Option<Domain> {
    if host.starts_with('[') {
        return None;
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    Domain::parse(name).ok()
}

/// The prefixes under which clients look for a domain's configuration: Thunderbird's
/// `autoconfig.`, Outlook's `autodiscover.`, PACC's `ua-auto-config.`.
const PREFIXES: [&str; 3] = ["autoconfig.", "autodiscover.", "ua-auto-config."];

/// The mail domain a host name asks about: `autoconfig.example.com` → `example.com`.
/// `Err(())` when it has one of the prefixes but the rest is no domain.
pub fn prefixed_domain(host: &Domain) -> Option<Result<Domain, ()>> {
    let h = host.as_str();
    let rest = PREFIXES.iter().find_map(|p| h.strip_prefix(p))?;
    Some(Domain::parse(rest).map_err(|_| ()))
}

/// The user's address, refused unless it parses as one (RFC 5321 §4.1.2; no angle
/// brackets, controls or spaces).
pub fn address(s: &str) -> Option<Address> {
    let s = s.trim();
    if s.is_empty() || s.len() > 254 {
        return None;
    }
    Address::parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_any_case_and_decoded() {
        let q = Some("Email=alice%40example.com&Protocol=AutodiscoverV1");
        assert_eq!(
            query_param(q, &["email"]).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            query_param(q, &["protocol"]).as_deref(),
            Some("AutodiscoverV1")
        );
        assert_eq!(
            query_param(Some("emailaddress=a+b%2Bc"), &["emailaddress"]).as_deref(),
            Some("a b+c")
        );
        assert_eq!(query_param(None, &["x"]), None);
        assert_eq!(query_param(Some("x"), &["y"]), None);
    }

    #[test]
    fn path_segments_decode() {
        assert_eq!(
            percent_decode("alice%40example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(percent_decode("a%4").as_deref(), Some("a%4"));
        assert_eq!(percent_decode("%ff"), None);
        // Found by the web_request fuzz target: a sign is no hex digit.
        assert_eq!(percent_decode("a%+Bb%+41").as_deref(), Some("a%+Bb%+41"));
        assert_eq!(percent_decode("%-1").as_deref(), Some("%-1"));
    }

    #[test]
    fn hosts_and_prefixes() {
        let h = host_name("Autoconfig.Example.COM:8080").unwrap();
        assert_eq!(h.as_str(), "autoconfig.example.com");
        assert_eq!(
            prefixed_domain(&h),
            Some(Ok(Domain::parse("example.com").unwrap()))
        );
        let h = host_name("mail.example.com").unwrap();
        assert_eq!(prefixed_domain(&h), None);
        assert!(host_name("127.0.0.1:80").is_none());
        assert!(host_name("[::1]:80").is_none());
        assert!(host_name("bad host").is_none());
    }

    #[test]
    fn addresses_are_checked() {
        assert!(address("alice@example.com").is_some());
        assert!(address("<a>@example.com").is_none());
        assert!(address("no-at-sign").is_none());
        assert!(address("").is_none());
        assert!(address("a@bad_domain").is_none());
    }
}
