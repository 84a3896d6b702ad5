//! SEARCH and UID SEARCH — RFC 9051 §6.4.4, with ESEARCH return options (RFC 4731 §3,
//! RFC 9051), SAVE (RFC 5182), CONTEXT / UPDATE / PARTIAL (RFC 5267 §4, RFC 9394), MODSEQ
//! (RFC 7162 §3.1.5), OLDER/YOUNGER (RFC 5032) and the RFC 3501 keys NEW/OLD/RECENT/UNRECENT.

use super::date::date;
use super::sequence::sequence_set;
use super::{CommandBody, Cursor, MAX_DEPTH, PResult, SequenceSet};
use crate::types::{Atom, Date, Flag};

/// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"` — RFC 9051 §9, RFC 5182;
/// `=/ modifier-context / modifier-partial / modifier-update` — RFC 5267 §5, RFC 9394 §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturnOption {
    Min,
    Max,
    All,
    Count,
    Save,
    /// `CONTEXT`: a hint that the search will be reused (RFC 5267 §4.2); servers may ignore it.
    Context,
    /// `UPDATE`: keep the result current with `ADDTO` / `REMOVEFROM` (RFC 5267 §4.3).
    Update,
    /// `PARTIAL range` (RFC 5267 §4.4, RFC 9394 §3.1).
    Partial(PartialRange),
}

/// `partial-range = partial-range-first / partial-range-last`;
/// `partial-range-first = nz-number ":" nz-number`;
/// `partial-range-last = MINUS nz-number ":" MINUS nz-number` — RFC 9394 §4.
///
/// Kept normalised: `low <= high` (RFC 9394: "500:400 is the same as 400:500"). With
/// `from_end`, `-1` is the last result, `-2` the one before it (RFC 9394 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialRange {
    pub low: u32,
    pub high: u32,
    pub from_end: bool,
}

impl PartialRange {
    /// The indexes (0-based, ascending) of the results of a list of `len` this range picks;
    /// empty when it starts past the end (RFC 5267 §4.4: the results that exist are
    /// returned).
    pub fn indexes(&self, len: usize) -> std::ops::Range<usize> {
        let (low, high) = (self.low as usize, self.high as usize);
        if self.from_end {
            // -high ..= -low, counted from the end.
            len.saturating_sub(high)..len.saturating_sub(low - 1)
        } else {
            (low - 1).min(len)..high.min(len)
        }
    }
}

impl std::fmt::Display for PartialRange {
    /// The wire form, normalised (`2:4`, `-1:-100`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from_end {
            write!(f, "-{}:-{}", self.low, self.high)
        } else {
            write!(f, "{}:{}", self.low, self.high)
        }
    }
}

/// `partial-range` — RFC 9394 §4. Both ends carry the same sign; `*` and 0 are refused.
pub(crate) fn partial_range(c: &mut Cursor<'_>) -> PResult<PartialRange> {
    let first_neg = c.eat(b'-');
    let a = c.nz_number().map_err(|_| "bad PARTIAL range")?;
    c.expect(b':', "bad PARTIAL range")?;
    let second_neg = c.eat(b'-');
    let b = c.nz_number().map_err(|_| "bad PARTIAL range")?;
    if first_neg != second_neg {
        return Err("PARTIAL range ends must have the same sign");
    }
    Ok(PartialRange {
        low: a.min(b),
        high: a.max(b),
        from_end: first_neg,
    })
}

/// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`
/// — RFC 4466 §2.6 (after `RETURN` and its space). Shared by SEARCH and SORT (RFC 5267 §3).
///
/// RFC 5267 §4.4 / RFC 9394 §3.1: at most one PARTIAL or ALL; a repeated UPDATE makes no
/// sense either. All are syntax errors (BAD).
pub(crate) fn return_options(c: &mut Cursor<'_>) -> PResult<Vec<SearchReturnOption>> {
    c.expect(b'(', "expected '(' after RETURN")?;
    let mut opts = Vec::new();
    while !c.eat(b')') {
        if !opts.is_empty() {
            c.sp()?;
        }
        let atom = c.atom()?;
        let opt = match atom.as_str().to_ascii_uppercase().as_str() {
            "MIN" => SearchReturnOption::Min,
            "MAX" => SearchReturnOption::Max,
            "ALL" => SearchReturnOption::All,
            "COUNT" => SearchReturnOption::Count,
            "SAVE" => SearchReturnOption::Save,
            "CONTEXT" => SearchReturnOption::Context,
            "UPDATE" => SearchReturnOption::Update,
            "PARTIAL" => {
                c.sp()?;
                SearchReturnOption::Partial(partial_range(c)?)
            }
            // RFC 4731 §3.1: an unknown return option is an error (BAD).
            _ => return Err("unknown SEARCH return option"),
        };
        let windows = |o: &SearchReturnOption| {
            matches!(o, SearchReturnOption::All | SearchReturnOption::Partial(_))
        };
        if (windows(&opt) && opts.iter().any(windows))
            || (opt == SearchReturnOption::Update && opts.contains(&opt))
        {
            return Err("only one PARTIAL or ALL, and one UPDATE, may be given");
        }
        opts.push(opt);
    }
    Ok(opts)
}

/// One `search-key` — RFC 9051 §9. Strings are kept as bytes: their charset is the
/// command's `CHARSET` (UTF-8 by default, RFC 9051 §6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    Seen,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    /// RFC 3501 only: `\Recent` and not `\Seen`.
    New,
    Old,
    Recent,
    Unrecent,
    Keyword(Flag),
    Unkeyword(Flag),
    Bcc(Vec<u8>),
    Body(Vec<u8>),
    Cc(Vec<u8>),
    From(Vec<u8>),
    Subject(Vec<u8>),
    Text(Vec<u8>),
    To(Vec<u8>),
    /// `"HEADER" SP header-fld-name SP astring`.
    Header(String, Vec<u8>),
    Before(Date),
    On(Date),
    Since(Date),
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    /// `SAVEDBEFORE` / `SAVEDON` / `SAVEDSINCE date` — RFC 8514 §4: the save date's day.
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    /// `SAVEDATESUPPORTED` — RFC 8514 §4: every message when the mailbox has save dates.
    SaveDateSupported,
    Larger(u64),
    Smaller(u64),
    /// `OLDER n` / `YOUNGER n` in seconds — RFC 5032 §3.
    Older(u32),
    Younger(u32),
    Uid(SequenceSet),
    SequenceSet(SequenceSet),
    /// `"MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer` — RFC 7162 §3.1.5;
    /// the entry name and type are kept (the session may ignore them, §3.1.5 allows it).
    ModSeq {
        entry: Option<(String, Atom)>,
        modseq: u64,
    },
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `"(" search-key *(SP search-key) ")"`, and the top level: all must match.
    And(Vec<SearchKey>),
}

/// `search = "SEARCH" [search-return-opts] SP search-program`;
/// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`;
/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)` — RFC 9051 §6.4.4.
///
/// `return_opts` is `None` without RETURN (a plain `SEARCH` answer for rev1) and
/// `Some(vec![])` for `RETURN ()`, which means `ALL` (RFC 4731 §3.1).
pub(crate) fn search(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut return_opts = None;
    if c.eat_keyword("RETURN") {
        c.sp()?;
        return_opts = Some(return_options(c)?);
        c.sp()?;
    }
    let mut charset = None;
    if c.eat_keyword("CHARSET") {
        c.sp()?;
        charset = Some(c.astring_utf8()?);
        c.sp()?;
    }
    let criteria = search_keys(c)?;
    Ok(CommandBody::Search {
        uid,
        return_opts,
        charset,
        criteria,
    })
}

/// `search-key *(SP search-key)`, the rest of a search program: one key, or all of them
/// as [`SearchKey::And`].
pub(crate) fn search_keys(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    let mut keys = vec![search_key(c, 0)?];
    while c.eat(b' ') {
        keys.push(search_key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

/// `search-key` — RFC 9051 §9.
pub(crate) fn search_key(c: &mut Cursor<'_>, depth: usize) -> PResult<SearchKey> {
    use SearchKey as K;
    if depth > MAX_DEPTH {
        return Err("search nested too deeply");
    }
    match c.peek() {
        Some(b'(') => {
            c.eat(b'(');
            let mut keys = vec![search_key(c, depth + 1)?];
            while !c.eat(b')') {
                c.sp()?;
                keys.push(search_key(c, depth + 1)?);
            }
            return Ok(K::And(keys));
        }
        Some(b'0'..=b'9' | b'*' | b'$') => return sequence_set(c).map(K::SequenceSet),
        _ => {}
    }
    let name = c.atom().map_err(|_| "expected a search key")?;
    let name = name.as_str().to_ascii_uppercase();
    let simple = match name.as_str() {
        "ALL" => Some(K::All),
        "ANSWERED" => Some(K::Answered),
        "DELETED" => Some(K::Deleted),
        "DRAFT" => Some(K::Draft),
        "FLAGGED" => Some(K::Flagged),
        "SEEN" => Some(K::Seen),
        "UNANSWERED" => Some(K::Unanswered),
        "UNDELETED" => Some(K::Undeleted),
        "UNDRAFT" => Some(K::Undraft),
        "UNFLAGGED" => Some(K::Unflagged),
        "UNSEEN" => Some(K::Unseen),
        "NEW" => Some(K::New),
        "OLD" => Some(K::Old),
        "RECENT" => Some(K::Recent),
        "UNRECENT" => Some(K::Unrecent),
        "SAVEDATESUPPORTED" => Some(K::SaveDateSupported),
        _ => None,
    };
    if let Some(key) = simple {
        return Ok(key);
    }
    c.sp()?;
    Ok(match name.as_str() {
        "BCC" => K::Bcc(c.astring()?),
        "BODY" => K::Body(c.astring()?),
        "CC" => K::Cc(c.astring()?),
        "FROM" => K::From(c.astring()?),
        "SUBJECT" => K::Subject(c.astring()?),
        "TEXT" => K::Text(c.astring()?),
        "TO" => K::To(c.astring()?),
        "HEADER" => {
            let field = c.astring_utf8()?;
            c.sp()?;
            K::Header(field, c.astring()?)
        }
        "KEYWORD" => K::Keyword(flag_keyword(c)?),
        "UNKEYWORD" => K::Unkeyword(flag_keyword(c)?),
        "BEFORE" => K::Before(date(c)?),
        "ON" => K::On(date(c)?),
        "SINCE" => K::Since(date(c)?),
        "SENTBEFORE" => K::SentBefore(date(c)?),
        "SENTON" => K::SentOn(date(c)?),
        "SENTSINCE" => K::SentSince(date(c)?),
        "SAVEDBEFORE" => K::SavedBefore(date(c)?),
        "SAVEDON" => K::SavedOn(date(c)?),
        "SAVEDSINCE" => K::SavedSince(date(c)?),
        "LARGER" => K::Larger(c.number64()?),
        "SMALLER" => K::Smaller(c.number64()?),
        "OLDER" => K::Older(c.nz_number()?),
        "YOUNGER" => K::Younger(c.nz_number()?),
        "UID" => K::Uid(sequence_set(c)?),
        "MODSEQ" => modseq(c)?,
        "NOT" => K::Not(Box::new(search_key(c, depth + 1)?)),
        "OR" => {
            let a = search_key(c, depth + 1)?;
            c.sp()?;
            K::Or(Box::new(a), Box::new(search_key(c, depth + 1)?))
        }
        _ => return Err("unknown search key"),
    })
}

/// `flag-keyword = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom`
/// — RFC 9051 §9.
fn flag_keyword(c: &mut Cursor<'_>) -> PResult<Flag> {
    Ok(Flag::Keyword(c.atom().map_err(|_| "expected a keyword")?))
}

/// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`;
/// `search-modseq-ext = SP entry-name SP entry-type-req`;
/// `entry-type-req = entry-type-resp / "all"` — RFC 7162 §7.
fn modseq(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    let mut entry = None;
    if c.peek() == Some(b'"') {
        let name = String::from_utf8(c.quoted()?).map_err(|_| "bad MODSEQ entry name")?;
        c.sp()?;
        let kind = c.atom()?;
        if !["priv", "shared", "all"]
            .iter()
            .any(|k| kind.eq_ignore_case(k))
        {
            return Err("bad MODSEQ entry type");
        }
        c.sp()?;
        entry = Some((name, kind));
    }
    Ok(SearchKey::ModSeq {
        entry,
        modseq: c.number64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> PResult<SearchKey> {
        let mut c = Cursor::new(s.as_bytes());
        let k = search_key(&mut c, 0)?;
        if c.rest().is_empty() {
            Ok(k)
        } else {
            Err("trailing")
        }
    }

    #[test]
    fn keys() {
        assert_eq!(key("flagged"), Ok(SearchKey::Flagged));
        assert_eq!(key("LARGER 1024"), Ok(SearchKey::Larger(1024)));
        let k = key("OR (FROM \"Smith\" SINCE 1-Feb-1994) NOT 2:4").unwrap();
        let SearchKey::Or(a, b) = k else { panic!() };
        assert!(matches!(*a, SearchKey::And(ref v) if v.len() == 2));
        assert!(matches!(*b, SearchKey::Not(ref n) if matches!(**n, SearchKey::SequenceSet(_))));
        assert_eq!(
            key("HEADER Message-ID <x@y>"),
            Ok(SearchKey::Header("Message-ID".into(), b"<x@y>".to_vec()))
        );
        assert_eq!(key("UID $"), Ok(SearchKey::Uid(SequenceSet::saved())));
        assert_eq!(
            key("MODSEQ \"/flags/\\\\draft\" all 620162338"),
            Ok(SearchKey::ModSeq {
                entry: Some(("/flags/\\draft".into(), Atom::new("all").unwrap())),
                modseq: 620_162_338
            })
        );
        assert_eq!(
            key("KEYWORD $Junk"),
            Ok(SearchKey::Keyword(Flag::parse("$Junk").unwrap()))
        );
        assert_eq!(
            key("SUBJECT {3}\r\nabc"),
            Ok(SearchKey::Subject(b"abc".to_vec()))
        );
    }

    #[test]
    fn bad_keys() {
        let deep = format!("{}ALL{}", "(".repeat(50), ")".repeat(50));
        let nots = "NOT ".repeat(10_000) + "ALL";
        for bad in [
            "(ALL",
            "ALL)",
            "()",
            "NOT",
            "OR ALL",
            "SINCE 31-Feb-2000",
            "FOO",
            "0",
            "UID 0:1",
            "LARGER x",
            "KEYWORD \\Seen",
            "MODSEQ \"/flags/x\" bogus 1",
            deep.as_str(),
            nots.as_str(),
        ] {
            assert!(key(bad).is_err(), "{bad}");
        }
    }
}
