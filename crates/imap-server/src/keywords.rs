//! The keywords the client has been told are defined in the selected mailbox.
//!
//! RFC 9051 §7.3.5 / RFC 3501 §7.2.6: the untagged FLAGS response lists the flags defined in
//! the mailbox, and a client keeps that list; a keyword must be in it before any FETCH shows
//! it. Keywords come into use at any time (this session's STORE, another session's STORE or
//! APPEND), so the rule is kept at the one place every untagged FETCH passes through
//! ([`crate::ctx::Ctx::push`]): a FETCH whose FLAGS carry a keyword the client has not
//! been told of is preceded by a new `* FLAGS` and `* OK [PERMANENTFLAGS]` listing it.
//!
//! Invariant: `known` holds every keyword a message of the view has. It grows while a mailbox
//! is selected and is replaced at each SELECT/EXAMINE; when it has doubled past the mailbox's
//! keyword limit (a client adding and removing ever new keywords), [`trim`] rebuilds it from
//! the keywords in use and sends the shorter FLAGS (RFC 9051 §7.3.5: the client records each
//! FLAGS response).
//!
//! A mailbox holds at most `max_keywords` distinct keywords: beyond it PERMANENTFLAGS stops
//! offering `\*` and STORE refuses new ones (RFC 9051 §2.3.2 lets a server refuse keywords).

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
    /// The mailbox's keyword limit (`ImapConfig::max_keywords`).
    max: usize,
    /// Past this many known keywords the list is rebuilt from those in use ([`trim`]): twice
    /// the limit, or twice what was in use at the last rebuild (a mailbox given more keywords
    /// by APPEND or COPY must not be rebuilt at every command).
    trim_at: usize,
}

impl KnownKeywords {
    /// The keywords of a freshly selected mailbox (`read_only` for EXAMINE: no PERMANENTFLAGS).
    pub fn new<'a>(
        keywords: impl IntoIterator<Item = &'a str>,
        read_only: bool,
        max: usize,
    ) -> KnownKeywords {
        let mut k = KnownKeywords {
            known: Vec::new(),
            read_only,
            max,
            trim_at: 0,
        };
        for kw in keywords {
            if let Some(atom) = Atom::new(kw) {
                k.insert(atom);
            }
        }
        k.trim_at = k.known.len().max(max).saturating_mul(2).max(64);
        k
    }

    /// Whether the list has grown enough to be rebuilt ([`trim`]).
    pub fn needs_trim(&self) -> bool {
        self.known.len() > self.trim_at
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
    /// the known keywords and `\*` (new keywords may be stored) while the mailbox is below
    /// its keyword limit — RFC 9051 §7.1.
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
            keywords: !self.read_only && self.known.len() < self.max,
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

/// Rebuilds the client's keyword list from `in_use` (the view's keywords) when it
/// [`needs_trim`](KnownKeywords::needs_trim), queueing the new FLAGS and PERMANENTFLAGS.
pub(crate) fn trim(ctx: &mut crate::ctx::Ctx, in_use: &[&str]) {
    let Some(k) = ctx.keywords.as_mut() else {
        return;
    };
    if !k.needs_trim() {
        return;
    }
    let rebuilt = KnownKeywords::new(in_use.iter().copied(), k.read_only, k.max);
    *k = rebuilt;
    let (flags, perm) = (k.flags_data(), k.permanent_flags_status());
    ctx.data(flags);
    ctx.status(perm);
}

/// The keywords among `flags` that `in_use` (the mailbox's) does not have yet, compared
/// case-insensitively — what a STORE would add to the mailbox.
pub(crate) fn new_keywords<'a>(flags: &'a [Flag], in_use: &[&str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for f in flags {
        if let Flag::Keyword(kw) = f {
            let kw = kw.as_str();
            let known = |k: &&str| k.eq_ignore_ascii_case(kw);
            if !in_use.iter().any(known) && !out.iter().any(known) {
                out.push(kw);
            }
        }
    }
    out
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
        let mut k = KnownKeywords::new(["$Junk"], false, 256);
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
    fn no_new_keywords_offered_at_the_limit() {
        let k = KnownKeywords::new(["a", "b"], false, 2);
        let mut out = Vec::new();
        Response::Status(k.permanent_flags_status()).encode(&mut out, Default::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft a b)] flags permitted\r\n"
        );
        let flags: Vec<Flag> = ["\\Seen", "B", "c", "C"]
            .iter()
            .map(|f| Flag::parse(f).unwrap())
            .collect();
        assert_eq!(new_keywords(&flags, &["a", "b"]), ["c"]);
    }

    #[test]
    fn the_rebuild_threshold_follows_what_is_in_use() {
        let mut k = KnownKeywords::new([], false, 3);
        for i in 0..64 {
            k.before(&fetch(&[&format!("k{i}")]));
        }
        assert!(!k.needs_trim(), "64 at least");
        k.before(&fetch(&["k64"]));
        assert!(k.needs_trim());
        // A mailbox that already holds 100 keywords is rebuilt only past 200.
        let names: Vec<String> = (0..100).map(|i| format!("x{i}")).collect();
        let mut k = KnownKeywords::new(names.iter().map(String::as_str), false, 3);
        for i in 0..100 {
            k.before(&fetch(&[&format!("y{i}")]));
        }
        assert!(!k.needs_trim());
        k.before(&fetch(&["z"]));
        assert!(k.needs_trim());
    }

    #[test]
    fn read_only_has_no_permanent_flags() {
        let mut k = KnownKeywords::new([], true, 256);
        let [_, perm] = k.before(&fetch(&["x"])).unwrap();
        let mut out = Vec::new();
        perm.encode(&mut out, Default::default());
        assert_eq!(out, b"* OK [PERMANENTFLAGS ()] flags permitted\r\n");
    }
}
