//! Thunderbird's autoconfig file, `clientConfig` version 1.1 (the format Mozilla documents at
//! wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat, being standardised as
//! draft-ietf-mailmaint-autoconfig). Thunderbird, Thunderbird for Android (K-9), Evolution,
//! Geary and GNOME Online Accounts read it.

use crate::MailPorts;
use crate::autoconfig::{Endpoint, Security};
use crate::xml::escape;

/// What Thunderbird replaces with the address the user typed (draft-ietf-mailmaint-autoconfig
/// §4.4, placeholders). Used when the request carries no `emailaddress`: Thunderbird for
/// Android and Geary fetch the file without it, and must get a usable file, not an error.
pub const ADDRESS_PLACEHOLDER: &str = "%EMAILADDRESS%";

/// The file for `domain`, served by `host`; `address` is the user's (already validated), or
/// `None` for the placeholder.
pub fn render(domain: &str, host: &str, ports: &MailPorts, address: Option<&str>) -> String {
    let user = escape(address.unwrap_or(ADDRESS_PLACEHOLDER));
    let (d, h) = (escape(domain), escape(host));
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<clientConfig version=\"1.1\">\n");
    x.push_str(&format!("  <emailProvider id=\"{d}\">\n"));
    x.push_str(&format!("    <domain>{d}</domain>\n"));
    x.push_str(&format!("    <displayName>{d} mail</displayName>\n"));
    x.push_str(&format!("    <displayShortName>{d}</displayShortName>\n"));
    let server = |x: &mut String, element: &str, kind: &str, e: &Endpoint| {
        let socket = match e.security {
            Security::Implicit => "SSL",
            Security::StartTls => "STARTTLS",
        };
        x.push_str(&format!(
            "    <{element} type=\"{kind}\">\n\
             \x20     <hostname>{h}</hostname>\n\
             \x20     <port>{}</port>\n\
             \x20     <socketType>{socket}</socketType>\n\
             \x20     <authentication>password-cleartext</authentication>\n\
             \x20     <username>{user}</username>\n\
             \x20   </{element}>\n",
            e.port
        ));
    };
    for e in ports.imap_endpoints() {
        server(&mut x, "incomingServer", "imap", &e);
    }
    for e in ports.pop3_endpoints() {
        server(&mut x, "incomingServer", "pop3", &e);
    }
    for e in ports.smtp_endpoints() {
        server(&mut x, "outgoingServer", "smtp", &e);
    }
    x.push_str("  </emailProvider>\n</clientConfig>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::all_ports;

    #[test]
    fn lists_each_server_in_order_with_the_address() {
        let x = render(
            "example.com",
            "mail.example.com",
            &all_ports(),
            Some("alice@example.com"),
        );
        assert!(x.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">"
        ));
        let order: Vec<usize> = [
            "<incomingServer type=\"imap\">\n      <hostname>mail.example.com</hostname>\n      <port>993</port>\n      <socketType>SSL</socketType>",
            "<port>143</port>\n      <socketType>STARTTLS</socketType>",
            "<incomingServer type=\"pop3\">\n      <hostname>mail.example.com</hostname>\n      <port>995</port>",
            "<port>110</port>\n      <socketType>STARTTLS</socketType>",
            "<outgoingServer type=\"smtp\">\n      <hostname>mail.example.com</hostname>\n      <port>465</port>\n      <socketType>SSL</socketType>",
            "<port>587</port>\n      <socketType>STARTTLS</socketType>",
        ]
        .iter()
        .map(|s| x.find(s).unwrap_or_else(|| panic!("{s} missing in\n{x}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{x}");
        assert_eq!(
            x.matches("<username>alice@example.com</username>").count(),
            6
        );
        assert_eq!(x.matches("password-cleartext").count(), 6);
    }

    #[test]
    fn without_an_address_the_placeholder_and_hostile_input_is_escaped() {
        let x = render("example.com", "mail.example.com", &all_ports(), None);
        assert!(x.contains("<username>%EMAILADDRESS%</username>"));
        let x = render(
            "example.com",
            "h",
            &all_ports(),
            Some("\"a&b\"@example.com"),
        );
        assert!(
            x.contains("<username>&quot;a&amp;b&quot;@example.com</username>"),
            "{x}"
        );
        let none = render("example.com", "h", &MailPorts::default(), None);
        assert!(!none.contains("Server"));
    }
}
