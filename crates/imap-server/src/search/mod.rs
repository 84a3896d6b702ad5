//! Evaluation of SEARCH criteria (RFC 9051 §6.4.4) against one message.
//!
//! Three-valued: [`eval`] answers `None` when a key needs the message's contents and they are
//! not loaded. The command first evaluates every message with metadata only (flags, size,
//! dates, UIDs) and loads and parses only the messages still undecided — so a search that
//! the cheap keys already settle never reads a blob.

mod content;
pub(crate) mod context;

pub(crate) use content::Content;

use imap_proto::{Flag, SearchKey as K, SequenceSet};
use store::{SystemFlags, UnixTime};

use crate::view::Msg;

/// What the session knows about one message without reading it.
pub(crate) struct MsgCtx<'a> {
    pub msg: Msg<'a>,
    pub seq: u32,
    /// `\Recent` as this session tracks it (RFC 3501 §2.3.2).
    pub recent: bool,
    /// Largest sequence number and UID of the view, for `*` (RFC 9051 §9).
    pub exists: u32,
    pub max_uid: u32,
    /// In the result saved by `SEARCH RETURN (SAVE)`, which `$` names (RFC 5182 §2.1).
    pub saved: bool,
    /// The time SEARCH started, for OLDER/YOUNGER (RFC 5032).
    pub now: UnixTime,
    /// The message's save date (RFC 8514; `Selected::save_date_of`).
    pub save_date: UnixTime,
}

const SECS_PER_DAY: i64 = 86_400;

/// The time now, for OLDER/YOUNGER (RFC 5032).
pub(crate) fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The day (since 1970-01-01, UTC) of a stored internal date. RFC 9051 §6.4.4: BEFORE/ON/
/// SINCE compare dates only, disregarding time and timezone; the store keeps UTC instants.
fn day_of(t: UnixTime) -> i64 {
    t.div_euclid(SECS_PER_DAY)
}

fn flag(meta: &Msg<'_>, bit: SystemFlags) -> bool {
    meta.system.contains(bit)
}

fn keyword(meta: &Msg<'_>, f: &Flag) -> bool {
    let bit = match f {
        Flag::Seen => SystemFlags::SEEN,
        Flag::Answered => SystemFlags::ANSWERED,
        Flag::Flagged => SystemFlags::FLAGGED,
        Flag::Deleted => SystemFlags::DELETED,
        Flag::Draft => SystemFlags::DRAFT,
        // RFC 9051 §2.3.2: keywords are case-insensitive.
        Flag::Keyword(k) => {
            return meta
                .keywords
                .iter()
                .any(|x| x.eq_ignore_ascii_case(k.as_str()));
        }
        Flag::Extension(_) => return false,
    };
    flag(meta, bit)
}

/// `$` without a saved result is the empty set (RFC 5182 §2.1); SAVE is not implemented, so
/// it is always empty here.
fn in_set(set: &SequenceSet, n: u32, max: u32, saved: bool) -> bool {
    if set.is_saved() {
        return saved;
    }
    max > 0 && set.contains(n, max)
}

/// Whether `key` looks at internal dates, sizes or MODSEQs (which the view may not have read
/// yet).
pub(crate) fn needs_details(key: &K) -> bool {
    match key {
        K::ModSeq { .. }
        | K::Larger(_)
        | K::Smaller(_)
        | K::Before(_)
        | K::On(_)
        | K::Since(_)
        | K::Older(_)
        | K::Younger(_)
        | K::SavedBefore(_)
        | K::SavedOn(_)
        | K::SavedSince(_) => true,
        K::Not(k) => needs_details(k),
        K::Or(a, b) => needs_details(a) || needs_details(b),
        K::And(keys) => keys.iter().any(needs_details),
        _ => false,
    }
}

/// Whether `key` looks at save dates (RFC 8514 §4), which are read from the store first.
pub(crate) fn uses_save_date(key: &K) -> bool {
    match key {
        K::SavedBefore(_) | K::SavedOn(_) | K::SavedSince(_) => true,
        K::Not(k) => uses_save_date(k),
        K::Or(a, b) => uses_save_date(a) || uses_save_date(b),
        K::And(keys) => keys.iter().any(uses_save_date),
        _ => false,
    }
}

/// Whether `key` uses MODSEQ (RFC 7162 §3.1.5: a CONDSTORE-enabling command, answered with
/// the highest MODSEQ of the result).
pub(crate) fn uses_modseq(key: &K) -> bool {
    match key {
        K::ModSeq { .. } => true,
        K::Not(k) => uses_modseq(k),
        K::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        K::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// Whether `key` looks past the header (BODY, TEXT): else the header alone decides it, and
/// the store's cached header serves it without reading the message.
pub(crate) fn needs_body(key: &K) -> bool {
    match key {
        K::Body(_) | K::Text(_) => true,
        K::Not(k) => needs_body(k),
        K::Or(a, b) => needs_body(a) || needs_body(b),
        K::And(keys) => keys.iter().any(needs_body),
        _ => false,
    }
}

/// Evaluates `key`; `None` when it depends on contents and `content` is `None`.
pub(crate) fn eval(key: &K, m: &MsgCtx<'_>, content: Option<&Content<'_>>) -> Option<bool> {
    let meta = &m.msg;
    let text = |f: &dyn Fn(&Content<'_>) -> bool| content.map(f);
    Some(match key {
        K::All => true,
        K::Answered => flag(meta, SystemFlags::ANSWERED),
        K::Deleted => flag(meta, SystemFlags::DELETED),
        K::Draft => flag(meta, SystemFlags::DRAFT),
        K::Flagged => flag(meta, SystemFlags::FLAGGED),
        K::Seen => flag(meta, SystemFlags::SEEN),
        K::Unanswered => !flag(meta, SystemFlags::ANSWERED),
        K::Undeleted => !flag(meta, SystemFlags::DELETED),
        K::Undraft => !flag(meta, SystemFlags::DRAFT),
        K::Unflagged => !flag(meta, SystemFlags::FLAGGED),
        K::Unseen => !flag(meta, SystemFlags::SEEN),
        // RFC 3501 §6.4.4: NEW is RECENT UNSEEN; OLD is NOT RECENT.
        K::New => m.recent && !flag(meta, SystemFlags::SEEN),
        K::Old | K::Unrecent => !m.recent,
        K::Recent => m.recent,
        K::Keyword(f) => keyword(meta, f),
        K::Unkeyword(f) => !keyword(meta, f),
        K::Larger(n) => meta.size > *n,
        K::Smaller(n) => meta.size < *n,
        K::Before(d) => day_of(meta.internal_date) < d.days_since_epoch(),
        K::On(d) => day_of(meta.internal_date) == d.days_since_epoch(),
        K::Since(d) => day_of(meta.internal_date) >= d.days_since_epoch(),
        // RFC 8514 §4: as BEFORE/ON/SINCE, on the save date.
        K::SavedBefore(d) => day_of(m.save_date) < d.days_since_epoch(),
        K::SavedOn(d) => day_of(m.save_date) == d.days_since_epoch(),
        K::SavedSince(d) => day_of(m.save_date) >= d.days_since_epoch(),
        // Every mailbox here keeps save dates.
        K::SaveDateSupported => true,
        // RFC 5032 §3: the interval is inclusive.
        K::Older(s) => m.now.saturating_sub(meta.internal_date) >= i64::from(*s),
        K::Younger(s) => m.now.saturating_sub(meta.internal_date) <= i64::from(*s),
        K::Uid(set) => in_set(set, meta.uid, m.max_uid, m.saved),
        K::SequenceSet(set) => in_set(set, m.seq, m.exists, m.saved),
        // RFC 7162 §3.1.5: MODSEQ equal to or greater than the value. The entry name and type
        // forms are treated alike: the server keeps one MODSEQ per message, not per flag.
        K::ModSeq { modseq, .. } => meta.modseq >= *modseq,
        K::SentBefore(d) => {
            return text(&|c| c.sent_day().is_some_and(|x| x < d.days_since_epoch()));
        }
        K::SentOn(d) => return text(&|c| c.sent_day() == Some(d.days_since_epoch())),
        K::SentSince(d) => {
            return text(&|c| c.sent_day().is_some_and(|x| x >= d.days_since_epoch()));
        }
        K::From(s) => return text(&|c| c.address_header("From", s)),
        K::To(s) => return text(&|c| c.address_header("To", s)),
        K::Cc(s) => return text(&|c| c.address_header("Cc", s)),
        K::Bcc(s) => return text(&|c| c.address_header("Bcc", s)),
        K::Subject(s) => return text(&|c| c.subject(s)),
        K::Header(name, s) => return text(&|c| c.header(name, s)),
        K::Body(s) => return text(&|c| c.body(s)),
        K::Text(s) => return text(&|c| c.text(s)),
        K::Not(k) => return eval(k, m, content).map(|b| !b),
        K::Or(a, b) => {
            return match (eval(a, m, content), eval(b, m, content)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            };
        }
        K::And(keys) => {
            let mut unknown = false;
            for k in keys {
                match eval(k, m, content) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => unknown = true,
                }
            }
            return if unknown { None } else { Some(true) };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seen: bool) -> Msg<'static> {
        let mut system = SystemFlags::empty();
        if seen {
            system.insert(SystemFlags::SEEN);
        }
        Msg {
            uid: 7,
            size: 100,
            internal_date: 1_700_000_000,
            system,
            keywords: &[],
            modseq: 40,
        }
    }

    fn ctx(msg: &Msg<'static>) -> MsgCtx<'static> {
        MsgCtx {
            msg: *msg,
            seq: 1,
            recent: false,
            saved: false,
            exists: 1,
            max_uid: 7,
            now: 1_700_000_100,
            // Saved a day after it was received.
            save_date: 1_700_086_400,
        }
    }

    /// RFC 8514 §4: SAVEDBEFORE/SAVEDON/SAVEDSINCE compare the save date's day, not the
    /// internal date's; SAVEDATESUPPORTED matches every message.
    #[test]
    fn saved_dates_use_the_save_date() {
        let m = meta(false);
        let c = ctx(&m);
        let d = |y, mo, day| imap_proto::Date::new(y, mo, day).unwrap();
        // Internal date 2023-11-14, save date 2023-11-15.
        assert_eq!(eval(&K::SavedOn(d(2023, 11, 15)), &c, None), Some(true));
        assert_eq!(eval(&K::SavedOn(d(2023, 11, 14)), &c, None), Some(false));
        assert_eq!(eval(&K::On(d(2023, 11, 14)), &c, None), Some(true));
        assert_eq!(eval(&K::SavedSince(d(2023, 11, 15)), &c, None), Some(true));
        assert_eq!(eval(&K::SavedSince(d(2023, 11, 16)), &c, None), Some(false));
        assert_eq!(
            eval(&K::SavedBefore(d(2023, 11, 15)), &c, None),
            Some(false)
        );
        assert_eq!(eval(&K::SavedBefore(d(2023, 11, 16)), &c, None), Some(true));
        assert_eq!(eval(&K::SaveDateSupported, &c, None), Some(true));
        assert!(uses_save_date(&K::Not(Box::new(K::SavedOn(d(2023, 1, 1))))));
        assert!(!uses_save_date(&K::On(d(2023, 1, 1))));
    }

    /// The cheap pass settles what it can, so undecided messages are the only ones loaded.
    #[test]
    fn cheap_keys_decide_without_content() {
        let key = K::And(vec![K::Seen, K::Body(b"x".to_vec())]);
        let unseen = meta(false);
        assert_eq!(eval(&key, &ctx(&unseen), None), Some(false));
        let seen = meta(true);
        assert_eq!(eval(&key, &ctx(&seen), None), None);
        let or = K::Or(Box::new(K::Seen), Box::new(K::Text(b"x".to_vec())));
        assert_eq!(eval(&or, &ctx(&seen), None), Some(true));
        assert_eq!(eval(&or, &ctx(&unseen), None), None);
        let not = K::Not(Box::new(K::Subject(b"x".to_vec())));
        assert_eq!(eval(&not, &ctx(&seen), None), None);
    }

    /// RFC 7162 §3.1.5: MODSEQ n matches messages whose MODSEQ is n or higher.
    #[test]
    fn modseq_is_inclusive() {
        let m = meta(false);
        let k = |n| K::ModSeq {
            entry: None,
            modseq: n,
        };
        assert_eq!(eval(&k(40), &ctx(&m), None), Some(true));
        assert_eq!(eval(&k(41), &ctx(&m), None), Some(false));
        assert!(uses_modseq(&K::Not(Box::new(k(1)))));
        assert!(needs_details(&k(1)));
        assert!(!uses_modseq(&K::Seen));
    }

    #[test]
    fn content_keys_with_content() {
        let raw = b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\nbody\r\n";
        let c = Content::parse(raw);
        let m = meta(false);
        let key = K::And(vec![K::Unseen, K::Subject("CAFÉ".as_bytes().to_vec())]);
        assert_eq!(eval(&key, &ctx(&m), Some(&c)), Some(true));
        let key = K::Body(b"nothere".to_vec());
        assert_eq!(eval(&key, &ctx(&m), Some(&c)), Some(false));
    }

    #[test]
    fn dates_sizes_and_sets() {
        let m = meta(false);
        let d = |y, mo, da| imap_proto::Date::new(y, mo, da).unwrap();
        // 1_700_000_000 is 2023-11-14 22:13:20 UTC.
        assert_eq!(eval(&K::On(d(2023, 11, 14)), &ctx(&m), None), Some(true));
        assert_eq!(
            eval(&K::Before(d(2023, 11, 14)), &ctx(&m), None),
            Some(false)
        );
        assert_eq!(
            eval(&K::Since(d(2023, 11, 15)), &ctx(&m), None),
            Some(false)
        );
        assert_eq!(eval(&K::Larger(100), &ctx(&m), None), Some(false));
        assert_eq!(eval(&K::Smaller(101), &ctx(&m), None), Some(true));
        assert_eq!(eval(&K::Younger(100), &ctx(&m), None), Some(true));
        assert_eq!(eval(&K::Older(101), &ctx(&m), None), Some(false));
        let set = |s| SequenceSet::parse(s).unwrap();
        assert_eq!(eval(&K::Uid(set("5:*")), &ctx(&m), None), Some(true));
        assert_eq!(eval(&K::Uid(set("8:9")), &ctx(&m), None), Some(false));
        assert_eq!(
            eval(&K::Uid(SequenceSet::saved()), &ctx(&m), None),
            Some(false)
        );
    }
}
