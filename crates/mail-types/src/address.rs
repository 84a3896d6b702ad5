//! Mail addresses and domains in their canonical (lookup) form.
//!
//! yubin matches addresses case-insensitively in the domain (RFC 5321 §2.4: domain names are
//! case-insensitive) and, by default, in the local part too. RFC 5321 §2.4 says local parts
//! MAY be case-sensitive, but every mainstream server folds them, and users expect
//! `Alice@Example.com` to reach `alice@example.com`.

use std::fmt;

/// Why a string is not an acceptable address or domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address has no '@'")]
    MissingAt,
    #[error("empty local part")]
    EmptyLocalPart,
    #[error("local part longer than 64 octets (RFC 5321 §4.5.3.1.1)")]
    LocalPartTooLong,
    #[error("invalid domain: {0}")]
    InvalidDomain(String),
    #[error("address contains a forbidden character")]
    ForbiddenCharacter,
}

/// A domain name, lower-cased, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses and canonicalises a domain name (RFC 5321 §4.1.2 `Domain`, RFC 6531 `U-label`s allowed).
    pub fn parse(s: &str) -> Result<Domain, AddressError> {
        let s = s.strip_suffix('.').unwrap_or(s);
        let bad = || AddressError::InvalidDomain(s.to_string());
        if s.is_empty() || s.len() > 255 {
            return Err(bad());
        }
        for label in s.split('.') {
            // RFC 1035 §2.3.4: labels are 1..=63 octets.
            if label.is_empty() || label.len() > 63 {
                return Err(bad());
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad());
            }
            let ok = label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_control())
            });
            if !ok {
                return Err(bad());
            }
        }
        Ok(Domain(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox address `local@domain` in canonical form: domain lower-cased, local part
/// lower-cased (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: Domain,
}

impl Address {
    /// Parses `local@domain`. The local part may be a dot-string or a quoted-string
    /// (RFC 5321 §4.1.2); quoted strings are kept with their quotes. Control characters,
    /// spaces outside quotes, angle brackets and path separators are refused.
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        let at = s.rfind('@').ok_or(AddressError::MissingAt)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if local.len() > 64 {
            return Err(AddressError::LocalPartTooLong);
        }
        let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
        let forbidden = |c: char| {
            c.is_control()
                || c == '<'
                || c == '>'
                || c == '/'
                || c == '\\'
                || (!quoted && (c == ' ' || c == '"'))
        };
        if local.chars().any(forbidden) {
            return Err(AddressError::ForbiddenCharacter);
        }
        Ok(Address {
            local: local.to_lowercase(),
            domain: Domain::parse(domain)?,
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case() {
        let a = Address::parse("Alice@Example.COM").unwrap();
        assert_eq!(a.to_string(), "alice@example.com");
        assert_eq!(a.domain().as_str(), "example.com");
    }

    #[test]
    fn refuses_bad_addresses() {
        assert_eq!(Address::parse("alice"), Err(AddressError::MissingAt));
        assert_eq!(
            Address::parse("@example.com"),
            Err(AddressError::EmptyLocalPart)
        );
        assert!(Address::parse("a@-bad.com").is_err());
        assert!(Address::parse("a@bad..com").is_err());
        assert!(Address::parse("a b@example.com").is_err());
        assert!(Address::parse("../x@example.com").is_err());
        assert!(Address::parse(&format!("{}@example.com", "x".repeat(65))).is_err());
    }

    #[test]
    fn accepts_utf8_and_quoted() {
        assert!(Address::parse("θσερ@παράδειγμα.δοκιμή").is_ok());
        assert!(Address::parse("\"john doe\"@example.com").is_ok());
        assert_eq!(
            Domain::parse("Example.com.").unwrap().as_str(),
            "example.com"
        );
    }
}
