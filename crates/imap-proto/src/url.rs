//! IMAP URLs (RFC 5092) as CATENATE (RFC 4469 §3) and URLAUTH (RFC 4467 §3) use them: URLs
//! naming one message or one part of a message, absolute or relative to a base, with the
//! URLAUTH additions `;EXPIRE=` and `;URLAUTH=`.
//!
//! Only message and message-part URLs are parsed (`imessagepart`); URLs naming a server, a
//! mailbox or a search (`imessagelist`) are refused, since neither CATENATE nor URLFETCH can
//! use them (RFC 4467 §7: "The server MUST return NIL for any IMAP URL that references an
//! entire IMAP server, a list of mailboxes, an entire IMAP mailbox, or IMAP search results").
//! Percent-encoded parts are decoded; the mailbox name is UTF-8 (RFC 5092 §3.3).

use std::fmt;

use crate::parse::{Section, parse_section_spec};
use crate::types::{Date, DateTime};

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid IMAP URL: {0}")]
pub struct UrlError(pub &'static str);

type UResult<T> = Result<T, UrlError>;

/// `access = ("submit+" enc-user) / ("user+" enc-user) / "authuser" / "anonymous"`
/// — RFC 4467 §9. The user names are percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlAccess {
    Submit(String),
    User(String),
    AuthUser,
    Anonymous,
}

/// `iurlauth = iurlauth-rump [":" mechanism ":" enc-urlauth]` (the verifier is absent in a
/// GENURLAUTH rump) — RFC 4467 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAuth {
    pub access: UrlAccess,
    /// `(mechanism, token)`: the mechanism as sent (compare case-insensitively) and the
    /// token's hex digits.
    pub verifier: Option<(String, String)>,
}

/// A message or message-part IMAP URL, resolved (no longer relative).
///
/// `imessagepart = imailbox-ref iuid [isection] [ipartial]`, `imailbox-ref = enc-mailbox
/// [uidvalidity]` — RFC 5092 §11; with `[expire] ";URLAUTH=" access [":" mechanism ":"
/// enc-urlauth]` at the end — RFC 4467 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `enc-user` of `iuserinfo`, decoded; `None` when the URL (or its base) has none.
    pub user: Option<String>,
    /// `host [":" port]` as sent, lower-cased; `None` for a URL relative to a base without one.
    pub host: Option<String>,
    /// The mailbox name, decoded (UTF-8).
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    pub section: Option<Section>,
    /// `partial-range = number ["." nz-number]`: offset and optional length.
    pub partial: Option<(u64, Option<u64>)>,
    /// `expire = ";EXPIRE=" date-time` (RFC 3339) as Unix seconds.
    pub expire: Option<i64>,
    pub urlauth: Option<UrlAuth>,
}

/// What a relative URL is resolved against — RFC 4469 §3: `imap://user@server/` in the
/// authenticated state, `imap://user@server/mailbox` in the selected state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlBase {
    pub user: Option<String>,
    pub host: Option<String>,
    /// The selected mailbox (UTF-8), if any.
    pub mailbox: Option<String>,
}

impl ImapUrl {
    /// Parses an absolute URL: `imapurl = "imap://" iserver ipath-query` — RFC 5092 §11.
    pub fn parse(s: &str) -> Result<ImapUrl, UrlError> {
        ImapUrl::parse_relative(s, None)
    }

    /// Parses a URL, relative ones resolved against `base` (RFC 5092 §7, RFC 3986 §5.2):
    /// `imapurl-rel = inetwork-path / iabsolute-path / irelative-path` — RFC 5092 §11.
    pub fn parse_relative(s: &str, base: Option<&UrlBase>) -> Result<ImapUrl, UrlError> {
        if !s.is_ascii() || s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(UrlError("characters not allowed in a URL"));
        }
        if s.len() > 8192 {
            return Err(UrlError("too long"));
        }
        let scheme = s
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("imap://"));
        if let Some(rest) = if scheme {
            s.get(7..)
        } else {
            s.strip_prefix("//")
        } {
            // `"imap://" iserver ipath-query` or `inetwork-path = "//" iserver ipath-query`.
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (user, host) = server(authority)?;
            let path = path.strip_prefix('/').unwrap_or(path);
            return command(path, user, Some(host), None);
        }
        let base = base.ok_or(UrlError("a relative URL needs a base"))?;
        if let Some(path) = s.strip_prefix('/') {
            // `iabsolute-path = "/" [ icommand ]`.
            return command(path, base.user.clone(), base.host.clone(), None);
        }
        // `irelative-path`: against `imap://user@server/mailbox`, a path starting with `;`
        // keeps the base's mailbox; one starting with a name replaces the base path's last
        // segment (RFC 3986 §5.2.3 merge).
        if s.starts_with(';') {
            let mailbox = base
                .mailbox
                .clone()
                .ok_or(UrlError("a relative URL needs a selected mailbox"))?;
            return command(s, base.user.clone(), base.host.clone(), Some(mailbox));
        }
        let merged = match base.mailbox.as_deref().and_then(|m| m.rsplit_once('/')) {
            Some((parent, _)) => format!("{}/{s}", encode_component(parent)),
            None => s.to_string(),
        };
        command(&merged, base.user.clone(), base.host.clone(), None)
    }

    /// The rump of a URLAUTH-authorized URL and its verifier: RFC 4467 §6 — "The URL is
    /// split at the ':' that separates <access> from <mech>:<token> … Removal of the
    /// ':<mech>:<token>' portion of the URL MUST be the only operation applied". `None`
    /// when `s` has no `;URLAUTH=` with a verifier.
    pub fn split_rump(s: &str) -> Option<(&str, &str)> {
        let at = find_ignore_case(s, ";URLAUTH=")?;
        let colon = at + s.get(at..)?.find(':')?;
        Some((s.get(..colon)?, s.get(colon + 1..)?))
    }
}

fn find_ignore_case(s: &str, needle: &str) -> Option<usize> {
    let (h, n) = (s.as_bytes(), needle.as_bytes());
    (0..=h.len().checked_sub(n.len())?).find(|&i| {
        h.get(i..i + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(n))
    })
}

/// `iserver = [iuserinfo "@"] host [":" port]`; `iuserinfo = enc-user [iauth] / [enc-user]
/// iauth`; `iauth = ";AUTH=" ("*" / enc-auth-type)` — RFC 5092 §11. The userinfo ends at the
/// last `@` (user names may hold `@`, sent unencoded by some clients).
fn server(authority: &str) -> UResult<(Option<String>, String)> {
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if hostport.is_empty()
        || !hostport
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return Err(UrlError("bad host"));
    }
    let user = match userinfo {
        None => None,
        Some(u) => {
            // The AUTH mechanism only says how to log in; it is not part of the user name.
            let name = match find_ignore_case(u, ";AUTH=") {
                Some(i) => &u[..i],
                None => u,
            };
            if name.is_empty() {
                None
            } else {
                Some(decode_achars(name)?)
            }
        }
    };
    Ok((user, hostport.to_ascii_lowercase()))
}

/// `icommand = imessagelist / imessagepart [iurlauth]` — only the `imessagepart` form.
/// `mailbox` is given when the path starts after the mailbox (a `;`-relative URL).
fn command(
    path: &str,
    user: Option<String>,
    host: Option<String>,
    mailbox: Option<String>,
) -> UResult<ImapUrl> {
    if path.contains('?') {
        return Err(UrlError("search URLs name no message"));
    }
    // `relative`: a `;`-relative URL, whose first component comes without its slash.
    let (mailbox, mut rest, mut slashed, relative) = match mailbox {
        Some(m) => (m, path, false, true),
        None => {
            // `enc-mailbox = 1*bchar`: everything up to the first `;`, whose `/` before
            // `;UID=` belongs to `iuid`.
            let end = path.find(';').ok_or(UrlError("no UID"))?;
            let raw = &path[..end];
            let (raw, slashed) = match raw.strip_suffix('/') {
                Some(r) => (r, true),
                None => (raw, false),
            };
            if raw.is_empty() {
                return Err(UrlError("no mailbox"));
            }
            (decode_mailbox(raw)?, &path[end..], slashed, false)
        }
    };
    let mut url = ImapUrl {
        user,
        host,
        mailbox,
        uid_validity: None,
        uid: 0,
        section: None,
        partial: None,
        expire: None,
        urlauth: None,
    };
    // The parameters in their grammar order: `;UIDVALIDITY=` right after the mailbox, then
    // `/;UID=`, `/;SECTION=`, `/;PARTIAL=`, then `;EXPIRE=` and `;URLAUTH=` (no slashes).
    // `stage` is the next one allowed.
    let mut stage = 0;
    while !rest.is_empty() {
        let body = rest.strip_prefix(';').ok_or(UrlError("expected ';'"))?;
        let eq = body.find('=').ok_or(UrlError("expected '='"))?;
        let name = body[..eq].to_ascii_uppercase();
        let after = &body[eq + 1..];
        let end = after.find(';').unwrap_or(after.len());
        let mut value = &after[..end];
        rest = &after[end..];
        // A '/' at the end of a value separates the next component.
        let next_slashed = !rest.is_empty() && value.ends_with('/');
        if next_slashed {
            value = &value[..value.len() - 1];
        }
        let (rank, wants_slash) = match name.as_str() {
            "UIDVALIDITY" => (0, false),
            "UID" => (1, true),
            "SECTION" => (2, true),
            "PARTIAL" => (3, true),
            "EXPIRE" => (4, false),
            "URLAUTH" => (5, false),
            _ => return Err(UrlError("unknown URL parameter")),
        };
        let first_relative = relative && stage == 0;
        if rank < stage || (wants_slash != slashed && !first_relative) {
            return Err(UrlError("URL parameters out of order"));
        }
        stage = rank + 1;
        slashed = next_slashed;
        match rank {
            0 => url.uid_validity = Some(nz_number(value)?),
            1 => url.uid = nz_number(value)?,
            2 => {
                let spec = percent_decode(value)?;
                let spec = String::from_utf8(spec).map_err(|_| UrlError("bad section"))?;
                url.section = Some(parse_section_spec(&spec).map_err(|_| UrlError("bad section"))?);
            }
            3 => {
                let (offset, len) = match value.split_once('.') {
                    Some((o, l)) => (o, Some(l)),
                    None => (value, None),
                };
                let offset = number64(offset)?;
                let len = len.map(number64).transpose()?;
                if len == Some(0) {
                    return Err(UrlError("partial length must not be zero"));
                }
                url.partial = Some((offset, len));
            }
            4 => url.expire = Some(rfc3339(value)?),
            _ => url.urlauth = Some(urlauth(value)?),
        }
    }
    if slashed {
        return Err(UrlError("trailing '/'"));
    }
    if url.uid == 0 {
        return Err(UrlError("no UID: the URL names no message"));
    }
    if url.expire.is_some() && url.urlauth.is_none() {
        return Err(UrlError(";EXPIRE= needs ;URLAUTH="));
    }
    Ok(url)
}

/// `access [":" mechanism ":" enc-urlauth]` — RFC 4467 §9; `enc-urlauth = 32*HEXDIG`,
/// `mechanism = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")`.
fn urlauth(value: &str) -> UResult<UrlAuth> {
    let mut it = value.splitn(3, ':');
    let access = it.next().unwrap_or_default();
    let access = match access.split_once('+') {
        Some((kind, user)) if kind.eq_ignore_ascii_case("submit") => {
            UrlAccess::Submit(decode_achars(user)?)
        }
        Some((kind, user)) if kind.eq_ignore_ascii_case("user") => {
            UrlAccess::User(decode_achars(user)?)
        }
        None if access.eq_ignore_ascii_case("authuser") => UrlAccess::AuthUser,
        None if access.eq_ignore_ascii_case("anonymous") => UrlAccess::Anonymous,
        _ => return Err(UrlError("bad URLAUTH access identifier")),
    };
    let verifier = match (it.next(), it.next()) {
        (None, _) => None,
        (Some(mech), Some(token)) => {
            let mech_ok = !mech.is_empty()
                && mech
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
            if !mech_ok || token.len() < 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(UrlError("bad URLAUTH verifier"));
            }
            Some((mech.to_string(), token.to_string()))
        }
        (Some(_), None) => return Err(UrlError("bad URLAUTH verifier")),
    };
    Ok(UrlAuth { access, verifier })
}

fn nz_number(s: &str) -> UResult<u32> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(UrlError("bad number")),
    }
}

fn number64(s: &str) -> UResult<u64> {
    match s.parse::<u64>() {
        Ok(n) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(UrlError("bad number")),
    }
}

/// `%HH` escapes decoded.
fn percent_decode(s: &str) -> UResult<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            // RFC 3986 §2.1: `pct-encoded = "%" HEXDIG HEXDIG` (no sign, which
            // `from_str_radix` would take: `%+A`).
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or(UrlError("bad %-escape"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError("bad %-escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError("bad %-escape"))?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// `enc-user = 1*achar`, decoded to UTF-8.
fn decode_achars(s: &str) -> UResult<String> {
    if s.is_empty() || s.contains([';', '/', '?', '#']) {
        return Err(UrlError("bad user name"));
    }
    String::from_utf8(percent_decode(s)?).map_err(|_| UrlError("user name is not UTF-8"))
}

/// `enc-mailbox = 1*bchar`, decoded: RFC 5092 §3.3 — the mailbox name in UTF-8, %-encoded.
fn decode_mailbox(s: &str) -> UResult<String> {
    let name =
        String::from_utf8(percent_decode(s)?).map_err(|_| UrlError("mailbox name is not UTF-8"))?;
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(UrlError("bad mailbox name"));
    }
    Ok(name)
}

/// Percent-encodes what `bchar` does not allow (RFC 5092 §11), for a mailbox name or path.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'&'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3339 `date-time = full-date "T" full-time`, `full-time = partial-time time-offset`,
/// `time-offset = "Z" / time-numoffset` (fractional seconds accepted and dropped), as Unix
/// seconds — the `;EXPIRE=` format (RFC 4467 §9 refers to RFC 3339).
fn rfc3339(s: &str) -> UResult<i64> {
    let bad = UrlError("bad ;EXPIRE= date-time");
    let s = percent_decode(s).map_err(|_| bad)?;
    let s = std::str::from_utf8(&s).map_err(|_| bad)?;
    let num = |t: &str| -> UResult<u32> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        t.parse().map_err(|_| bad)
    };
    let (date, time) = s.split_once(['T', 't']).ok_or(bad)?;
    let mut d = date.splitn(3, '-');
    let (y, m, dd) = (
        num(d.next().unwrap_or_default())?,
        num(d.next().unwrap_or_default())?,
        num(d.next().unwrap_or_default())?,
    );
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let i = time.rfind(['+', '-']).ok_or(bad)?;
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':').ok_or(bad)?;
        let (oh, om) = (num(oh)?, num(om)?);
        if oh > 23 || om > 59 {
            return Err(bad);
        }
        (c, sign * (i64::from(oh) * 3600 + i64::from(om) * 60))
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let mut t = clock.splitn(3, ':');
    let (hh, mm, ss) = (
        num(t.next().unwrap_or_default())?,
        num(t.next().unwrap_or_default())?,
        num(t.next().unwrap_or_default())?,
    );
    let year = u16::try_from(y).map_err(|_| bad)?;
    let date = Date::new(
        year,
        u8::try_from(m).map_err(|_| bad)?,
        u8::try_from(dd).map_err(|_| bad)?,
    )
    .ok_or(bad)?;
    let dt = DateTime::new(
        date,
        u8::try_from(hh).map_err(|_| bad)?,
        u8::try_from(mm).map_err(|_| bad)?,
        u8::try_from(ss).map_err(|_| bad)?,
        0,
    )
    .ok_or(bad)?;
    Ok(dt.unix_timestamp() - offset)
}

impl fmt::Display for UrlAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlAccess::Submit(u) => write!(f, "submit+{u}"),
            UrlAccess::User(u) => write!(f, "user+{u}"),
            UrlAccess::AuthUser => f.write_str("authuser"),
            UrlAccess::Anonymous => f.write_str("anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SectionText;

    #[test]
    fn absolute_message_part() {
        let u = ImapUrl::parse(
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038",
        )
        .unwrap();
        assert_eq!(u.user.as_deref(), Some("joe"));
        assert_eq!(u.host.as_deref(), Some("example.com"));
        assert_eq!((u.mailbox.as_str(), u.uid), ("INBOX", 20));
        assert_eq!(
            u.section.as_ref().map(|s| s.to_string()).as_deref(),
            Some("1.2")
        );
        let auth = u.urlauth.unwrap();
        assert_eq!(auth.access, UrlAccess::Submit("fred".into()));
        assert_eq!(
            auth.verifier,
            Some(("internal".into(), "91354a473744909de610943775f92038".into()))
        );
    }

    #[test]
    fn percent_escapes_are_two_hex_digits() {
        let u = ImapUrl::parse("imap://joe@example.com/%E6%97%A5/;uid=1").unwrap();
        assert_eq!(u.mailbox, "日");
        // A sign is no hex digit (`from_str_radix` takes "+A"); nor is the end of input.
        for bad in ["%+A", "%-1", "%1", "%", "%G0"] {
            let url = format!("imap://joe@example.com/IN{bad}BOX/;uid=1");
            assert!(ImapUrl::parse(&url).is_err(), "{url}");
        }
        // The user name took `%+A` as a line feed (found with the imap_command fuzz target's
        // RFC 3986 check).
        assert!(ImapUrl::parse("imap://jo%+Ae@example.com/INBOX/;uid=1").is_err());
    }

    #[test]
    fn rump_is_the_exact_prefix() {
        let s = "imap://joe@example.com/INBOX/;uid=20;urlauth=user+a@d.test:INTERNAL:0123456789abcdef0123456789abcdef";
        let (rump, rest) = ImapUrl::split_rump(s).unwrap();
        assert_eq!(
            rump,
            "imap://joe@example.com/INBOX/;uid=20;urlauth=user+a@d.test"
        );
        assert_eq!(rest, "INTERNAL:0123456789abcdef0123456789abcdef");
        assert!(ImapUrl::split_rump("imap://joe@example.com/INBOX/;uid=20").is_none());
    }

    #[test]
    fn relative_forms() {
        let base = UrlBase {
            user: Some("bob".into()),
            host: Some("mx.test".into()),
            mailbox: Some("Lists/Lemonade".into()),
        };
        let u = ImapUrl::parse_relative(
            "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER",
            Some(&base),
        )
        .unwrap();
        assert_eq!(u.mailbox, "Drafts");
        assert_eq!((u.uid_validity, u.uid), (Some(385_759_045), 20));
        assert_eq!(u.section.unwrap().text, Some(SectionText::Header));
        assert_eq!(u.user.as_deref(), Some("bob"));
        let u = ImapUrl::parse_relative(";UID=7/;PARTIAL=100000.1", Some(&base)).unwrap();
        assert_eq!(
            (u.mailbox.as_str(), u.uid, u.partial),
            ("Lists/Lemonade", 7, Some((100_000, Some(1))))
        );
        let u = ImapUrl::parse_relative("Im2000/;UID=3", Some(&base)).unwrap();
        assert_eq!(u.mailbox, "Lists/Im2000");
        let u =
            ImapUrl::parse_relative("/a%20b%C3%A9/;uid=1/;section=1.mime", Some(&base)).unwrap();
        assert_eq!(u.mailbox, "a b\u{e9}");
        assert_eq!(u.section.unwrap().to_string(), "1.MIME");
        // Without a selected mailbox a `;`-relative URL has nothing to refer to.
        assert!(ImapUrl::parse_relative(";UID=7", Some(&UrlBase::default())).is_err());
    }

    #[test]
    fn expire_and_access() {
        let u =
            ImapUrl::parse("imap://a@h/INBOX/;uid=1;expire=2009-02-13T23:31:30Z;urlauth=anonymous")
                .unwrap();
        assert_eq!(u.expire, Some(1_234_567_890));
        let u = ImapUrl::parse(
            "imap://a@h/INBOX/;uid=1;EXPIRE=2009-02-14T01:31:30.25+02:00;URLAUTH=authuser",
        )
        .unwrap();
        assert_eq!(u.expire, Some(1_234_567_890));
        assert_eq!(u.urlauth.unwrap().access, UrlAccess::AuthUser);
    }

    #[test]
    fn refused() {
        for bad in [
            "imap://h/INBOX",                    // a mailbox, no message
            "imap://h/INBOX?SUBJECT%20x",        // a search
            "imap://h/INBOX/;section=1",         // no UID
            "imap://h/INBOX/;uid=0",             // UID 0
            "imap://h/INBOX/;uid=1;section=1",   // missing '/'
            "imap://h/INBOX/;section=1/;uid=1",  // out of order
            "imap://h/INBOX/;uid=1/",            // trailing '/'
            "imap://h/INBOX/;uid=1/;section=1.", // bad section
            "imap://h/INBOX/;uid=1/;partial=5.0",
            "imap://h/INBOX/;uid=1;urlauth=nobody",
            "imap://h/INBOX/;uid=1;urlauth=anonymous:internal:12",
            "imap://h/INBOX/;uid=1;expire=2009-02-13T23:31:30Z",
            "imap://h/INBOX/;uid=1;expire=yesterday;urlauth=anonymous",
            "imap://h/IN BOX/;uid=1",
            "imap://h/%ZZ/;uid=1",
            "imap:///INBOX/;uid=1",
            "imap://h/INBOX/;uid=1;x=1",
        ] {
            assert!(ImapUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(
            ImapUrl::parse("/INBOX/;uid=1").is_err(),
            "relative without base"
        );
    }
}
