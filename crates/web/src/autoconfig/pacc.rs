//! The IETF draft-ietf-mailmaint-pacc-02 configuration document, served at
//! `https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json` and vouched
//! for by a `_ua-auto-config.<domain>` TXT record holding its SHA-256 (`v=UAAC1; a=sha256;
//! d=…`), which `yubin dns-records` prints from the same function.
//!
//! The draft's text protocols carry only a `host`: clients connect with TLS from the first
//! byte on the standard ports (993, 995, 465). So a protocol is listed only when its
//! implicit-TLS listener is configured; a listener on another port cannot be expressed.
//! The document names no user, so it is the same for every address of the domain (the
//! digest in DNS must match it byte for byte).

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::MailPorts;

/// The document for `domain` served by `host`, compact JSON in a fixed member order.
pub fn render(domain: &str, host: &str, ports: &MailPorts) -> String {
    let mut protocols = serde_json::Map::new();
    for (name, port) in [
        ("imap", ports.imaps),
        ("pop3", ports.pop3s),
        ("smtp", ports.submissions),
    ] {
        if port.is_some() {
            protocols.insert(name.into(), serde_json::json!({ "host": host }));
        }
    }
    // serde_json's map keeps insertion order only with `preserve_order`; without it the keys
    // are sorted, which is as deterministic.
    serde_json::json!({
        "protocols": protocols,
        "authentication": { "password": true },
        "info": { "provider": { "name": domain } },
    })
    .to_string()
}

/// The `_ua-auto-config` TXT record for `document` (draft-ietf-mailmaint-pacc-02 §4).
pub fn digest_record(document: &str) -> String {
    let d = Sha256::digest(document.as_bytes());
    format!(
        "v=UAAC1; a=sha256; d={}",
        base64::engine::general_purpose::STANDARD.encode(d)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::all_ports;

    #[test]
    fn lists_the_implicit_tls_services() {
        let doc = render("example.com", "mail.example.com", &all_ports());
        let j: serde_json::Value = serde_json::from_str(&doc).unwrap();
        for p in ["imap", "pop3", "smtp"] {
            assert_eq!(j["protocols"][p]["host"], "mail.example.com");
        }
        assert_eq!(j["authentication"]["password"], true);
        assert_eq!(j["info"]["provider"]["name"], "example.com");
        let only_starttls = MailPorts {
            imap: Some(143),
            submissions: Some(465),
            ..MailPorts::default()
        };
        let j: serde_json::Value =
            serde_json::from_str(&render("example.com", "h", &only_starttls)).unwrap();
        assert_eq!(j["protocols"].as_object().unwrap().len(), 1);
        assert_eq!(j["protocols"]["smtp"]["host"], "h");
    }

    #[test]
    fn digest_is_of_the_exact_bytes() {
        let doc = render("example.com", "mail.example.com", &all_ports());
        assert_eq!(doc, render("example.com", "mail.example.com", &all_ports()));
        let r = digest_record(&doc);
        assert!(r.starts_with("v=UAAC1; a=sha256; d="));
        assert_eq!(r.len(), "v=UAAC1; a=sha256; d=".len() + 44);
        assert_ne!(r, digest_record(&format!("{doc} ")));
        // SHA-256 of nothing, as `openssl dgst -sha256 -binary | base64` prints it.
        assert_eq!(
            digest_record(""),
            "v=UAAC1; a=sha256; d=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
