//! SORT, THREAD (RFC 5256), their extended forms (ESORT / CONTEXT=SORT, RFC 5267 §3; SORT=DISPLAY,
//! RFC 5957) and CANCELUPDATE (RFC 5267 §4.3.5).

use super::search::{return_options, search_keys};
use super::{CommandBody, Cursor, PResult};

/// `sort-key = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO"` — RFC 5256 §5;
/// `=/ "DISPLAYFROM" / "DISPLAYTO"` — RFC 5957 §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// `sort-criterion = ["REVERSE" SP] sort-key` — RFC 5256 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// `thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext` — RFC 5256 §5. Other
/// algorithms are refused as syntax errors (the session advertises only these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"` — RFC 5256 §5.
fn sort_criteria(c: &mut Cursor<'_>) -> PResult<Vec<SortCriterion>> {
    c.paren_list(|c| {
        let reverse = c.eat_keyword("REVERSE");
        if reverse {
            c.sp()?;
        }
        let name = c.atom().map_err(|_| "expected a sort key")?;
        let key = match name.as_str().to_ascii_uppercase().as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err("unknown sort key"),
        };
        Ok(SortCriterion { reverse, key })
    })
}

/// `search-criteria = charset 1*(SP search-key)`; `charset = atom / quoted` — RFC 5256 §5.
/// Unlike SEARCH, the charset is mandatory and comes without the `CHARSET` word.
fn search_criteria(c: &mut Cursor<'_>) -> PResult<(String, super::SearchKey)> {
    let charset = match c.peek() {
        Some(b'"') => String::from_utf8(c.quoted()?).map_err(|_| "invalid UTF-8")?,
        _ => c
            .atom()
            .map_err(|_| "expected a charset")?
            .as_str()
            .to_string(),
    };
    c.sp()?;
    Ok((charset, search_keys(c)?))
}

/// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria`
/// — RFC 5256 §5, RFC 5267 §5 (after the command name).
///
/// `return_opts` is `None` without RETURN (a `* SORT` answer) and `Some(vec![])` for
/// `RETURN ()`, which means ALL (RFC 5267 §3.3).
pub(crate) fn sort(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut return_opts = None;
    if c.eat_keyword("RETURN") {
        c.sp()?;
        return_opts = Some(return_options(c)?);
        c.sp()?;
    }
    let criteria = sort_criteria(c)?;
    c.sp()?;
    let (charset, search) = search_criteria(c)?;
    Ok(CommandBody::Sort {
        uid,
        return_opts,
        criteria,
        charset,
        search,
    })
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria` — RFC 5256 §5.
pub(crate) fn thread(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let name = c.atom().map_err(|_| "expected a threading algorithm")?;
    let algorithm = match name.as_str().to_ascii_uppercase().as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        _ => return Err("unsupported threading algorithm"),
    };
    c.sp()?;
    let (charset, search) = search_criteria(c)?;
    Ok(CommandBody::Thread {
        uid,
        algorithm,
        charset,
        search,
    })
}

/// `cancelupdate = "CANCELUPDATE" 1*(SP quoted)` — RFC 5267 §5 (literals are taken too).
pub(crate) fn cancel_update(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut tags = Vec::new();
    while c.eat(b' ') {
        let raw = c.string()?;
        tags.push(String::from_utf8(raw).map_err(|_| "invalid UTF-8")?);
    }
    if tags.is_empty() {
        return Err("CANCELUPDATE needs a tag");
    }
    Ok(CommandBody::CancelUpdate(tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::SearchKey;

    fn sort_of(s: &str) -> PResult<CommandBody> {
        let mut c = Cursor::new(s.as_bytes());
        let body = sort(&mut c, false)?;
        if c.rest().is_empty() {
            Ok(body)
        } else {
            Err("trailing")
        }
    }

    #[test]
    fn criteria() {
        let Ok(CommandBody::Sort {
            criteria, charset, ..
        }) = sort_of(" (REVERSE arrival displayFROM) utf-8 ALL")
        else {
            panic!()
        };
        assert_eq!(charset, "utf-8");
        assert_eq!(
            criteria,
            [
                SortCriterion {
                    reverse: true,
                    key: SortKey::Arrival
                },
                SortCriterion {
                    reverse: false,
                    key: SortKey::DisplayFrom
                }
            ]
        );
        let Ok(CommandBody::Sort {
            charset, search, ..
        }) = sort_of(" (DATE) \"US-ASCII\" SEEN 1:2")
        else {
            panic!()
        };
        assert_eq!(charset, "US-ASCII");
        assert!(matches!(search, SearchKey::And(ref k) if k.len() == 2));
        for bad in [
            " () UTF-8 ALL",
            " (REVERSE) UTF-8 ALL",
            " (REVERSE REVERSE DATE) UTF-8 ALL",
            " (DATE UTF-8 ALL",
            " (BOGUS) UTF-8 ALL",
            " (DATE) ALL",
            " (DATE) UTF-8",
            " DATE UTF-8 ALL",
            " RETURN (PARTIAL 1) (DATE) UTF-8 ALL",
        ] {
            assert!(sort_of(bad).is_err(), "{bad}");
        }
    }
}
