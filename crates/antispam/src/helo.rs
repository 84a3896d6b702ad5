//! HELO/EHLO sanity on the MX.
//!
//! RFC 5321 §4.1.1.1: the argument is a domain or an address literal. Real clients are
//! looser, so — like Postfix's `reject_invalid_helo_hostname` — a name may also have one label
//! only, underscores (Windows host names), a trailing dot, or be a bare IP address; what is
//! refused cannot be a host name at all (`user@host`, `<x>`, `a..b`, `-a.b`, `[junk]`).

use std::net::IpAddr;

/// RFC 5321 §4.1.2: `sub-domain = Let-dig [Ldh-str]`, at most 63 octets (RFC 1035 §2.3.4);
/// `_` and non-ASCII letters (U-labels, RFC 6531) are let through.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

/// RFC 5321 §4.1.3 address literals: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
fn address_literal(arg: &str) -> Option<IpAddr> {
    let inner = arg.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..]
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6),
        _ => inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// The address a HELO argument names, if it is an address (literal or bare).
fn helo_address(arg: &str) -> Option<IpAddr> {
    address_literal(arg).or_else(|| arg.parse().ok())
}

/// Whether a HELO/EHLO argument could name a host (see the module comment).
pub fn valid_helo(arg: &str) -> bool {
    if helo_address(arg).is_some() {
        return true;
    }
    let name = arg.strip_suffix('.').unwrap_or(arg);
    !name.is_empty() && name.len() <= 253 && name.split('.').all(valid_label)
}

/// Whether a client's HELO names this server: our hostname, or the address it connected to.
/// Only a forger says so (the client is not us: it is not on a trusted network).
pub fn claims_to_be_us(arg: &str, hostname: &str, local: IpAddr) -> bool {
    let name = arg.strip_suffix('.').unwrap_or(arg);
    if name.eq_ignore_ascii_case(hostname.trim_end_matches('.')) {
        return true;
    }
    helo_address(arg).is_some_and(|ip| ip.to_canonical() == local.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_syntax() {
        for ok in [
            "mail.example.com",
            "mail.example.com.",
            "localhost",
            "WIN_PC-7",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "192.0.2.1",
            "münchen.example",
            "a1.b2",
        ] {
            assert!(valid_helo(ok), "{ok}");
        }
        for bad in [
            "user@example.com",
            "<mail.example.com>",
            "a..b",
            "-a.example",
            "a-.example",
            "[999.1.1.1]",
            "[junk]",
            "[IPv6:zz]",
            ".",
            "a/b",
            "\"quoted\"",
        ] {
            assert!(!valid_helo(bad), "{bad}");
        }
        assert!(!valid_helo(&format!("{}.example", "a".repeat(64))));
    }

    #[test]
    fn our_names() {
        let local: IpAddr = "192.0.2.25".parse().unwrap();
        assert!(claims_to_be_us("MX.example.com", "mx.example.com", local));
        assert!(claims_to_be_us("mx.example.com.", "mx.example.com", local));
        assert!(claims_to_be_us("[192.0.2.25]", "mx.example.com", local));
        assert!(claims_to_be_us("192.0.2.25", "mx.example.com", local));
        assert!(!claims_to_be_us(
            "client.example.net",
            "mx.example.com",
            local
        ));
        assert!(!claims_to_be_us("[192.0.2.26]", "mx.example.com", local));
    }
}
