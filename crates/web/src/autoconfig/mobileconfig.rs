//! Apple configuration profiles (Apple's "Configuration Profile Reference": a property list
//! with a `com.apple.mail.managed` payload). iOS and macOS install the account from it after
//! the user enters the password.
//!
//! The profile and payload identifiers and UUIDs derive from the domain and the address, so a
//! profile downloaded again replaces the installed one instead of adding a second account.
//! The router signs the profile with the served certificate ([`super::profile_signing`]).

use crate::MailPorts;
use crate::autoconfig::{Endpoint, Security, stable_uuid};
use crate::xml::escape;

/// The MIME type Safari hands to the profile installer.
pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// The profile for `address` (validated) of `domain`, served by `host`; `None` when neither
/// IMAP nor POP3 is configured (a mail account needs an incoming server).
pub fn render(domain: &str, host: &str, ports: &MailPorts, address: &str) -> Option<String> {
    let (account_type, incoming) = match ports.imap_endpoints().first() {
        Some(e) => ("EmailTypeIMAP", *e),
        None => ("EmailTypePOP", *ports.pop3_endpoints().first()?),
    };
    let outgoing = ports.smtp_endpoints().first().copied();
    let (a, d, h) = (escape(address), escape(domain), escape(host));
    // Reverse-DNS identifiers (the reference asks for them); the address hashed, since a
    // local part may hold characters an identifier should not.
    let reversed: Vec<&str> = domain.rsplit('.').collect();
    let base = escape(&format!(
        "{}.yubin.mail.{}",
        reversed.join("."),
        &stable_uuid(&[domain, address])[..8].to_ascii_lowercase()
    ));
    let profile_uuid = stable_uuid(&["profile", domain, address]);
    let payload_uuid = stable_uuid(&["mail", domain, address]);
    let ssl = |e: &Endpoint| match e.security {
        Security::Implicit => "<true/>",
        // Apple mail uses STARTTLS when the server offers it.
        Security::StartTls => "<false/>",
    };
    let mut p = String::new();
    p.push_str(&format!(
        "      <dict>\n\
         \x20       <key>EmailAccountDescription</key><string>{a}</string>\n\
         \x20       <key>EmailAccountName</key><string>{a}</string>\n\
         \x20       <key>EmailAccountType</key><string>{account_type}</string>\n\
         \x20       <key>EmailAddress</key><string>{a}</string>\n\
         \x20       <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
         \x20       <key>IncomingMailServerHostName</key><string>{h}</string>\n\
         \x20       <key>IncomingMailServerPortNumber</key><integer>{}</integer>\n\
         \x20       <key>IncomingMailServerUseSSL</key>{}\n\
         \x20       <key>IncomingMailServerUsername</key><string>{a}</string>\n",
        incoming.port,
        ssl(&incoming)
    ));
    if let Some(out) = outgoing {
        p.push_str(&format!(
            "        <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
             \x20       <key>OutgoingMailServerHostName</key><string>{h}</string>\n\
             \x20       <key>OutgoingMailServerPortNumber</key><integer>{}</integer>\n\
             \x20       <key>OutgoingMailServerUseSSL</key>{}\n\
             \x20       <key>OutgoingMailServerUsername</key><string>{a}</string>\n\
             \x20       <key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n",
            out.port,
            ssl(&out)
        ));
    }
    p.push_str(&format!(
        "        <key>PayloadDescription</key><string>The mail account {a}</string>\n\
         \x20       <key>PayloadDisplayName</key><string>{a}</string>\n\
         \x20       <key>PayloadIdentifier</key><string>{base}.account</string>\n\
         \x20       <key>PayloadType</key><string>com.apple.mail.managed</string>\n\
         \x20       <key>PayloadUUID</key><string>{payload_uuid}</string>\n\
         \x20       <key>PayloadVersion</key><integer>1</integer>\n\
         \x20       <key>PreventAppSheet</key><false/>\n\
         \x20       <key>PreventMove</key><false/>\n\
         \x20       <key>SMIMEEnabled</key><false/>\n\
         \x20     </dict>\n"
    ));
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n\
         \x20 <dict>\n\
         \x20   <key>PayloadContent</key>\n\
         \x20   <array>\n\
         {p}\
         \x20   </array>\n\
         \x20   <key>PayloadDescription</key><string>Sets up the mail account {a} on {h}</string>\n\
         \x20   <key>PayloadDisplayName</key><string>{d} mail</string>\n\
         \x20   <key>PayloadIdentifier</key><string>{base}</string>\n\
         \x20   <key>PayloadOrganization</key><string>{d}</string>\n\
         \x20   <key>PayloadRemovalDisallowed</key><false/>\n\
         \x20   <key>PayloadType</key><string>Configuration</string>\n\
         \x20   <key>PayloadUUID</key><string>{profile_uuid}</string>\n\
         \x20   <key>PayloadVersion</key><integer>1</integer>\n\
         \x20 </dict>\n\
         </plist>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoconfig::all_ports;

    #[test]
    fn imap_and_smtp_over_tls_with_stable_identifiers() {
        let x = render(
            "example.com",
            "mail.example.com",
            &all_ports(),
            "alice@example.com",
        )
        .unwrap();
        for line in [
            "<key>EmailAccountType</key><string>EmailTypeIMAP</string>",
            "<key>IncomingMailServerHostName</key><string>mail.example.com</string>",
            "<key>IncomingMailServerPortNumber</key><integer>993</integer>",
            "<key>IncomingMailServerUseSSL</key><true/>",
            "<key>IncomingMailServerUsername</key><string>alice@example.com</string>",
            "<key>OutgoingMailServerPortNumber</key><integer>465</integer>",
            "<key>OutgoingMailServerUseSSL</key><true/>",
            "<key>OutgoingMailServerUsername</key><string>alice@example.com</string>",
            "<key>PayloadType</key><string>com.apple.mail.managed</string>",
            "<key>PayloadType</key><string>Configuration</string>",
        ] {
            assert!(x.contains(line), "{line} missing in\n{x}");
        }
        assert_eq!(
            x,
            render(
                "example.com",
                "mail.example.com",
                &all_ports(),
                "alice@example.com"
            )
            .unwrap()
        );
        let bob = render(
            "example.com",
            "mail.example.com",
            &all_ports(),
            "bob@example.com",
        )
        .unwrap();
        assert!(!bob.contains(&stable_uuid(&[
            "profile",
            "example.com",
            "alice@example.com"
        ])));
        assert!(x.contains("<string>com.example.yubin.mail."));
    }

    #[test]
    fn falls_back_to_pop3_and_starttls_and_escapes() {
        let p = MailPorts {
            pop3: Some(110),
            submission: Some(587),
            ..MailPorts::default()
        };
        let x = render("example.com", "h", &p, "a&b@example.com").unwrap();
        assert!(x.contains("<string>EmailTypePOP</string>"));
        assert!(x.contains("<key>IncomingMailServerUseSSL</key><false/>"));
        assert!(x.contains("<string>a&amp;b@example.com</string>"));
        assert!(render("example.com", "h", &MailPorts::default(), "a@example.com").is_none());
    }
}
