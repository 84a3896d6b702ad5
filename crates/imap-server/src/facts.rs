//! What FETCH needs of a message beyond its flags, parsed once and kept by the store
//! ([`store::MessageFacts`], cached per blob like Dovecot's index cache): the header section,
//! and ENVELOPE, BODY and BODYSTRUCTURE in their wire forms for sessions with and without
//! UTF-8. Clients list mailboxes with exactly these items (ENVELOPE, BODYSTRUCTURE,
//! `BODY.PEEK[HEADER.FIELDS (...)]`), so after the first FETCH of a message they cost neither
//! a file read nor a MIME parse.
//!
//! [`VERSION`] names the format: bump it whenever what [`compute`] produces changes (a fix in
//! ENVELOPE or BODYSTRUCTURE), and older cache entries are computed again on their next use.

use imap_proto::{write_body_structure, write_envelope};
use store::{BlobId, MessageFacts};

use crate::downgrade;
use crate::mime::{self, Mime};

/// The format of the facts this code computes (see the module docs).
pub(crate) const VERSION: u32 = 2;

/// Parses `raw` (once) into its facts: its header, and ENVELOPE, BODY and BODYSTRUCTURE in
/// their wire forms.
pub(crate) fn compute(raw: &[u8]) -> MessageFacts {
    let header = mime::header_of(raw);
    let env = mime::envelope_of(header);
    let mut env_ascii = env.clone();
    downgrade::envelope(&mut env_ascii);
    let (envelope, envelope_utf8) = both(
        |out| write_envelope(out, &env_ascii, false),
        |out| write_envelope(out, &env, true),
    );
    let mut facts = MessageFacts {
        version: VERSION,
        header: header.to_vec(),
        envelope,
        envelope_utf8,
        ..MessageFacts::default()
    };
    let parsed = Mime::parse(raw);
    for extended in [false, true] {
        let bs = parsed.body_structure(extended);
        let mut bs_ascii = bs.clone();
        downgrade::body_structure(&mut bs_ascii);
        let pair = both(
            |out| write_body_structure(out, &bs_ascii, extended, false),
            |out| write_body_structure(out, &bs, extended, true),
        );
        if extended {
            (facts.bodystructure, facts.bodystructure_utf8) = pair;
        } else {
            (facts.body, facts.body_utf8) = pair;
        }
    }
    facts
}

/// The form for sessions without UTF-8, and the UTF-8 form only when it differs.
fn both(
    ascii: impl FnOnce(&mut Vec<u8>),
    utf8: impl FnOnce(&mut Vec<u8>),
) -> (Vec<u8>, Option<Vec<u8>>) {
    let (mut a, mut u) = (Vec::new(), Vec::new());
    ascii(&mut a);
    utf8(&mut u);
    let u = (u != a).then_some(u);
    (a, u)
}

/// The header section of `raw` as far as the facts know it (the whole message when it has no
/// body), and the body: `BODY[TEXT]` (RFC 9051 §6.4.5).
pub(crate) fn split<'a>(facts: &MessageFacts, raw: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    raw.split_at(facts.header.len().min(raw.len()))
}

/// Writes computed facts back to the store's cache without waiting for it: the answer does
/// not depend on it, and a lost write only means parsing again next time.
pub(crate) fn cache(ctx: &crate::ctx::Ctx, computed: Vec<(BlobId, MessageFacts)>) {
    if computed.is_empty() {
        return;
    }
    let store = std::sync::Arc::clone(&ctx.server.store);
    tokio::spawn(async move {
        if let Err(e) = store.put_message_facts(computed).await {
            tracing::debug!(error = %e, "imap: caching message facts failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_simple_message() {
        let raw = b"From: Bob <bob@example.net>\r\nSubject: hi\r\n\r\nbody\r\n";
        let f = compute(raw);
        assert_eq!(f.version, VERSION);
        assert_eq!(
            f.header,
            b"From: Bob <bob@example.net>\r\nSubject: hi\r\n\r\n"
        );
        assert_eq!(split(&f, raw).1, b"body\r\n");
        assert_eq!(
            String::from_utf8(f.envelope).unwrap(),
            "(NIL \"hi\" ((\"Bob\" NIL \"bob\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.net\")) NIL NIL NIL NIL NIL)"
        );
        assert_eq!(f.envelope_utf8, None, "ASCII: one form");
        assert_eq!(
            String::from_utf8(f.body).unwrap(),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 6 1)"
        );
        assert!(f.bodystructure.ends_with(b" NIL NIL NIL NIL)"));
    }

    #[test]
    fn utf8_forms_only_when_they_differ() {
        let raw = "Subject: =?utf-8?q?caf=C3=A9?=\r\nFrom: =?utf-8?q?Zo=C3=AB?= <z@example.org>\r\n\r\nx\r\n";
        let f = compute(raw.as_bytes());
        let ascii = String::from_utf8(f.envelope).unwrap();
        assert!(ascii.contains("=?utf-8?q?caf=C3=A9?="), "{ascii}");
        let utf8 = String::from_utf8(f.envelope_utf8.unwrap()).unwrap();
        assert!(utf8.contains("Zo\u{eb}"), "{utf8}");
    }

    #[test]
    fn unparseable_input_still_has_facts() {
        let f = compute(b"");
        assert!(
            f.envelope.starts_with(b"(NIL NIL NIL"),
            "{:?}",
            String::from_utf8_lossy(&f.envelope)
        );
        assert!(f.body.starts_with(b"(\"TEXT\" \"PLAIN\""));
    }
}
