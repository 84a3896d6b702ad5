//! The autoconfiguration formats, each a pure function from the mail host name, the
//! configured [`MailPorts`] and the user's address to a document. Every user-supplied string
//! goes through [`crate::xml::escape`] (XML) or serde_json (JSON), and the address has been
//! parsed as an address before it gets here.
//!
//! Every format lists what is configured, implicit TLS first (RFC 8314 §3: implicit TLS is
//! preferred over STARTTLS), and never a plain-text port without STARTTLS (yubin has none).

pub mod autodiscover;
pub mod mobileconfig;
pub mod pacc;
pub mod profile_signing;
pub mod thunderbird;

use crate::MailPorts;

/// How a client secures a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (RFC 8314 §3.2, §3.3).
    Implicit,
    /// STARTTLS / STLS on the plain port (RFC 3207, RFC 2595).
    StartTls,
}

/// One port of one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub security: Security,
}

fn endpoints(implicit: Option<u16>, starttls: Option<u16>) -> Vec<Endpoint> {
    let implicit = implicit.map(|port| Endpoint {
        port,
        security: Security::Implicit,
    });
    let starttls = starttls.map(|port| Endpoint {
        port,
        security: Security::StartTls,
    });
    implicit.into_iter().chain(starttls).collect()
}

impl MailPorts {
    /// IMAP endpoints, preferred first.
    pub fn imap_endpoints(&self) -> Vec<Endpoint> {
        endpoints(self.imaps, self.imap)
    }
    /// POP3 endpoints, preferred first.
    pub fn pop3_endpoints(&self) -> Vec<Endpoint> {
        endpoints(self.pop3s, self.pop3)
    }
    /// Submission endpoints, preferred first.
    pub fn smtp_endpoints(&self) -> Vec<Endpoint> {
        endpoints(self.submissions, self.submission)
    }
}

/// A name-based UUID (RFC 9562 §5.5 layout, version 5 bits) from SHA-256 of `parts`: the same
/// inputs always give the same UUID, so a profile downloaded again replaces the installed one.
pub fn stable_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

#[cfg(test)]
pub(crate) fn all_ports() -> MailPorts {
    MailPorts {
        imaps: Some(993),
        imap: Some(143),
        pop3s: Some(995),
        pop3: Some(110),
        submissions: Some(465),
        submission: Some(587),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_tls_comes_first_and_missing_listeners_are_left_out() {
        let p = MailPorts {
            imap: Some(143),
            submissions: Some(465),
            ..MailPorts::default()
        };
        assert_eq!(
            p.imap_endpoints(),
            vec![Endpoint {
                port: 143,
                security: Security::StartTls
            }]
        );
        assert!(p.pop3_endpoints().is_empty());
        assert_eq!(all_ports().smtp_endpoints()[0].port, 465);
        assert_eq!(all_ports().smtp_endpoints()[1].security, Security::StartTls);
    }

    #[test]
    fn uuids_are_stable_and_distinct() {
        let a = stable_uuid(&["example.com", "alice@example.com"]);
        assert_eq!(a, stable_uuid(&["example.com", "alice@example.com"]));
        assert_ne!(a, stable_uuid(&["example.com", "bob@example.com"]));
        assert_ne!(a, stable_uuid(&["example.coma", "lice@example.com"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5");
    }
}
