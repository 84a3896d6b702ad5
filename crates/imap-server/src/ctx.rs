//! What a command handler works with besides the connection: the server, facts about the
//! session (what the client enabled, the keywords it was told of) and the response sink.
//! Handlers queue responses here; the session (`session.rs`) sends them.

use std::sync::Arc;

use imap_proto::{Code, EncodeOptions, Response, Status};
use server_kit::ConnInfo;

use crate::ImapServer;
use crate::keywords::KnownKeywords;

/// Per-session facts the handlers need, and the response sink.
pub(crate) struct Ctx {
    pub server: Arc<ImapServer>,
    pub info: ConnInfo,
    pub(crate) out: Vec<u8>,
    /// `ENABLE IMAP4rev2` was done (RFC 9051 §6.3.1): rev2 responses (no RECENT, ESEARCH).
    pub rev2: bool,
    /// Mailbox names and strings in UTF-8 (IMAP4rev2 or UTF8=ACCEPT, RFC 6855 §3).
    pub utf8: bool,
    /// `ENABLE UTF8=ACCEPT` itself was done (for `* ENABLED`, RFC 5161 §3.2).
    pub utf8_enabled: bool,
    /// CONDSTORE is on (RFC 7162 §3.1: after a CONDSTORE-enabling command): HIGHESTMODSEQ at
    /// SELECT, MODSEQ in every untagged FETCH about flags.
    pub condstore: bool,
    /// `ENABLE QRESYNC` was done (RFC 7162 §3.2.3): VANISHED instead of EXPUNGE.
    pub qresync: bool,
    /// The keywords announced in FLAGS for the selected mailbox (`None` when nothing is
    /// selected); every untagged FETCH is checked against it (`keywords.rs`).
    pub keywords: Option<KnownKeywords>,
}

impl Ctx {
    /// A new session's context: nothing enabled, nothing selected.
    pub fn new(server: Arc<ImapServer>, info: ConnInfo) -> Ctx {
        Ctx {
            server,
            info,
            out: Vec::new(),
            rev2: false,
            utf8: false,
            utf8_enabled: false,
            condstore: false,
            qresync: false,
            keywords: None,
        }
    }

    pub fn opts(&self) -> EncodeOptions {
        EncodeOptions { utf8: self.utf8 }
    }

    pub fn push(&mut self, r: Response) {
        let opts = self.opts();
        // RFC 9051 §7.3.5: a keyword is in FLAGS before any FETCH shows it.
        if let Some(first) = self.keywords.as_mut().and_then(|k| k.before(&r)) {
            for f in first {
                f.encode(&mut self.out, opts);
            }
        }
        r.encode(&mut self.out, opts);
    }

    /// The response buffer itself, for a FETCH response written piece by piece around a
    /// streamed body (`cmd/fetch/stream.rs`); [`Ctx::announce_keywords`] goes first.
    pub fn out_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Queues the FLAGS announcement the keywords in `items` need (see [`Ctx::push`]).
    pub fn announce_keywords(&mut self, items: &[imap_proto::FetchItem]) {
        let opts = self.opts();
        if let Some(first) = self.keywords.as_mut().and_then(|k| k.before_items(items)) {
            for f in first {
                f.encode(&mut self.out, opts);
            }
        }
    }

    pub fn data(&mut self, d: imap_proto::Data) {
        self.push(Response::Data(d));
    }

    pub fn status(&mut self, s: Status) {
        self.push(Response::Status(s));
    }

    /// Frees the response buffer when nothing is queued (a session about to wait long).
    pub fn release_buffers(&mut self) {
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    pub fn pending_output(&self) -> usize {
        self.out.len()
    }
}

/// Maps a store error to the tagged NO — the one place that does (STYLE: one mapping per
/// protocol). RFC 5530 response codes.
pub(crate) fn store_error(tag: &imap_proto::Tag, e: &store::StoreError) -> Status {
    use store::StoreError as E;
    let tag = Some(tag.clone());
    let (code, text) = match e {
        E::NotFound(_) => (Code::NonExistent, "no such mailbox or message"),
        E::Exists(_) => (Code::AlreadyExists, "already exists"),
        E::OverQuota => (Code::OverQuota, "over quota"),
        E::Expunged => (Code::ExpungeIssued, "message was expunged"),
        E::InUse => (Code::InUse, "in use by another session"),
        E::Invalid(_) => (Code::Cannot, "operation refused"),
        // RFC 5530 §3: a full disk is the server's storage limit (LIMIT), a temporary
        // condition the client retries like UNAVAILABLE.
        e @ E::Temporary(_) if e.is_storage_full() => {
            (Code::Limit, "server storage is full, try again later")
        }
        E::Temporary(_) => (Code::Unavailable, "temporary failure, try again"),
    };
    if let E::Temporary(why) = e {
        tracing::warn!(error = %why, "imap: store failure");
    }
    Status::no(tag, text).with_code(code)
}
