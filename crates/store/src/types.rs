//! Plain data carried across the storage API.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::ids::{AccountId, MailboxId};
/// RFC 9051 §2.3.1.1: 32-bit, strictly ascending, never reused in a mailbox.
pub type Uid = u32;
/// RFC 7162 §3.1: 63-bit unsigned, strictly increasing per mailbox.
pub type ModSeq = u64;
/// Seconds since the Unix epoch (UTC).
pub type UnixTime = i64;

/// The name of every account's inbox. RFC 9051 §5.1: "INBOX" is case-insensitive.
pub const INBOX: &str = "INBOX";

/// Special-use mailbox attributes (RFC 6154 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
}

impl SpecialUse {
    /// The IMAP attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }

    /// Database / config spelling: `sent`, `drafts`, …
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::Sent => "sent",
            SpecialUse::Drafts => "drafts",
            SpecialUse::Trash => "trash",
            SpecialUse::Junk => "junk",
            SpecialUse::Archive => "archive",
        }
    }

    pub fn parse(s: &str) -> Option<SpecialUse> {
        Some(match s {
            "sent" => SpecialUse::Sent,
            "drafts" => SpecialUse::Drafts,
            "trash" => SpecialUse::Trash,
            "junk" => SpecialUse::Junk,
            "archive" => SpecialUse::Archive,
            _ => return None,
        })
    }
}

/// The mailboxes every new account gets, with their special use.
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    (INBOX, None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The IMAP system flags (RFC 9051 §2.3.2) as a bit set. `\Recent` is session state, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SystemFlags(pub u8);

impl SystemFlags {
    pub const SEEN: SystemFlags = SystemFlags(1);
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    pub const DELETED: SystemFlags = SystemFlags(8);
    pub const DRAFT: SystemFlags = SystemFlags(16);
    pub const ALL: [(SystemFlags, &'static str); 5] = [
        (SystemFlags::SEEN, "\\Seen"),
        (SystemFlags::ANSWERED, "\\Answered"),
        (SystemFlags::FLAGGED, "\\Flagged"),
        (SystemFlags::DELETED, "\\Deleted"),
        (SystemFlags::DRAFT, "\\Draft"),
    ];

    pub fn empty() -> SystemFlags {
        SystemFlags(0)
    }
    pub fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: SystemFlags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: SystemFlags) {
        self.0 &= !other.0;
    }
    /// Parses one system flag name, case-insensitively (RFC 9051 §9: flag names are atoms,
    /// system flags are case-insensitive).
    pub fn from_name(name: &str) -> Option<SystemFlags> {
        SystemFlags::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }
}

/// Flags and keywords of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flags {
    pub system: SystemFlags,
    /// Keywords (RFC 9051 §2.3.2 "keyword"), e.g. `$Forwarded`, `$Junk`; kept in insertion order,
    /// no duplicates (compared case-insensitively).
    pub keywords: Vec<String>,
}

/// How a flag update combines with the current flags (RFC 9051 §6.4.6 STORE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// Identifies a stored message body: the lower-case hex SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub String);

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox and its IMAP state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The mailbox and its account.
    pub id: MailboxId,
    /// Full hierarchical name with `/` as separator, UTF-8.
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
    pub special_use: Option<SpecialUse>,
    /// Whether the name is in the account's subscriptions (RFC 9051 §6.3.7).
    pub subscribed: bool,
    pub messages: u32,
    pub unseen: u32,
    /// Sum of the sizes of the messages in the mailbox (IMAP STATUS SIZE, RFC 8438).
    pub size: u64,
}

/// One message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: Uid,
    pub blob: BlobId,
    /// Size in octets of the stored message (RFC822.SIZE).
    pub size: u64,
    pub internal_date: UnixTime,
    pub flags: Flags,
    pub modseq: ModSeq,
}

impl MessageMeta {
    /// Everything but the blob id.
    pub fn summary(self) -> MessageSummary {
        MessageSummary {
            uid: self.uid,
            size: self.size,
            internal_date: self.internal_date,
            flags: self.flags,
            modseq: self.modseq,
        }
    }
}

/// A message without its body: what a protocol session keeps of each message it shows
/// (IMAP's view answers FLAGS, INTERNALDATE, RFC822.SIZE and SEARCH on metadata from it) and
/// what a new-message event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    pub uid: Uid,
    /// Size in octets of the stored message (RFC822.SIZE).
    pub size: u64,
    pub internal_date: UnixTime,
    pub flags: Flags,
    pub modseq: ModSeq,
}

/// The account's quota state (RFC 9208 STORAGE and MESSAGE): usage, and the limits resolved
/// from the account's overrides and the defaults (see `quota.rs`); a limit is `None` when
/// unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Bytes of all the account's messages.
    pub used: u64,
    /// The storage limit in bytes.
    pub limit: Option<u64>,
    /// The number of the account's messages.
    pub messages: u64,
    pub message_limit: Option<u64>,
}

impl Quota {
    /// Whether one more message of `extra` bytes would exceed either limit.
    pub fn would_exceed(&self, extra: u64) -> bool {
        self.limit
            .is_some_and(|l| self.used.saturating_add(extra) > l)
            || self
                .message_limit
                .is_some_and(|l| self.messages.saturating_add(1) > l)
    }
}

/// The result of storing one message in one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The mailbox (and so the account) the message was filed in.
    pub mailbox: MailboxId,
    pub uid_validity: u32,
    pub uid: Uid,
}

/// What a protocol parsed once from a message's bytes, cached by the store beside the blob —
/// as Dovecot's index cache keeps `imap.envelope`, `imap.bodystructure` and header fields, so
/// that clients listing a mailbox do not make the server read and parse every message again.
///
/// Blobs are content-addressed: the same bytes always have the same facts, so they are cached
/// per blob and shared by every copy of the message. The store keeps the fields as given;
/// `version` names the format of the producer, which ignores (and replaces) entries of another
/// version. The encoded fields are IMAP's wire forms, written as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageFacts {
    pub version: u32,
    /// The header section up to and including the empty line that ends it (RFC 5322 §2.1);
    /// the body starts at `header.len()`.
    pub header: Vec<u8>,
    /// IMAP ENVELOPE for sessions without UTF-8 (RFC 9051 §7.5.2; RFC 6855 §3).
    pub envelope: Vec<u8>,
    /// ENVELOPE for UTF-8 sessions, when it differs.
    pub envelope_utf8: Option<Vec<u8>>,
    /// IMAP BODY (no extension data), for sessions without UTF-8.
    pub body: Vec<u8>,
    pub body_utf8: Option<Vec<u8>>,
    /// IMAP BODYSTRUCTURE, for sessions without UTF-8.
    pub bodystructure: Vec<u8>,
    pub bodystructure_utf8: Option<Vec<u8>>,
}

/// Where a message's bytes are, and its cached facts if any: what FETCH of anything beyond
/// flags and dates starts from (see [`crate::MailStore::message_bodies`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody {
    pub uid: Uid,
    pub blob: BlobId,
    /// Size in octets of the stored message.
    pub size: u64,
    /// The cached facts of the requested version, `None` on a miss.
    pub facts: Option<std::sync::Arc<MessageFacts>>,
}

/// One message of [`MailStore::append_many`](crate::MailStore::append_many): its bytes, its
/// flags and its internal date.
#[derive(Debug, Clone)]
pub struct AppendMessage {
    pub bytes: std::sync::Arc<Vec<u8>>,
    pub flags: Flags,
    pub internal_date: UnixTime,
}
