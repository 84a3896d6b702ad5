//! Server responses: status (tagged and untagged), continuation requests and untagged data
//! — RFC 9051 §7. Each value is written whole, CRLF included, into a byte buffer.

use super::bodystructure::{BodyStructure, write_body_structure};
use super::code::Code;
use super::fetch::{FetchItem, write_fetch_items};
use super::string::{
    write_astring, write_literal, write_literal8, write_mailbox, write_nstring, write_string,
    write_text,
};
use super::thread::{ThreadNode, write_threads};
use crate::types::{Atom, Flag, Tag};
use crate::{PartialRange, SequenceSet};

/// How strings are written for this client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The client accepts UTF-8 (IMAP4rev2 or `ENABLE UTF8=ACCEPT`, RFC 6855 §3): mailbox
    /// names go out as UTF-8 and quoted strings may hold UTF-8. Otherwise names are in
    /// modified UTF-7 and 8-bit strings go in literals.
    pub utf8: bool,
}

/// Anything the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status(Status),
    Data(Data),
    /// `continue-req = "+" SP (resp-text / base64) CRLF` — RFC 9051 §7.5. The text is sent
    /// as is (a SASL challenge is already base64).
    Continue(String),
}

impl Response {
    /// Appends the wire form of this response to `out`.
    pub fn encode(&self, out: &mut Vec<u8>, opts: EncodeOptions) {
        match self {
            Response::Status(s) => s.encode(out),
            Response::Data(d) => d.encode(out, opts),
            Response::Continue(text) => {
                out.extend_from_slice(b"+ ");
                out.extend(text.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | 0)));
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self, opts: EncodeOptions) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out, opts);
        out
    }
}

/// `OK`, `NO`, `BAD`, `PREAUTH`, `BYE` — RFC 9051 §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    /// Greeting only, untagged.
    PreAuth,
    /// Untagged only.
    Bye,
}

/// `response-tagged = tag SP resp-cond-state CRLF` or an untagged status
/// (`"*" SP resp-cond-state / resp-cond-bye`) — RFC 9051 §7.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `None` for an untagged response (`*`).
    pub tag: Option<Tag>,
    pub kind: StatusKind,
    pub code: Option<Code>,
    /// Human-readable text; CR/LF are replaced on output.
    pub text: String,
}

impl Status {
    fn new(tag: Option<Tag>, kind: StatusKind, text: impl Into<String>) -> Status {
        Status {
            tag,
            kind,
            code: None,
            text: text.into(),
        }
    }
    pub fn ok(tag: Option<Tag>, text: impl Into<String>) -> Status {
        Status::new(tag, StatusKind::Ok, text)
    }
    pub fn no(tag: Option<Tag>, text: impl Into<String>) -> Status {
        Status::new(tag, StatusKind::No, text)
    }
    pub fn bad(tag: Option<Tag>, text: impl Into<String>) -> Status {
        Status::new(tag, StatusKind::Bad, text)
    }
    pub fn bye(text: impl Into<String>) -> Status {
        Status::new(None, StatusKind::Bye, text)
    }
    pub fn preauth(text: impl Into<String>) -> Status {
        Status::new(None, StatusKind::PreAuth, text)
    }
    pub fn with_code(mut self, code: Code) -> Status {
        self.code = Some(code);
        self
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.tag {
            Some(tag) => out.extend_from_slice(tag.as_str().as_bytes()),
            None => out.push(b'*'),
        }
        out.extend_from_slice(match self.kind {
            StatusKind::Ok => b" OK ",
            StatusKind::No => b" NO ",
            StatusKind::Bad => b" BAD ",
            StatusKind::PreAuth => b" PREAUTH ",
            StatusKind::Bye => b" BYE ",
        });
        // `resp-text = ["[" resp-text-code "]" SP] [text]`.
        if let Some(code) = &self.code {
            code.write(out);
            out.push(b' ');
        }
        write_text(out, &self.text);
        out.extend_from_slice(b"\r\n");
    }
}

/// A mailbox attribute in LIST/LSUB — RFC 9051 §7.3.1, RFC 5258, RFC 6154 §2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxAttribute {
    NoInferiors,
    NoSelect,
    Marked,
    Unmarked,
    NonExistent,
    Subscribed,
    Remote,
    HasChildren,
    HasNoChildren,
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    /// Another `\`-attribute, named without the backslash.
    Other(Atom),
}

impl MailboxAttribute {
    fn name(&self) -> &str {
        use MailboxAttribute as M;
        match self {
            M::NoInferiors => "Noinferiors",
            M::NoSelect => "Noselect",
            M::Marked => "Marked",
            M::Unmarked => "Unmarked",
            M::NonExistent => "NonExistent",
            M::Subscribed => "Subscribed",
            M::Remote => "Remote",
            M::HasChildren => "HasChildren",
            M::HasNoChildren => "HasNoChildren",
            M::All => "All",
            M::Archive => "Archive",
            M::Drafts => "Drafts",
            M::Flagged => "Flagged",
            M::Junk => "Junk",
            M::Sent => "Sent",
            M::Trash => "Trash",
            M::Other(a) => a.as_str(),
        }
    }
}

/// `mbox-list-extended-item` — RFC 5258 §6 (`CHILDINFO`), RFC 9051 §9 (`OLDNAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListExtended {
    /// `("CHILDINFO" ("SUBSCRIBED"))`.
    ChildInfo(Vec<String>),
    /// `("OLDNAME" ("old"))` — RFC 9051 §6.3.6.
    OldName(String),
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]` — RFC 9051 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub attributes: Vec<MailboxAttribute>,
    /// The hierarchy delimiter; `None` is NIL (flat namespace).
    pub delimiter: Option<char>,
    /// The name in UTF-8; encoded per [`EncodeOptions::utf8`].
    pub name: String,
    pub extended: Vec<ListExtended>,
}

/// `status-att-val` — RFC 9051 §9, RFC 3501 (`RECENT`), RFC 7162 (`HIGHESTMODSEQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages(u32),
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    Deleted(u32),
    Size(u64),
    Recent(u32),
    HighestModSeq(u64),
}

/// `search-return-data` — RFC 4731 §3.1, RFC 9051 §9, RFC 7162 §3.1.5, RFC 5267 §5,
/// RFC 9394 §4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ESearchItem {
    Min(u32),
    Max(u32),
    /// For SORT in the requested order (RFC 5267 §3.1): build it with
    /// [`SequenceSet::from_ids`], which keeps the order and makes ranges of ascending runs
    /// only (RFC 5267 §3.2).
    All(SequenceSet),
    Count(u32),
    ModSeq(u64),
    /// `"PARTIAL" SP "(" partial-range SP partial-results ")"`; `partial-results =
    /// sequence-set / "NIL"` — RFC 9394 §4 (`None` is NIL).
    Partial {
        range: PartialRange,
        results: Option<SequenceSet>,
    },
    /// `"ADDTO" SP "(" context-position SP sequence-set *(SP context-position SP
    /// sequence-set) ")"` — RFC 5267 §5; position 0 for SEARCH contexts.
    AddTo(Vec<(u32, SequenceSet)>),
    /// `"REMOVEFROM" SP "(" context-position SP sequence-set *(...) ")"` — RFC 5267 §5.
    RemoveFrom(Vec<(u32, SequenceSet)>),
}

/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"` — RFC 9051 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDesc {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// One URL's answer in `* URLFETCH` — RFC 4467 §8, RFC 5524 §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchData {
    pub url: String,
    pub value: UrlFetchValue,
}

/// `urldata-simple = url-full SP nstring` or `urldata-ext = url-full url-metadata` — RFC 5524
/// §5 (the simple form is RFC 4467's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlFetchValue {
    /// The data as stored; `None` (NIL) when the URL is invalid for any reason.
    Simple(Option<Vec<u8>>),
    /// The requested metadata items, `None` (NIL) when the URL is invalid.
    Extended(Option<Box<UrlMetadata>>),
}

/// `url-metadata-el`s — RFC 5524 §3.2. Each is sent when `Some`; the inner `None` of BINARY
/// and BODY is NIL (content that could not be decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlMetadata {
    pub body_part_structure: Option<BodyStructure>,
    pub binary: Option<Option<Vec<u8>>>,
    pub body: Option<Option<Vec<u8>>>,
}

/// Untagged data responses — RFC 9051 §7.2 to §7.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Capability(Vec<String>),
    /// `ENABLED` — RFC 5161 §3.2.
    Enabled(Vec<String>),
    List(ListItem),
    /// RFC 3501 §7.2.3.
    Lsub(ListItem),
    /// `"STATUS" SP mailbox SP "(" [status-att-val *(SP status-att-val)] ")"`.
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    Flags(Vec<Flag>),
    Exists(u32),
    /// RFC 3501 only.
    Recent(u32),
    Expunge(u32),
    /// `"VANISHED" [SP "(EARLIER)"] SP known-uids` — RFC 7162 §3.2.10.
    Vanished {
        earlier: bool,
        uids: SequenceSet,
    },
    /// `"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]` —
    /// RFC 3501 §7.2.5, RFC 7162 §3.1.5.
    Search {
        ids: Vec<u32>,
        modseq: Option<u64>,
    },
    /// `sort-data = "SORT" *(SP nz-number) [SP search-sort-mod-seq]` — RFC 5256 §5,
    /// RFC 7162 §3.1.5; the numbers in the requested order.
    Sort {
        ids: Vec<u32>,
        modseq: Option<u64>,
    },
    /// `thread-data = "THREAD" [SP 1*thread-list]` — RFC 5256 §4; the forest in pre-order.
    Thread(Vec<ThreadNode>),
    /// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`.
    ESearch {
        tag: Option<Tag>,
        uid: bool,
        items: Vec<ESearchItem>,
    },
    /// `message-data = nz-number SP "FETCH" SP msg-att`.
    Fetch {
        seq: u32,
        items: Vec<FetchItem>,
    },
    /// `namespace-response` — RFC 2342, RFC 9051 §7.3.4; empty lists are NIL.
    Namespace {
        personal: Vec<NamespaceDesc>,
        other: Vec<NamespaceDesc>,
        shared: Vec<NamespaceDesc>,
    },
    /// `id-response = "ID" SP id-params-list` — RFC 2971 §3.2.
    Id(Option<Vec<(String, Option<String>)>>),
    /// `quota-response = "QUOTA" SP quota-root-name SP quota-list` — RFC 9208 §5.1:
    /// (resource name, usage, limit).
    Quota {
        root: String,
        resources: Vec<(Atom, u64, u64)>,
    },
    /// `quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)` — RFC 9208 §5.2.
    QuotaRoot {
        mailbox: String,
        roots: Vec<String>,
    },
    /// `genurlauth-data = "*" SP "GENURLAUTH" 1*(SP url-full)` — RFC 4467 §9.
    GenUrlAuth(Vec<String>),
    /// `urlfetch-data = "*" SP "URLFETCH" 1*(SP url-full SP nstring)` — RFC 4467 §9, with
    /// RFC 5524's extended form.
    UrlFetch(Vec<UrlFetchData>),
}

/// `url-metadata` — RFC 5524 §5. RFC 5524 writes one parenthesised list per element; the
/// implementations in use (Dovecot, and imaptest's `urlauth-binary` checks) send all the
/// elements in one list, `(BODYPARTSTRUCTURE (...) BINARY {n}...)`. That one form is
/// followed here; for a single element the two are the same.
fn write_url_metadata(out: &mut Vec<u8>, m: &UrlMetadata, utf8: bool) {
    out.push(b'(');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b' ');
        }
    };
    if let Some(bs) = &m.body_part_structure {
        sep(out);
        out.extend_from_slice(b"BODYPARTSTRUCTURE ");
        write_body_structure(out, bs, true, utf8);
    }
    if let Some(data) = &m.binary {
        sep(out);
        out.extend_from_slice(b"BINARY ");
        match data {
            // RFC 5524 §5: literal8 when the content holds NUL.
            Some(d) if d.contains(&0) => write_literal8(out, d),
            Some(d) => write_literal(out, d),
            None => out.extend_from_slice(b"NIL"),
        }
    }
    if let Some(data) = &m.body {
        sep(out);
        out.extend_from_slice(b"BODY ");
        match data {
            Some(d) => write_literal(out, d),
            None => out.extend_from_slice(b"NIL"),
        }
    }
    out.push(b')');
}

/// `(DQUOTE QUOTED-CHAR DQUOTE / nil)` for a hierarchy delimiter.
fn write_delimiter(out: &mut Vec<u8>, d: Option<char>) {
    match d {
        Some(c) => {
            let mut buf = [0u8; 4];
            write_string(out, c.encode_utf8(&mut buf).as_bytes(), true);
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

fn write_list(out: &mut Vec<u8>, word: &str, item: &ListItem, utf8: bool) {
    out.extend_from_slice(format!("* {word} (").as_bytes());
    for (i, a) in item.attributes.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'\\');
        out.extend_from_slice(a.name().as_bytes());
    }
    out.extend_from_slice(b") ");
    write_delimiter(out, item.delimiter);
    out.push(b' ');
    write_mailbox(out, &item.name, utf8);
    if !item.extended.is_empty() {
        out.extend_from_slice(b" (");
        for (i, ext) in item.extended.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            match ext {
                ListExtended::ChildInfo(opts) => {
                    out.extend_from_slice(b"\"CHILDINFO\" (");
                    for (j, o) in opts.iter().enumerate() {
                        if j > 0 {
                            out.push(b' ');
                        }
                        write_string(out, o.as_bytes(), utf8);
                    }
                    out.push(b')');
                }
                ListExtended::OldName(old) => {
                    out.extend_from_slice(b"\"OLDNAME\" (");
                    write_mailbox(out, old, utf8);
                    out.push(b')');
                }
            }
        }
        out.push(b')');
    }
}

fn write_namespaces(out: &mut Vec<u8>, list: &[NamespaceDesc], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for ns in list {
        out.push(b'(');
        write_mailbox(out, &ns.prefix, utf8);
        out.push(b' ');
        write_delimiter(out, ns.delimiter);
        out.push(b')');
    }
    out.push(b')');
}

/// `context-position SP sequence-set *(SP context-position SP sequence-set)` — RFC 5267 §5.
fn pairs_text(pairs: &[(u32, SequenceSet)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(pos, set)| format!("{pos} {set}"))
        .collect();
    parts.join(" ")
}

fn join_words(out: &mut Vec<u8>, words: &[String]) {
    for w in words {
        out.push(b' ');
        out.extend_from_slice(w.as_bytes());
    }
}

impl Data {
    /// Appends the wire form (`* ...\r\n`) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>, opts: EncodeOptions) {
        let utf8 = opts.utf8;
        let num = |out: &mut Vec<u8>, s: String| out.extend_from_slice(s.as_bytes());
        match self {
            Data::Capability(caps) => {
                out.extend_from_slice(b"* CAPABILITY");
                join_words(out, caps);
            }
            Data::Enabled(caps) => {
                out.extend_from_slice(b"* ENABLED");
                join_words(out, caps);
            }
            Data::List(item) => write_list(out, "LIST", item, utf8),
            Data::Lsub(item) => write_list(out, "LSUB", item, utf8),
            Data::Status { mailbox, items } => {
                out.extend_from_slice(b"* STATUS ");
                write_mailbox(out, mailbox, utf8);
                out.extend_from_slice(b" (");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    num(
                        out,
                        match item {
                            StatusItem::Messages(n) => format!("MESSAGES {n}"),
                            StatusItem::UidNext(n) => format!("UIDNEXT {n}"),
                            StatusItem::UidValidity(n) => format!("UIDVALIDITY {n}"),
                            StatusItem::Unseen(n) => format!("UNSEEN {n}"),
                            StatusItem::Deleted(n) => format!("DELETED {n}"),
                            StatusItem::Size(n) => format!("SIZE {n}"),
                            StatusItem::Recent(n) => format!("RECENT {n}"),
                            StatusItem::HighestModSeq(n) => format!("HIGHESTMODSEQ {n}"),
                        },
                    );
                }
                out.push(b')');
            }
            Data::Flags(flags) => {
                out.extend_from_slice(b"* FLAGS (");
                let names: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                out.extend_from_slice(names.join(" ").as_bytes());
                out.push(b')');
            }
            Data::Exists(n) => num(out, format!("* {n} EXISTS")),
            Data::Recent(n) => num(out, format!("* {n} RECENT")),
            Data::Expunge(n) => num(out, format!("* {n} EXPUNGE")),
            Data::Vanished { earlier, uids } => {
                let e = if *earlier { " (EARLIER)" } else { "" };
                num(out, format!("* VANISHED{e} {uids}"));
            }
            Data::Search { ids, modseq } | Data::Sort { ids, modseq } => {
                out.extend_from_slice(if matches!(self, Data::Sort { .. }) {
                    b"* SORT"
                } else {
                    b"* SEARCH"
                });
                for id in ids {
                    num(out, format!(" {id}"));
                }
                // RFC 7162 §3.1.5: the MODSEQ item only with at least one result.
                if let (Some(m), false) = (modseq, ids.is_empty()) {
                    num(out, format!(" (MODSEQ {m})"));
                }
            }
            Data::Thread(nodes) => {
                out.extend_from_slice(b"* THREAD");
                write_threads(out, nodes);
            }
            Data::ESearch { tag, uid, items } => {
                out.extend_from_slice(b"* ESEARCH");
                if let Some(tag) = tag {
                    // `search-correlator = SP "(" "TAG" SP tag-string ")"`.
                    out.extend_from_slice(b" (TAG ");
                    write_string(out, tag.as_str().as_bytes(), false);
                    out.push(b')');
                }
                if *uid {
                    out.extend_from_slice(b" UID");
                }
                for item in items {
                    num(
                        out,
                        match item {
                            ESearchItem::Min(n) => format!(" MIN {n}"),
                            ESearchItem::Max(n) => format!(" MAX {n}"),
                            ESearchItem::All(set) => format!(" ALL {set}"),
                            ESearchItem::Count(n) => format!(" COUNT {n}"),
                            ESearchItem::ModSeq(n) => format!(" MODSEQ {n}"),
                            ESearchItem::Partial { range, results } => match results {
                                Some(set) => format!(" PARTIAL ({range} {set})"),
                                None => format!(" PARTIAL ({range} NIL)"),
                            },
                            ESearchItem::AddTo(pairs) => format!(" ADDTO ({})", pairs_text(pairs)),
                            ESearchItem::RemoveFrom(pairs) => {
                                format!(" REMOVEFROM ({})", pairs_text(pairs))
                            }
                        },
                    );
                }
            }
            Data::Fetch { seq, items } => {
                out.extend_from_slice(b"* ");
                super::fetch::write_number(out, *seq);
                out.extend_from_slice(b" FETCH ");
                write_fetch_items(out, items, utf8);
            }
            Data::Namespace {
                personal,
                other,
                shared,
            } => {
                out.extend_from_slice(b"* NAMESPACE ");
                write_namespaces(out, personal, utf8);
                out.push(b' ');
                write_namespaces(out, other, utf8);
                out.push(b' ');
                write_namespaces(out, shared, utf8);
            }
            Data::Id(params) => {
                out.extend_from_slice(b"* ID ");
                match params {
                    None => out.extend_from_slice(b"NIL"),
                    Some(params) => {
                        out.push(b'(');
                        for (i, (k, v)) in params.iter().enumerate() {
                            if i > 0 {
                                out.push(b' ');
                            }
                            write_string(out, k.as_bytes(), utf8);
                            out.push(b' ');
                            write_nstring(out, v.as_ref().map(|v| v.as_bytes()), utf8);
                        }
                        out.push(b')');
                    }
                }
            }
            Data::Quota { root, resources } => {
                out.extend_from_slice(b"* QUOTA ");
                write_astring(out, root.as_bytes(), utf8);
                out.extend_from_slice(b" (");
                for (i, (name, usage, limit)) in resources.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    num(out, format!("{name} {usage} {limit}"));
                }
                out.push(b')');
            }
            Data::GenUrlAuth(urls) => {
                out.extend_from_slice(b"* GENURLAUTH");
                for u in urls {
                    out.push(b' ');
                    write_astring(out, u.as_bytes(), false);
                }
            }
            Data::UrlFetch(items) => {
                out.extend_from_slice(b"* URLFETCH");
                for item in items {
                    out.push(b' ');
                    write_astring(out, item.url.as_bytes(), false);
                    out.push(b' ');
                    match &item.value {
                        // Message text goes in a literal, as FETCH sends it.
                        UrlFetchValue::Simple(Some(d)) => write_literal(out, d),
                        UrlFetchValue::Simple(None) | UrlFetchValue::Extended(None) => {
                            out.extend_from_slice(b"NIL")
                        }
                        UrlFetchValue::Extended(Some(m)) => write_url_metadata(out, m, utf8),
                    }
                }
            }
            Data::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"* QUOTAROOT ");
                write_mailbox(out, mailbox, utf8);
                for r in roots {
                    out.push(b' ');
                    write_astring(out, r.as_bytes(), utf8);
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}
