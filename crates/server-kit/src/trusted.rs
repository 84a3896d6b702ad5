//! `[limits] trusted_networks`: the client networks exempt from connection and rate limits,
//! bans, greylisting, blocklists and early-talker checks (as Postfix exempts `mynetworks`).
//!
//! One list, parsed once, asked by every protocol through [`TrustedNetworks::contains`]. The
//! default is loopback only (`127.0.0.0/8`, `::1/128`), so local scripts and webmail are never
//! throttled; an empty list applies every defence to every client, loopback included.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`); a bare address is a /32
/// (IPv4) or /128 (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?}: expected an address or address/prefix, e.g. 192.0.2.0/24")]
pub struct NetworkError(String);

/// The address as IPv4 when it is an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`), so that a
/// dual-stack socket's peers match IPv4 networks.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl Network {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (a, width) = bits(self.addr);
        let (b, _) = bits(ip);
        if self.prefix == 0 {
            return true;
        }
        let shift = u32::from(width - self.prefix);
        (a >> shift) == (b >> shift)
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Network, NetworkError> {
        let err = || NetworkError(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| err())?);
        let width = bits(addr).1;
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= width)
                .ok_or_else(err)?,
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The trusted client networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedNetworks(Vec<Network>);

/// The default of `[limits] trusted_networks`.
pub const DEFAULT_TRUSTED_NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

impl TrustedNetworks {
    /// Parses a list such as `["127.0.0.0/8", "::1/128"]`; the first bad entry is the error.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<TrustedNetworks, NetworkError> {
        list.iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(TrustedNetworks)
    }

    /// No trusted network: every defence applies to every client.
    pub fn none() -> TrustedNetworks {
        TrustedNetworks(Vec::new())
    }

    /// Whether a client at `ip` is exempt from the defences.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    pub fn networks(&self) -> &[Network] {
        &self.0
    }
}

impl Default for TrustedNetworks {
    /// Loopback only.
    fn default() -> TrustedNetworks {
        TrustedNetworks::parse(&DEFAULT_TRUSTED_NETWORKS).unwrap_or_else(|_| Self::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_is_loopback() {
        let t = TrustedNetworks::default();
        assert!(t.contains(ip("127.0.0.1")));
        assert!(t.contains(ip("127.1.2.3")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("::ffff:127.0.0.1")));
        assert!(!t.contains(ip("192.0.2.1")));
        assert!(!t.contains(ip("::2")));
        assert!(!TrustedNetworks::none().contains(ip("127.0.0.1")));
    }

    #[test]
    fn prefixes() {
        let t = TrustedNetworks::parse(&["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]).unwrap();
        assert!(t.contains(ip("192.0.2.255")));
        assert!(!t.contains(ip("192.0.3.0")));
        assert!(t.contains(ip("2001:db8:ffff::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        assert!(t.contains(ip("198.51.100.7")));
        assert!(!t.contains(ip("198.51.100.8")));
        let all = TrustedNetworks::parse(&["0.0.0.0/0"]).unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("2001:db8::1")));
        assert_eq!(
            "::ffff:192.0.2.0/24"
                .parse::<Network>()
                .unwrap()
                .to_string(),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "",
            "192.0.2.0/33",
            "::/129",
            "example.com",
            "192.0.2.0/x",
            "1.2.3/8",
        ] {
            assert!(TrustedNetworks::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
