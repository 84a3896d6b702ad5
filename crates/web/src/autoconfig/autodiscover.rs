//! Outlook Autodiscover: v1 "POX" ([MS-OXDSCLI] §2.2.3, the request and the
//! `outlook/responseschema/2006a` response) and v2, the JSON indirection Outlook 2016 and
//! later ask first ([MS-OXDISCO]: `autodiscover.json?Protocol=AutodiscoverV1` answers where
//! the v1 service is).

use crate::MailPorts;
use crate::autoconfig::{Endpoint, Security};
use crate::xml::escape;

/// The namespace of a v1 response envelope ([MS-OXDSCLI] §2.2.4).
pub const RESPONSE_NS: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
/// The namespace of the "outlook" response, the one with POP3/IMAP/SMTP settings
/// ([MS-OXDSCLI] §2.2.4.1).
pub const OUTLOOK_NS: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// The v1 response: one `Protocol` per protocol (Outlook takes the first of each type), the
/// preferred endpoint of each; `address` as LoginName when the request named one.
pub fn render_v1(host: &str, ports: &MailPorts, address: Option<&str>) -> String {
    let h = escape(host);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str(&format!("<Autodiscover xmlns=\"{RESPONSE_NS}\">\n"));
    x.push_str(&format!("  <Response xmlns=\"{OUTLOOK_NS}\">\n"));
    x.push_str("    <Account>\n");
    x.push_str("      <AccountType>email</AccountType>\n");
    x.push_str("      <Action>settings</Action>\n");
    let login = address
        .map(|a| format!("        <LoginName>{}</LoginName>\n", escape(a)))
        .unwrap_or_default();
    for (kind, e) in [
        ("IMAP", ports.imap_endpoints().first().copied()),
        ("POP3", ports.pop3_endpoints().first().copied()),
        ("SMTP", ports.smtp_endpoints().first().copied()),
    ] {
        let Some(Endpoint { port, security }) = e else {
            continue;
        };
        // [MS-OXDSCLI] §2.2.4.1.1.2.6.x: Encryption, when present, overrides SSL: "TLS" is
        // STARTTLS, "SSL" is TLS from the first byte.
        let encryption = match security {
            Security::Implicit => "SSL",
            Security::StartTls => "TLS",
        };
        x.push_str(&format!(
            "      <Protocol>\n\
             \x20       <Type>{kind}</Type>\n\
             \x20       <Server>{h}</Server>\n\
             \x20       <Port>{port}</Port>\n\
             \x20       <DomainRequired>off</DomainRequired>\n\
             {login}\
             \x20       <SPA>off</SPA>\n\
             \x20       <SSL>on</SSL>\n\
             \x20       <Encryption>{encryption}</Encryption>\n\
             \x20       <AuthRequired>on</AuthRequired>\n\
             \x20     </Protocol>\n"
        ));
    }
    x.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    x
}

/// The v2 answer for `Protocol=AutodiscoverV1`: where the v1 service is.
pub fn render_v2(v1_url: &str) -> String {
    serde_json::json!({ "Protocol": "AutodiscoverV1", "Url": v1_url }).to_string()
}

/// The v2 answer for another protocol (Exchange answers 400 with this shape).
pub fn render_v2_error(protocol: &str) -> String {
    serde_json::json!({
        "ErrorCode": "InvalidProtocol",
        "ErrorMessage": format!("The given protocol value '{protocol}' is invalid. Supported values are 'AutodiscoverV1'"),
    })
    .to_string()
}

/// The URL of the v1 service on `host` (the port only when it is not 443).
pub fn v1_url(host: &str, https_port: u16) -> String {
    match https_port {
        443 => format!("https://{host}/autodiscover/autodiscover.xml"),
        p => format!("https://{host}:{p}/autodiscover/autodiscover.xml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::all_ports;

    #[test]
    fn v1_names_one_endpoint_per_protocol() {
        let x = render_v1("mail.example.com", &all_ports(), Some("a&b@example.com"));
        assert!(x.contains(&format!("<Response xmlns=\"{OUTLOOK_NS}\">")));
        assert_eq!(x.matches("<Protocol>").count(), 3);
        assert!(x.contains(
            "<Type>IMAP</Type>\n        <Server>mail.example.com</Server>\n        <Port>993</Port>"
        ));
        assert!(x.contains(
            "<Type>POP3</Type>\n        <Server>mail.example.com</Server>\n        <Port>995</Port>"
        ));
        assert!(x.contains(
            "<Type>SMTP</Type>\n        <Server>mail.example.com</Server>\n        <Port>465</Port>"
        ));
        assert_eq!(
            x.matches("<LoginName>a&amp;b@example.com</LoginName>")
                .count(),
            3
        );
        assert_eq!(x.matches("<Encryption>SSL</Encryption>").count(), 3);
    }

    #[test]
    fn v1_with_starttls_only_and_without_address() {
        let p = MailPorts {
            imap: Some(143),
            submission: Some(587),
            ..MailPorts::default()
        };
        let x = render_v1("h.test", &p, None);
        assert!(!x.contains("LoginName"));
        assert!(!x.contains("POP3"));
        assert!(x.contains("<Port>587</Port>"));
        assert_eq!(x.matches("<Encryption>TLS</Encryption>").count(), 2);
    }

    #[test]
    fn v2_points_at_v1() {
        let j: serde_json::Value =
            serde_json::from_str(&render_v2(&v1_url("mail.example.com", 443))).unwrap();
        assert_eq!(j["Protocol"], "AutodiscoverV1");
        assert_eq!(
            j["Url"],
            "https://mail.example.com/autodiscover/autodiscover.xml"
        );
        assert_eq!(
            v1_url("h", 8443),
            "https://h:8443/autodiscover/autodiscover.xml"
        );
        let e: serde_json::Value = serde_json::from_str(&render_v2_error("Ews\"x")).unwrap();
        assert_eq!(e["ErrorCode"], "InvalidProtocol");
    }
}
