//! Delivery Status Notification parameters of MAIL and RCPT (RFC 3461 §4) and `xtext`.
//!
//! ENVID and ORCPT values are kept in their xtext (wire) form after validation: they are
//! passed on unchanged to the next hop (RFC 3461 §5.2.1), and [`xtext_decode`] gives the
//! text for a DSN report.

use crate::ParseError;

/// RFC 3461 §4.4: the ENVID value is at most 100 characters.
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: the ORCPT value is at most 500 characters.
pub const MAX_ORCPT: usize = 500;

/// `RET=FULL / HDRS` — RFC 3461 §4.3: what a failure DSN returns of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// `NOTIFY=` — RFC 3461 §4.1.
///
/// `notify-esmtp-value = "NEVER" / 1#notify-list-element`,
/// `notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };
}

/// The RCPT parameters yubin supports (RFC 3461 §4.1, §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// `ORCPT=addr-type;xtext`, validated, kept as sent except that the addr-type is
    /// upper-cased (`RFC822;u+40d.example` → `RFC822;u+40d.example`).
    pub orcpt: Option<String>,
}

/// Whether `s` is a valid `xtext` — RFC 3461 §4:
/// `xtext = *( xchar / hexchar )`, `xchar` = `!`..`~` except `+` and `=`,
/// `hexchar = "+" 2(%x30-39 / %x41-46)` (upper-case hex digits only).
pub fn is_xtext(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex =
                    |c: Option<&u8>| c.is_some_and(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            b'!'..=b'~' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Decodes xtext (RFC 3461 §4); `None` when `s` is not valid xtext.
pub fn xtext_decode(s: &str) -> Option<Vec<u8>> {
    if !is_xtext(s) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Encodes bytes as xtext (RFC 3461 §4): `+`, `=`, controls, space and non-ASCII as `+XX`.
pub fn xtext_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &c in bytes {
        match c {
            b'+' | b'=' => out.push_str(&format!("+{c:02X}")),
            b'!'..=b'~' => out.push(c as char),
            _ => out.push_str(&format!("+{c:02X}")),
        }
    }
    out
}

/// `ret-value = "FULL" / "HDRS"` — RFC 3461 §4.3 (case-insensitive).
pub(crate) fn parse_ret(v: &str) -> Result<Ret, ParseError> {
    if v.eq_ignore_ascii_case("FULL") {
        Ok(Ret::Full)
    } else if v.eq_ignore_ascii_case("HDRS") {
        Ok(Ret::Hdrs)
    } else {
        Err(ParseError::Syntax("Bad RET parameter"))
    }
}

/// `envid-parameter = "ENVID=" xtext` — RFC 3461 §4.4, at most 100 characters.
pub(crate) fn parse_envid(v: &str) -> Result<String, ParseError> {
    if v.is_empty() || v.len() > MAX_ENVID || !is_xtext(v) {
        return Err(ParseError::Syntax("Bad ENVID parameter"));
    }
    Ok(v.to_string())
}

/// RFC 3461 §4.1; NEVER cannot be combined with the others.
pub(crate) fn parse_notify(v: &str) -> Result<Notify, ParseError> {
    let bad = ParseError::Syntax("Bad NOTIFY parameter");
    if v.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::NEVER);
    }
    let mut n = Notify::NEVER;
    for item in v.split(',') {
        let flag = if item.eq_ignore_ascii_case("SUCCESS") {
            &mut n.success
        } else if item.eq_ignore_ascii_case("FAILURE") {
            &mut n.failure
        } else if item.eq_ignore_ascii_case("DELAY") {
            &mut n.delay
        } else {
            return Err(bad);
        };
        *flag = true;
    }
    Ok(n)
}

/// `orcpt-parameter = "ORCPT=" original-recipient-address`,
/// `original-recipient-address = addr-type ";" xtext`, `addr-type = atom` — RFC 3461 §4.2.
pub(crate) fn parse_orcpt(v: &str) -> Result<String, ParseError> {
    let bad = ParseError::Syntax("Bad ORCPT parameter");
    let (kind, addr) = v.split_once(';').ok_or(bad.clone())?;
    let atext = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c);
    if v.len() > MAX_ORCPT
        || kind.is_empty()
        || !kind.bytes().all(atext)
        || addr.is_empty()
        || !is_xtext(addr)
    {
        return Err(bad);
    }
    Ok(format!("{};{addr}", kind.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_rfc3461() {
        assert!(is_xtext("u+40d.example"));
        assert!(is_xtext(""));
        assert!(is_xtext("!~"));
        assert!(!is_xtext("a=b"));
        assert!(!is_xtext("a b"));
        assert!(!is_xtext("+4"));
        assert!(!is_xtext("+4g"));
        // Only upper-case hex digits are hexchar.
        assert!(!is_xtext("+2b"));
        assert!(!is_xtext("\u{e9}"));
        assert_eq!(xtext_decode("a+2Bb+3Dc").as_deref(), Some(&b"a+b=c"[..]));
        assert_eq!(xtext_decode("+2"), None);
        assert_eq!(xtext_encode(b"a+b=c d\xc3"), "a+2Bb+3Dc+20d+C3");
        for s in ["", "x", "+=+= ", "Ümlaut <u@d>"] {
            assert_eq!(
                xtext_decode(&xtext_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
    }

    #[test]
    fn notify_values() {
        assert_eq!(parse_notify("never"), Ok(Notify::NEVER));
        assert_eq!(
            parse_notify("SUCCESS,failure"),
            Ok(Notify {
                success: true,
                failure: true,
                delay: false
            })
        );
        assert!(parse_notify("NEVER,SUCCESS").is_err());
        assert!(parse_notify("").is_err());
        assert!(parse_notify("DELAY,").is_err());
        assert!(parse_notify("SOMETIMES").is_err());
    }

    #[test]
    fn orcpt_envid_ret() {
        assert_eq!(
            parse_orcpt("rfc822;u+40d.example").as_deref(),
            Ok("RFC822;u+40d.example")
        );
        assert!(parse_orcpt("rfc822").is_err());
        assert!(parse_orcpt(";u@d").is_err());
        assert!(parse_orcpt("rfc822;").is_err());
        assert!(parse_orcpt("rfc 822;u").is_err());
        assert!(parse_orcpt("rfc822;a=b").is_err());
        assert!(parse_orcpt(&format!("rfc822;{}", "a".repeat(500))).is_err());
        assert_eq!(parse_envid("QQ314159").as_deref(), Ok("QQ314159"));
        assert!(parse_envid(&"a".repeat(101)).is_err());
        assert!(parse_envid("").is_err());
        assert_eq!(parse_ret("hdrs"), Ok(Ret::Hdrs));
        assert_eq!(parse_ret("FULL"), Ok(Ret::Full));
        assert!(parse_ret("ALL").is_err());
    }
}
