//! The keywords the client has been told are defined in the selected mailbox.
//!
//! RFC 9051 §7.3.5 / RFC 3501 §7.2.6: the untagged FLAGS response lists the flags defined in
//! the mailbox, and a client keeps that list; a keyword must be in it before any FETCH shows
//! it. Keywords come into use at any time (this session's STORE, another session's STORE or
//! APPEND), so the rule is kept at the one place every untagged FETCH passes through
//! ([`crate::ctx::Ctx::push`]): a FETCH whose FLAGS carry a keyword the client has not
//! been told of is preceded by a new `* FLAGS` and `* OK [PERMANENTFLAGS]` listing it.
//!
//! Invariant: `known` only grows while a mailbox is selected (a keyword never leaves FLAGS
//! in a session, as Dovecot does too); it is replaced at each SELECT/EXAMINE.

use imap_proto::{Atom, Code, Data, FetchItem, Flag, Response, Status};

/// The system flags, in the order FLAGS lists them.
pub(crate) fn system_flags() -> Vec<Flag> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

/// The keywords announced to the client for the selected mailbox.
#[derive(Debug, Default)]
pub(crate) struct KnownKeywords {
    known: Vec<Atom>,
    read_only: bool,
}

impl KnownKeywords {
    /// The keywords of a freshly selected mailbox (`read_only` for EXAMINE: no PERMANENTFLAGS).
    pub fn new<'a>(keywords: impl IntoIterator<Item = &'a str>, read_only: bool) -> KnownKeywords {
        let mut k = KnownKeywords {
            known: Vec::new(),
            read_only,
        };
        for kw in keywords {
            if let Some(atom) = Atom::new(kw) {
                k.insert(atom);
            }
        }
        k
    }

    fn contains(&self, kw: &Atom) -> bool {
        // Keywords compare case-insensitively (RFC 9051 §2.3.2 "flag"); there are few.
        self.known
            .iter()
            .any(|k| k.as_str().eq_ignore_ascii_case(kw.as_str()))
    }

    fn insert(&mut self, kw: Atom) -> bool {
        if self.contains(&kw) {
            return false;
        }
        self.known.push(kw);
        true
    }

    /// `* FLAGS (...)` with the system flags and every known keyword.
    pub fn flags_data(&self) -> Data {
        let mut flags = system_flags();
        flags.extend(self.known.iter().cloned().map(Flag::Keyword));
        Data::Flags(flags)
    }

    /// `* OK [PERMANENTFLAGS (...)]`: empty for a read-only mailbox, else the system flags,
    /// the known keywords and `\*` (any new keyword may be stored) — RFC 9051 §7.1.
    pub fn permanent_flags_status(&self) -> Status {
        let flags = if self.read_only {
            vec![]
        } else {
            let mut f = system_flags();
            f.extend(self.known.iter().cloned().map(Flag::Keyword));
            f
        };
        Status::ok(None, "flags permitted").with_code(Code::PermanentFlags {
            flags,
            keywords: !self.read_only,
        })
    }

    /// Learns the keywords of an outgoing response; returns the responses that must go before
    /// it (a new FLAGS and PERMANENTFLAGS) when it carries one the client was not told of.
    pub fn before(&mut self, r: &Response) -> Option<[Response; 2]> {
        match r {
            Response::Data(Data::Fetch { items, .. }) => self.before_items(items),
            _ => None,
        }
    }

    /// [`before`](Self::before) for the items of a FETCH response written piece by piece.
    pub fn before_items(&mut self, items: &[FetchItem]) -> Option<[Response; 2]> {
        let mut grew = false;
        for item in items {
            if let FetchItem::Flags(flags) = item {
                for f in flags {
                    if let Flag::Keyword(kw) = f
                        && !self.contains(kw)
                    {
                        self.known.push(kw.clone());
                        grew = true;
                    }
                }
            }
        }
        grew.then(|| {
            [
                Response::Data(self.flags_data()),
                Response::Status(self.permanent_flags_status()),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(flags: &[&str]) -> Response {
        Response::Data(Data::Fetch {
            seq: 1,
            items: vec![FetchItem::Flags(
                flags.iter().map(|f| Flag::parse(f).unwrap()).collect(),
            )],
        })
    }

    #[test]
    fn announces_each_new_keyword_once() {
        let mut k = KnownKeywords::new(["$Junk"], false);
        assert!(k.before(&fetch(&["\\Seen", "$junk"])).is_none());
        let [flags, perm] = k.before(&fetch(&["$Label1", "\\Seen"])).unwrap();
        let mut out = Vec::new();
        flags.encode(&mut out, Default::default());
        perm.encode(&mut out, Default::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk $Label1)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk $Label1 \\*)] flags permitted\r\n"
        );
        assert!(k.before(&fetch(&["$LABEL1"])).is_none());
    }

    #[test]
    fn read_only_has_no_permanent_flags() {
        let mut k = KnownKeywords::new([], true);
        let [_, perm] = k.before(&fetch(&["x"])).unwrap();
        let mut out = Vec::new();
        perm.encode(&mut out, Default::default());
        assert_eq!(out, b"* OK [PERMANENTFLAGS ()] flags permitted\r\n");
    }
}
