//! Writing strings in the form the grammar allows for them: atom, quoted, literal or NIL.
//!
//! A quoted string carries only `TEXT-CHAR`s (no CR, LF or NUL) with `"` and `\` escaped
//! (RFC 9051 §4.3); 8-bit text is quoted only as valid UTF-8 when the client accepts it
//! (IMAP4rev2, or `UTF8=ACCEPT` enabled: RFC 9051 §9 `QUOTED-CHAR =/ UTF8-2 / ...`,
//! RFC 6855 §3), otherwise it goes in a literal, which RFC 3501 §4.3 allows to carry 8-bit.

use crate::mutf7::encode_mutf7;
use crate::types::is_astring_char;

/// Longest string sent quoted; longer ones go as literals (cheaper for clients to read).
const MAX_QUOTED: usize = 1024;

fn quotable(s: &[u8], utf8: bool) -> bool {
    s.len() <= MAX_QUOTED
        && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
        && (s.is_ascii() || (utf8 && std::str::from_utf8(s).is_ok()))
}

/// `literal = "{" number64 "}" CRLF *CHAR8` — RFC 9051 §4.3.
pub fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// `literal8 = "~{" number64 "}" CRLF *OCTET` — RFC 3516 §4.2, for data with NUL.
pub fn write_literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE` — RFC 9051 §9. The caller checked the content.
fn write_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `string = quoted / literal` — RFC 9051 §9: quoted when allowed, else a literal.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if quotable(s, utf8) {
        write_quoted(out, s)
    } else {
        write_literal(out, s)
    }
}

/// `nstring = string / nil` — RFC 9051 §9.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        Some(s) => write_string(out, s, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `astring = 1*ASTRING-CHAR / string` — RFC 9051 §9. Never writes a bare `NIL`, which a
/// client could read as nil where an nstring is also allowed.
pub fn write_astring(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        write_string(out, s, utf8)
    }
}

/// A mailbox name (held as UTF-8): as is when the client accepts UTF-8, else in modified
/// UTF-7 (RFC 3501 §5.1.3). Always quoted or literal, never an atom: names with `%`, `*` or
/// `]` are then safe, and clients parse both.
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        write_string(out, name.as_bytes(), true)
    } else {
        write_string(out, encode_mutf7(name).as_bytes(), false)
    }
}

/// Resp text: `text = 1*TEXT-CHAR` — RFC 9051 §9. CR, LF and NUL become spaces so a reply
/// can never be split; empty text becomes "done" (RFC 3501 requires at least one char).
pub(crate) fn write_text(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        out.extend_from_slice(b"done");
        return;
    }
    out.extend(text.bytes().map(|b| {
        if matches!(b, b'\r' | b'\n' | 0) {
            b' '
        } else {
            b
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn choices() {
        assert_eq!(
            s(|o| write_string(o, b"hello world", false)),
            "\"hello world\""
        );
        assert_eq!(s(|o| write_string(o, b"a\"b\\c", false)), r#""a\"b\\c""#);
        assert_eq!(
            s(|o| write_string(o, b"line\r\nbreak", true)),
            "{11}\r\nline\r\nbreak"
        );
        assert_eq!(
            s(|o| write_string(o, "caf\u{e9}".as_bytes(), false)),
            "{5}\r\ncaf\u{e9}"
        );
        assert_eq!(
            s(|o| write_string(o, "caf\u{e9}".as_bytes(), true)),
            "\"caf\u{e9}\""
        );
        assert_eq!(s(|o| write_string(o, b"\xff", true)), "{1}\r\n\u{fffd}");
        assert_eq!(s(|o| write_string(o, b"", false)), "\"\"");
        assert_eq!(s(|o| write_astring(o, b"FLAGS", false)), "FLAGS");
        assert_eq!(s(|o| write_astring(o, b"nil", false)), "\"nil\"");
        assert_eq!(s(|o| write_astring(o, b"a b", false)), "\"a b\"");
        assert_eq!(s(|o| write_nstring(o, None, false)), "NIL");
        assert_eq!(
            s(|o| write_mailbox(o, "Entw\u{fc}rfe", false)),
            "\"Entw&APw-rfe\""
        );
        assert_eq!(
            s(|o| write_mailbox(o, "Entw\u{fc}rfe", true)),
            "\"Entw\u{fc}rfe\""
        );
        assert_eq!(s(|o| write_text(o, "a\r\nb")), "a  b");
        let long = vec![b'x'; MAX_QUOTED + 1];
        assert!(s(|o| write_string(o, &long, false)).starts_with("{1025}\r\n"));
    }
}
