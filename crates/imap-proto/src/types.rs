//! Validated protocol values: a value of these types is always well-formed, because the only
//! ways to build one check the grammar (RFC 9051 §9).

use std::fmt;

/// `ATOM-CHAR = <any CHAR except atom-specials>` — RFC 9051 §9.
///
/// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
/// resp-specials`; `CHAR` is 7-bit, so 8-bit bytes are never atom characters.
pub fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials` — RFC 9051 §9.
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials` — RFC 9051 §9.
pub fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

/// `tag-char = <any ASTRING-CHAR except "+">`; a tag is `1*tag-char` — RFC 9051 §9.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// Checks the grammar; `None` for an empty tag or a forbidden character.
    pub fn new(s: &str) -> Option<Tag> {
        let ok = !s.is_empty() && s.bytes().all(|b| is_astring_char(b) && b != b'+');
        ok.then(|| Tag(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:?})", self.0)
    }
}

/// `atom = 1*ATOM-CHAR` — RFC 9051 §9. Case is preserved; compare with
/// [`Atom::eq_ignore_case`] where the protocol is case-insensitive.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Atom(String);

impl Atom {
    pub fn new(s: &str) -> Option<Atom> {
        (!s.is_empty() && s.bytes().all(is_atom_char)).then(|| Atom(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Atom({:?})", self.0)
    }
}

/// A message flag.
///
/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension` — RFC 9051 §9. System flags compare case-insensitively (RFC 9051 §2.3.2),
/// so they are normalised here; `\Recent` (RFC 3501 only) is an `Extension("Recent")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    Answered,
    Flagged,
    Deleted,
    Seen,
    Draft,
    /// `flag-keyword = "$MDNSent" / "$Forwarded" / ... / atom`, e.g. `$Junk`.
    Keyword(Atom),
    /// `flag-extension = "\" atom`: the atom without its backslash.
    Extension(Atom),
}

impl Flag {
    /// Builds a flag from its wire form (`\Seen`, `$Junk`); `None` if not a valid flag.
    pub fn parse(s: &str) -> Option<Flag> {
        match s.strip_prefix('\\') {
            Some(name) => {
                let atom = Atom::new(name)?;
                Some(match name.to_ascii_lowercase().as_str() {
                    "answered" => Flag::Answered,
                    "flagged" => Flag::Flagged,
                    "deleted" => Flag::Deleted,
                    "seen" => Flag::Seen,
                    "draft" => Flag::Draft,
                    _ => Flag::Extension(atom),
                })
            }
            None => Atom::new(s).map(Flag::Keyword),
        }
    }

    /// `\Recent` (RFC 3501 §2.3.2), which servers report but clients cannot store.
    pub fn recent() -> Flag {
        Flag::Extension(Atom("Recent".to_owned()))
    }

    /// Whether this is `\Recent`, which STORE and APPEND must not set (RFC 3501 §6.4.6).
    pub fn is_recent(&self) -> bool {
        matches!(self, Flag::Extension(a) if a.eq_ignore_case("Recent"))
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Keyword(a) => f.write_str(a.as_str()),
            Flag::Extension(a) => write!(f, "\\{a}"),
        }
    }
}

/// A mailbox name exactly as the client sent it (after astring decoding), always valid UTF-8.
///
/// Rev1 clients send modified UTF-7 (RFC 3501 §5.1.3), rev2 clients and clients that enabled
/// `UTF8=ACCEPT` send UTF-8 (RFC 9051 §5.1, RFC 6855 §3); [`Mailbox::decode`] gives the
/// UTF-8 name for either. `INBOX` is case-insensitive (RFC 9051 §5.1): see [`Mailbox::is_inbox`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox(String);

impl Mailbox {
    pub fn new(s: &str) -> Mailbox {
        Mailbox(s.to_owned())
    }

    /// The raw name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this names the INBOX; the name compares case-insensitively — RFC 9051 §5.1.
    pub fn is_inbox(&self) -> bool {
        self.0.eq_ignore_ascii_case("INBOX")
    }

    /// The UTF-8 name: with `utf8` (IMAP4rev2 or `UTF8=ACCEPT` enabled) the name is taken as
    /// is, otherwise it is decoded from modified UTF-7. `INBOX` in any case becomes `INBOX`.
    pub fn decode(&self, utf8: bool) -> Result<String, crate::Mutf7Error> {
        let name = if utf8 {
            self.0.clone()
        } else {
            crate::decode_mutf7(&self.0)?
        };
        Ok(normalize_inbox(&name))
    }
}

/// Spells any case of `INBOX` as `INBOX` — RFC 9051 §5.1: "INBOX" is case-insensitive. Names
/// under it (`inbox/x`) are not changed: whether they are is the server's choice.
pub fn normalize_inbox(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        name.to_owned()
    }
}

/// A secret (a password) whose `Debug` never shows its bytes, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A calendar date as in `date-text = date-day "-" date-month "-" date-year` — RFC 9051 §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Date {
    /// Checks the day against the month's length (leap years included).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let len = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (day >= 1 && day <= len).then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (negative before), for comparing with stored Unix times.
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date of a day count since 1970-01-01 (inverse of [`Date::days_since_epoch`]);
    /// `None` outside years 0..=65535.
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date::new(u16::try_from(year).ok()?, month as u8, day as u8)
    }
}

impl fmt::Display for Date {
    /// `date-text`, e.g. `1-Feb-1994`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let month = MONTHS
            .get(usize::from(self.month).wrapping_sub(1))
            .unwrap_or(&"Jan");
        write!(f, "{}-{}-{}", self.day, month, self.year)
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
/// — RFC 9051 §9, e.g. `"17-Jul-1996 02:44:25 -0700"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Offset from UTC in minutes (`-0700` is -420).
    pub zone_minutes: i16,
}

impl DateTime {
    pub fn new(date: Date, hour: u8, minute: u8, second: u8, zone_minutes: i16) -> Option<Self> {
        // Seconds up to 60 for a leap second; zones as `zone = ("+" / "-") 4DIGIT`.
        let ok = hour < 24 && minute < 60 && second <= 60 && zone_minutes.abs() < 100 * 60;
        ok.then_some(DateTime {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }

    /// Seconds since the Unix epoch (UTC).
    pub fn unix_timestamp(&self) -> i64 {
        let secs = i64::from(self.hour) * 3600 + i64::from(self.minute) * 60;
        self.date.days_since_epoch() * 86_400 + secs + i64::from(self.second)
            - i64::from(self.zone_minutes) * 60
    }

    /// The UTC date-time of a Unix timestamp, shown in the given zone offset.
    pub fn from_unix_timestamp(ts: i64, zone_minutes: i16) -> Option<DateTime> {
        if zone_minutes.abs() >= 100 * 60 {
            return None;
        }
        let local = ts.checked_add(i64::from(zone_minutes) * 60)?;
        let date = Date::from_days_since_epoch(local.div_euclid(86_400))?;
        let s = local.rem_euclid(86_400);
        DateTime::new(
            date,
            (s / 3600) as u8,
            (s / 60 % 60) as u8,
            (s % 60) as u8,
            zone_minutes,
        )
    }
}

impl fmt::Display for DateTime {
    /// The inside of `date-time` (without the quotes), day padded with a space to 2 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.date;
        let month = MONTHS
            .get(usize::from(d.month).wrapping_sub(1))
            .unwrap_or(&"Jan");
        let sign = if self.zone_minutes < 0 { '-' } else { '+' };
        let z = self.zone_minutes.unsigned_abs();
        write!(
            f,
            "{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            d.day,
            month,
            d.year,
            self.hour,
            self.minute,
            self.second,
            sign,
            z / 60,
            z % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_checks() {
        assert!(Tag::new("A001").is_some());
        assert!(Tag::new("A+1").is_none());
        assert!(Tag::new("").is_none());
        assert!(Tag::new("a b").is_none());
        assert!(Atom::new("FLAGS").is_some());
        assert!(Atom::new("fl]ags").is_none());
        assert!(Atom::new("é").is_none());
        assert_eq!(Flag::parse("\\SEEN"), Some(Flag::Seen));
        assert_eq!(
            Flag::parse("$Junk").map(|f| f.to_string()),
            Some("$Junk".into())
        );
        assert!(Flag::parse("\\").is_none());
        assert!(Flag::parse("\\Recent").is_some_and(|f| f.is_recent()));
    }

    #[test]
    fn dates() {
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(1900, 2, 29).is_none());
        assert_eq!(Date::new(1970, 1, 1).map(|d| d.days_since_epoch()), Some(0));
        let d = Date::new(1994, 2, 1).unwrap();
        assert_eq!(d.to_string(), "1-Feb-1994");
        assert_eq!(Date::from_days_since_epoch(d.days_since_epoch()), Some(d));
        let dt = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
        assert_eq!(dt.to_string(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(dt.unix_timestamp(), 837_596_665);
        assert_eq!(DateTime::from_unix_timestamp(837_596_665, -420), Some(dt));
        let early = DateTime::new(Date::new(2001, 3, 5).unwrap(), 0, 0, 0, 0).unwrap();
        assert_eq!(early.to_string(), " 5-Mar-2001 00:00:00 +0000");
    }
}
