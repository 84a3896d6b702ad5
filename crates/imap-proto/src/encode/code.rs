//! Response codes: `resp-text-code` — RFC 9051 §7.1 and §9, RFC 5530, RFC 4315 (UIDPLUS),
//! RFC 7162 (CONDSTORE/QRESYNC), RFC 5182, RFC 3516.

use super::string::{write_astring, write_string};
use crate::SequenceSet;
use crate::types::{Atom, Flag};

/// `resp-text-code` — the bracketed code of a status response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    /// `"BADCHARSET" [SP "(" charset *(SP charset) ")"]`.
    BadCharset(Vec<String>),
    /// `capability-data` (without the leading `CAPABILITY` word).
    Capability(Vec<String>),
    Parse,
    /// `"PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")"`; `keywords` adds `\*`
    /// (new keywords can be created).
    PermanentFlags {
        flags: Vec<Flag>,
        keywords: bool,
    },
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    /// RFC 3501 only.
    Unseen(u32),
    /// `"APPENDUID" SP nz-number SP append-uid` — RFC 4315 §4, RFC 9051.
    AppendUid {
        uid_validity: u32,
        uids: SequenceSet,
    },
    /// `"COPYUID" SP nz-number SP uid-set SP uid-set` — RFC 4315 §4, RFC 9051.
    CopyUid {
        uid_validity: u32,
        source: SequenceSet,
        destination: SequenceSet,
    },
    UidNotSticky,
    /// `CLOSED` — RFC 7162 §3.2.11.
    Closed,
    HighestModSeq(u64),
    NoModSeq,
    /// `"MODIFIED" SP sequence-set` — RFC 7162 §3.1.3.
    Modified(SequenceSet),
    /// `NOTSAVED` — RFC 5182 §2.1.
    NotSaved,
    /// `UNKNOWN-CTE` — RFC 3516 §4.
    UnknownCte,
    // RFC 5530 §3 (part of RFC 9051).
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    NonExistent,
    /// `TOOBIG` — RFC 4469 §4 / RFC 7889, RFC 9051.
    TooBig,
    /// `HASCHILDREN` — RFC 9051 §7.1.
    HasChildren,
    /// `USEATTR` — RFC 6154 §6.
    UseAttr,
    /// `"NOUPDATE" SP quoted` with the tag of the search whose UPDATE is refused — RFC 5267
    /// §4.3.1.
    NoUpdate(String),
    /// `"BADURL" SP url-resp-text` — RFC 4469 §4.1: the first URL that made APPEND fail.
    BadUrl(String),
    /// `"URLMECH" SP "INTERNAL" *(SP mechanism ["=" base64])` — RFC 4467 §8.
    UrlMech(Vec<String>),
    /// `NOTIFICATIONOVERFLOW` — RFC 5465 §5.8.
    NotificationOverflow,
    /// `"BADEVENT" SP "(" event-name *(SP event-name) ")"` — RFC 5465 §8: the events the
    /// server supports (§3.1).
    BadEvent(Vec<String>),
    /// Any other: `atom [SP 1*<any TEXT-CHAR except "]">]`.
    Other {
        name: Atom,
        value: Option<String>,
    },
}

impl Code {
    /// Writes the code with its brackets.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        let w = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Code::Alert => w(out, "ALERT"),
            Code::BadCharset(charsets) => {
                w(out, "BADCHARSET");
                if !charsets.is_empty() {
                    w(out, " (");
                    for (i, c) in charsets.iter().enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        // `charset = atom / quoted`.
                        write_astring(out, c.as_bytes(), false);
                    }
                    out.push(b')');
                }
            }
            Code::Capability(caps) => {
                w(out, "CAPABILITY");
                for c in caps {
                    out.push(b' ');
                    w(out, c);
                }
            }
            Code::Parse => w(out, "PARSE"),
            Code::PermanentFlags { flags, keywords } => {
                w(out, "PERMANENTFLAGS (");
                let mut first = true;
                for f in flags {
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    w(out, &f.to_string());
                }
                if *keywords {
                    w(out, if first { "\\*" } else { " \\*" });
                }
                out.push(b')');
            }
            Code::ReadOnly => w(out, "READ-ONLY"),
            Code::ReadWrite => w(out, "READ-WRITE"),
            Code::TryCreate => w(out, "TRYCREATE"),
            Code::UidNext(n) => w(out, &format!("UIDNEXT {n}")),
            Code::UidValidity(n) => w(out, &format!("UIDVALIDITY {n}")),
            Code::Unseen(n) => w(out, &format!("UNSEEN {n}")),
            Code::AppendUid { uid_validity, uids } => {
                w(out, &format!("APPENDUID {uid_validity} {uids}"))
            }
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            } => w(
                out,
                &format!("COPYUID {uid_validity} {source} {destination}"),
            ),
            Code::UidNotSticky => w(out, "UIDNOTSTICKY"),
            Code::Closed => w(out, "CLOSED"),
            Code::HighestModSeq(n) => w(out, &format!("HIGHESTMODSEQ {n}")),
            Code::NoModSeq => w(out, "NOMODSEQ"),
            Code::Modified(set) => w(out, &format!("MODIFIED {set}")),
            Code::NotSaved => w(out, "NOTSAVED"),
            Code::UnknownCte => w(out, "UNKNOWN-CTE"),
            Code::Unavailable => w(out, "UNAVAILABLE"),
            Code::AuthenticationFailed => w(out, "AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => w(out, "AUTHORIZATIONFAILED"),
            Code::Expired => w(out, "EXPIRED"),
            Code::PrivacyRequired => w(out, "PRIVACYREQUIRED"),
            Code::ContactAdmin => w(out, "CONTACTADMIN"),
            Code::NoPerm => w(out, "NOPERM"),
            Code::InUse => w(out, "INUSE"),
            Code::ExpungeIssued => w(out, "EXPUNGEISSUED"),
            Code::Corruption => w(out, "CORRUPTION"),
            Code::ServerBug => w(out, "SERVERBUG"),
            Code::ClientBug => w(out, "CLIENTBUG"),
            Code::Cannot => w(out, "CANNOT"),
            Code::Limit => w(out, "LIMIT"),
            Code::OverQuota => w(out, "OVERQUOTA"),
            Code::AlreadyExists => w(out, "ALREADYEXISTS"),
            Code::NonExistent => w(out, "NONEXISTENT"),
            Code::TooBig => w(out, "TOOBIG"),
            Code::HasChildren => w(out, "HASCHILDREN"),
            Code::UseAttr => w(out, "USEATTR"),
            Code::NoUpdate(tag) => {
                w(out, "NOUPDATE ");
                // A tag is an astring without `]`; quoted always, as the grammar says.
                write_string(out, tag.as_bytes(), false);
            }
            Code::BadUrl(url) => {
                w(out, "BADURL ");
                // `url-resp-text = 1*(%x01-09 / %x0B-0C / %x0E-5B / %x5D-FE)`: any TEXT-CHAR
                // but "]" (RFC 4469 §5).
                out.extend(
                    url.bytes()
                        .filter(|b| !matches!(b, b']' | b'\r' | b'\n' | 0)),
                );
            }
            Code::UrlMech(mechs) => {
                w(out, "URLMECH");
                for m in mechs {
                    out.push(b' ');
                    w(out, m);
                }
            }
            Code::NotificationOverflow => w(out, "NOTIFICATIONOVERFLOW"),
            Code::BadEvent(events) => {
                w(out, "BADEVENT (");
                w(out, &events.join(" "));
                out.push(b')');
            }
            Code::Other { name, value } => {
                w(out, name.as_str());
                if let Some(v) = value {
                    out.push(b' ');
                    // `1*<any TEXT-CHAR except "]">`: drop what would break the code.
                    let clean = v.bytes().filter(|b| !matches!(b, b']' | b'\r' | b'\n' | 0));
                    out.extend(clean);
                }
            }
        }
        out.push(b']');
    }
}
