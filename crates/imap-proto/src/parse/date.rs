//! Dates (SEARCH) and date-times (APPEND) — RFC 9051 §9.

use super::{Cursor, PResult};
use crate::types::{Date, DateTime, MONTHS};

/// `date-day = 1*2DIGIT`, `date-year = 4DIGIT`: up to `max` digits.
fn digits(c: &mut Cursor<'_>, min: usize, max: usize) -> PResult<u16> {
    let d = c.take_while(|b| b.is_ascii_digit());
    if d.len() < min || d.len() > max {
        return Err("bad date");
    }
    Ok(d.iter()
        .fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0')))
}

/// `date-month = "Jan" / "Feb" / ... / "Dec"` (case-insensitive) — RFC 9051 §9.
fn month(c: &mut Cursor<'_>) -> PResult<u8> {
    let name = c.take_while(|b| b.is_ascii_alphabetic());
    let i = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .ok_or("bad month")?;
    Ok(i as u8 + 1)
}

/// `date-text = date-day "-" date-month "-" date-year` — RFC 9051 §9.
fn date_text(c: &mut Cursor<'_>) -> PResult<Date> {
    let day = digits(c, 1, 2)?;
    c.expect(b'-', "bad date")?;
    let month = month(c)?;
    c.expect(b'-', "bad date")?;
    let year = digits(c, 4, 4)?;
    Date::new(year, month, day as u8).ok_or("invalid date")
}

/// `date = date-text / DQUOTE date-text DQUOTE` — RFC 9051 §9.
pub(crate) fn date(c: &mut Cursor<'_>) -> PResult<Date> {
    if c.eat(b'"') {
        let d = date_text(c)?;
        c.expect(b'"', "bad date")?;
        Ok(d)
    } else {
        date_text(c)
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`,
/// `date-day-fixed = (SP DIGIT) / 2DIGIT`, `time = 2DIGIT ":" 2DIGIT ":" 2DIGIT`,
/// `zone = ("+" / "-") 4DIGIT` — RFC 9051 §9. A one-digit day without the space is accepted.
pub(crate) fn date_time(c: &mut Cursor<'_>) -> PResult<DateTime> {
    c.expect(b'"', "expected a date-time")?;
    c.eat(b' ');
    let date = date_text(c)?;
    c.sp()?;
    let hour = digits(c, 2, 2)?;
    c.expect(b':', "bad time")?;
    let minute = digits(c, 2, 2)?;
    c.expect(b':', "bad time")?;
    let second = digits(c, 2, 2)?;
    c.sp()?;
    let sign: i16 = if c.eat(b'-') {
        -1
    } else {
        c.expect(b'+', "bad zone")?;
        1
    };
    let zone = digits(c, 4, 4)?;
    let (zh, zm) = (zone / 100, zone % 100);
    if zm >= 60 {
        return Err("bad zone");
    }
    c.expect(b'"', "bad date-time")?;
    let zone_minutes = sign * (zh * 60 + zm) as i16;
    DateTime::new(date, hour as u8, minute as u8, second as u8, zone_minutes)
        .ok_or("invalid date-time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            date(&mut Cursor::new(b"1-Feb-1994")),
            Ok(Date::new(1994, 2, 1).unwrap())
        );
        assert_eq!(
            date(&mut Cursor::new(b"\"01-feb-1994\"")),
            Ok(Date::new(1994, 2, 1).unwrap())
        );
        assert!(date(&mut Cursor::new(b"31-Feb-1994")).is_err());
        assert!(date(&mut Cursor::new(b"1-Foo-1994")).is_err());
        assert!(date(&mut Cursor::new(b"1-Feb-94")).is_err());
        let dt = date_time(&mut Cursor::new(b"\" 7-Feb-1994 21:52:25 -0800\"")).unwrap();
        assert_eq!(dt.to_string(), " 7-Feb-1994 21:52:25 -0800");
        assert!(date_time(&mut Cursor::new(b"\"07-Feb-1994 24:00:00 +0000\"")).is_err());
        assert!(date_time(&mut Cursor::new(b"\"07-Feb-1994 21:52:25 +0060\"")).is_err());
        assert!(date_time(&mut Cursor::new(b"\"07-Feb-1994 21:52:25\"")).is_err());
    }
}
