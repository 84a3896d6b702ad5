//! The MIME paths of FETCH and SEARCH on one message, without a session or a store, for the
//! fuzzing crate (`crates/fuzzing`, `fuzz/`): hostile MIME must give empty sections or a
//! plain structure, never a panic. Not an API: nothing else may call it.

use imap_proto::{Part, Section};

use crate::cmd::fetch_binary;
use crate::mime::{self, Mime};
use crate::search::Content;

/// What the FETCH and SEARCH paths made of one message.
pub struct MimeOutcome {
    /// The cached facts: the header, ENVELOPE, BODY and BODYSTRUCTURE in wire form, as
    /// `FETCH ENVELOPE BODYSTRUCTURE` sends them (RFC 9051 §7.5.2).
    pub header: Vec<u8>,
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub bodystructure: Vec<u8>,
    /// `BODY[section]` for each requested section (RFC 9051 §6.4.5), `None` when absent.
    pub sections: Vec<Option<Vec<u8>>>,
    /// The message's own sections (empty part path) through `mime::section`, the path
    /// URLFETCH and CATENATE take without the part tree; `None` for parts.
    pub shortcut: Vec<Option<Option<Vec<u8>>>>,
    /// `BINARY[part]` (RFC 3516 §4.2) for each section's part: `Err(())` for UNKNOWN-CTE.
    pub binary: Vec<Result<Option<Vec<u8>>, ()>>,
    /// The message as a client without BINARY gets it (binary parts base64-encoded).
    pub as_base64: Vec<u8>,
    /// SEARCH TEXT / BODY / SUBJECT / HEADER FROM with `needle`.
    pub search: [bool; 4],
}

/// Runs FETCH's and SEARCH's MIME code on `raw`: BODYSTRUCTURE, ENVELOPE, the given body
/// sections (by part path and through the message-level shortcut), BINARY of each part, the
/// binary-to-base64 downgrade, and the text search keys.
#[doc(hidden)]
pub fn mime_paths(raw: &[u8], sections: &[Section], needle: &[u8]) -> MimeOutcome {
    let facts = crate::facts::compute(raw);
    let parsed = Mime::parse(raw);
    let mut out_sections = Vec::with_capacity(sections.len());
    let mut binary = Vec::with_capacity(sections.len());
    let mut shortcut = Vec::with_capacity(sections.len());
    for s in sections {
        let got = parsed.section(s);
        // The message-level shortcut for the message's own sections (for a part it parses
        // the tree again, as above).
        shortcut.push(s.part.0.is_empty().then(|| mime::section(raw, s)));
        out_sections.push(got);
        let part = Part(s.part.0.clone());
        binary.push(fetch_binary::binary(Some(raw), Some(&parsed), &part).map_err(|_| ()));
    }
    let as_base64 = mime::binary_to_base64(raw.to_vec());
    let content = Content::parse(raw);
    let search = [
        content.text(needle),
        content.body(needle),
        content.subject(needle),
        content.address_header("From", needle),
    ];
    let _ = content.sent_day();
    MimeOutcome {
        header: facts.header,
        envelope: facts.envelope,
        body: facts.body,
        bodystructure: facts.bodystructure,
        sections: out_sections,
        shortcut,
        binary,
        as_base64,
        search,
    }
}
