//! ENVELOPE — RFC 9051 §7.5.2 (`envelope` in §9), RFC 3501 §7.4.2.
//!
//! The session computes the fields from the message header; this module only writes them.
//! Header values are raw (not MIME-decoded): RFC 9051 §7.5.2 says the fields are the header
//! text, so they are bytes here.

use super::string::write_nstring;

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"` — RFC 9051 §9.
///
/// A group (RFC 5322 §3.4) is a start marker (`mailbox` = group name, `host` = NIL), its
/// members, and an end marker (all NIL) — see [`Address::group_start`] / [`Address::group_end`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// The display name (`addr-name`).
    pub name: Option<Vec<u8>>,
    /// The source route (`addr-adl`), almost always NIL.
    pub adl: Option<Vec<u8>>,
    /// The local part (`addr-mailbox`).
    pub mailbox: Option<Vec<u8>>,
    /// The domain (`addr-host`).
    pub host: Option<Vec<u8>>,
}

impl Address {
    /// The marker that opens a group: `(NIL NIL "group name" NIL)` — RFC 9051 §7.5.2.
    pub fn group_start(name: impl Into<Vec<u8>>) -> Address {
        Address {
            mailbox: Some(name.into()),
            ..Address::default()
        }
    }

    /// The marker that closes a group: `(NIL NIL NIL NIL)`.
    pub fn group_end() -> Address {
        Address::default()
    }
}

/// The fields of an ENVELOPE, in wire order. An empty address list is written `NIL`.
///
/// RFC 9051 §7.5.2: when `Sender` or `Reply-To` is absent or empty, the server puts the
/// `From` value there — call [`Envelope::fill_defaults`] (or fill them yourself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

impl Envelope {
    /// Copies `from` into an empty `sender` and `reply_to` — RFC 9051 §7.5.2.
    pub fn fill_defaults(&mut self) {
        if self.sender.is_empty() {
            self.sender = self.from.clone();
        }
        if self.reply_to.is_empty() {
            self.reply_to = self.from.clone();
        }
    }
}

/// Writes `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to
/// SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"` — RFC 9051 §9.
pub fn write_envelope(out: &mut Vec<u8>, env: &Envelope, utf8: bool) {
    out.push(b'(');
    write_nstring(out, env.date.as_deref(), utf8);
    out.push(b' ');
    write_nstring(out, env.subject.as_deref(), utf8);
    for list in [
        &env.from,
        &env.sender,
        &env.reply_to,
        &env.to,
        &env.cc,
        &env.bcc,
    ] {
        out.push(b' ');
        write_addresses(out, list, utf8);
    }
    out.push(b' ');
    write_nstring(out, env.in_reply_to.as_deref(), utf8);
    out.push(b' ');
    write_nstring(out, env.message_id.as_deref(), utf8);
    out.push(b')');
}

/// `env-from = "(" 1*address ")" / nil` (and the other address lists) — RFC 9051 §9.
fn write_addresses(out: &mut Vec<u8>, list: &[Address], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring(out, a.name.as_deref(), utf8);
        out.push(b' ');
        write_nstring(out, a.adl.as_deref(), utf8);
        out.push(b' ');
        write_nstring(out, a.mailbox.as_deref(), utf8);
        out.push(b' ');
        write_nstring(out, a.host.as_deref(), utf8);
        out.push(b')');
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: Some(host.as_bytes().to_vec()),
        }
    }

    #[test]
    fn rfc_example() {
        // The ENVELOPE of the RFC 9051 §8 sample exchange.
        let mut env = Envelope {
            date: Some(b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)".to_vec()),
            subject: Some(b"IMAP4rev2 WG mtg summary and minutes".to_vec()),
            from: vec![addr(Some("Terry Gray"), "gray", "cac.washington.edu")],
            to: vec![addr(None, "imap", "cac.washington.edu")],
            cc: vec![
                addr(None, "minutes", "CNRI.Reston.VA.US"),
                addr(Some("John Klensin"), "KLENSIN", "MIT.EDU"),
            ],
            message_id: Some(b"<B27397-0100000@cac.washington.edu>".to_vec()),
            ..Envelope::default()
        };
        env.fill_defaults();
        let mut out = Vec::new();
        write_envelope(&mut out, &env, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((NIL NIL \"imap\" \"cac.washington.edu\")) \
             ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
             NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
        );
    }

    #[test]
    fn groups_and_nil() {
        let env = Envelope {
            to: vec![
                Address::group_start("undisclosed-recipients"),
                Address::group_end(),
            ],
            ..Envelope::default()
        };
        let mut out = Vec::new();
        write_envelope(&mut out, &env, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(NIL NIL NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)"
        );
    }
}
