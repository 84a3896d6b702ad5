//! Command parsing: a cursor over one framed command (lines and literals, as
//! [`CommandFramer`](crate::CommandFramer) delivers it) and the grammar's primitives.
//!
//! The parser never panics on client input: every access is checked and every failure is a
//! [`ParseError`] carrying the tag (when there was one) so the session answers `tag BAD`.

mod append;
mod command;
mod date;
mod ext;
mod fetch;
mod mailbox;
mod notify;
mod search;
mod sequence;
mod sort;
mod store;
mod urlauth;

pub use append::{AppendData, AppendMessage, CatPart};
pub use command::{Command, CommandBody, IdParam, parse_command, parse_idle_done};
pub use ext::{ExtValue, QResync, SelectParam};
pub use fetch::{
    FetchAttribute, FetchAttributes, FetchModifier, Part, Section, SectionText, parse_section_spec,
};
pub use mailbox::{ListReturnOption, ListSelectOption, StatusAttribute};
pub use notify::{EventGroup, NotifyEvent, NotifyFilter, NotifySet};
pub use search::{PartialRange, SearchKey, SearchReturnOption};
pub use sequence::{SeqNum, SeqRange, SequenceSet};
pub use sort::{SortCriterion, SortKey, ThreadAlgorithm};
pub use store::{StoreAction, StoreKind};
pub use urlauth::{UrlFetchArg, UrlFetchParam};

use crate::types::{Atom, Flag, Mailbox, Tag, is_astring_char, is_atom_char, is_list_char};

/// Why a command could not be parsed. All but [`ParseError::MissingTag`] carry the tag, so
/// the answer is `tag BAD ...` (RFC 9051 §7.1.3); without a tag it is `* BAD ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing or invalid tag")]
    MissingTag,
    #[error("unknown command")]
    UnknownCommand { tag: Tag },
    #[error("syntax error: {reason}")]
    Syntax { tag: Tag, reason: &'static str },
}

impl ParseError {
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            ParseError::MissingTag => None,
            ParseError::UnknownCommand { tag } | ParseError::Syntax { tag, .. } => Some(tag),
        }
    }
}

/// Internal result: the error is a short reason for the `BAD` text.
pub(crate) type PResult<T> = Result<T, &'static str>;

/// Deepest nesting of parenthesised lists (search keys, extension values) accepted, so a
/// hostile `((((...` cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// A position in one framed command.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub(crate) fn expect(&mut self, b: u8, why: &'static str) -> PResult<()> {
        if self.eat(b) { Ok(()) } else { Err(why) }
    }

    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "expected a space")
    }

    /// Consumes `word` (ASCII, case-insensitive) if it comes next, not followed by more
    /// atom characters.
    pub(crate) fn eat_keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let hit = self
            .buf
            .get(self.pos..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
            && !self.buf.get(end).is_some_and(|&b| is_atom_char(b));
        if hit {
            self.pos = end;
        }
        hit
    }

    pub(crate) fn keyword(&mut self, word: &str, why: &'static str) -> PResult<()> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(why)
        }
    }

    /// The end of the command: CRLF (a bare LF is tolerated) and nothing after it.
    pub(crate) fn end(&mut self) -> PResult<()> {
        self.eat(b'\r');
        if self.eat(b'\n') && self.pos == self.buf.len() {
            Ok(())
        } else {
            Err("unexpected characters at end of command")
        }
    }

    pub(crate) fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest().iter().take_while(|&&b| pred(b)).count();
        let s = self.buf.get(self.pos..self.pos + n).unwrap_or_default();
        self.pos += n;
        s
    }

    /// `atom = 1*ATOM-CHAR` — RFC 9051 §9.
    pub(crate) fn atom(&mut self) -> PResult<Atom> {
        let raw = self.take_while(is_atom_char);
        std::str::from_utf8(raw)
            .ok()
            .and_then(Atom::new)
            .ok_or("expected an atom")
    }

    /// `number = 1*DIGIT` (unsigned 32-bit) — RFC 9051 §9.
    pub(crate) fn number(&mut self) -> PResult<u32> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| "number too large")
    }

    /// `nz-number = digit-nz *DIGIT` — RFC 9051 §9.
    pub(crate) fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => Err("zero is not allowed here"),
            n => Ok(n),
        }
    }

    /// `number64 = 1*DIGIT` (unsigned 63-bit) — RFC 9051 §9.
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err("expected a number");
        }
        let n = digits.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
        });
        n.filter(|&n| n <= i64::MAX as u64)
            .ok_or("number too large")
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`; `QUOTED-CHAR = <any TEXT-CHAR except
    /// quoted-specials> / "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4` — RFC 9051 §9.
    /// 8-bit bytes are kept as sent; callers needing text check UTF-8.
    pub(crate) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err("bad escape in quoted string"),
                    }
                }
                Some(b'\r' | b'\n' | 0) | None => return Err("unterminated quoted string"),
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
    }

    /// Reads `"{" number64 ["+"] "}" CRLF` and then `size` octets.
    fn literal_body(&mut self) -> PResult<&'a [u8]> {
        self.expect(b'{', "expected a literal")?;
        let size = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "bad literal size")?;
        self.eat(b'\r');
        self.expect(b'\n', "literal size must end the line")?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(self.pos));
        let data = end
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or("literal is truncated")?;
        self.pos += data.len();
        Ok(data)
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8`; `CHAR8 = %x01-ff` — RFC 9051 §9.
    pub(crate) fn literal(&mut self) -> PResult<Vec<u8>> {
        let data = self.literal_body()?;
        if data.contains(&0) {
            // RFC 3516 §4.2: NUL is only allowed in literal8.
            return Err("NUL in literal (use literal8)");
        }
        Ok(data.to_vec())
    }

    /// `literal8 = "~{" number64 "}" CRLF *OCTET` — RFC 3516 §4.2 (with `+`, RFC 7888).
    pub(crate) fn literal8(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'~', "expected literal8")?;
        Ok(self.literal_body()?.to_vec())
    }

    /// `string = quoted / literal` — RFC 9051 §9.
    pub(crate) fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Err("expected a string"),
        }
    }

    /// `astring = 1*ASTRING-CHAR / string` — RFC 9051 §9.
    pub(crate) fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let raw = self.take_while(is_astring_char);
                if raw.is_empty() {
                    Err("expected a string")
                } else {
                    Ok(raw.to_vec())
                }
            }
        }
    }

    /// `nstring = string / nil` — RFC 9051 §9.
    pub(crate) fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        if self.eat_keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// An astring that must be UTF-8 text (charset names, keywords of extensions).
    pub(crate) fn astring_utf8(&mut self) -> PResult<String> {
        String::from_utf8(self.astring()?).map_err(|_| "invalid UTF-8")
    }

    /// `mailbox = "INBOX" / astring` — RFC 9051 §9. The name must be UTF-8 (modified UTF-7
    /// is a subset); INBOX is recognised later by [`Mailbox::is_inbox`].
    pub(crate) fn mailbox(&mut self) -> PResult<Mailbox> {
        let raw = self.astring()?;
        let s = std::str::from_utf8(&raw).map_err(|_| "mailbox name is not UTF-8")?;
        if s.contains(['\r', '\n', '\0']) {
            return Err("control character in mailbox name");
        }
        Ok(Mailbox::new(s))
    }

    /// `list-mailbox = 1*list-char / string` — RFC 9051 §9.
    pub(crate) fn list_mailbox(&mut self) -> PResult<String> {
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => match self.take_while(is_list_char) {
                [] => return Err("expected a mailbox pattern"),
                raw => raw.to_vec(),
            },
        };
        String::from_utf8(raw).map_err(|_| "mailbox pattern is not UTF-8")
    }

    /// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
    /// flag-extension`; `flag-extension = "\" atom` — RFC 9051 §9.
    pub(crate) fn flag(&mut self) -> PResult<Flag> {
        let start = self.pos;
        self.eat(b'\\');
        self.atom().map_err(|_| "expected a flag")?;
        let raw = self.buf.get(start..self.pos).unwrap_or_default();
        std::str::from_utf8(raw)
            .ok()
            .and_then(Flag::parse)
            .ok_or("expected a flag")
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"` — RFC 9051 §9.
    pub(crate) fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.expect(b'(', "expected a flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// A parenthesised, space-separated, non-empty list of items.
    pub(crate) fn paren_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(', "expected '('")?;
        let mut items = vec![item(self)?];
        while !self.eat(b')') {
            self.sp()?;
            items.push(item(self)?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert_eq!(
            Cursor::new(b"\"a\\\"b\\\\c\"").quoted(),
            Ok(b"a\"b\\c".to_vec())
        );
        assert!(Cursor::new(b"\"a\\b\"").quoted().is_err());
        assert!(Cursor::new(b"\"abc").quoted().is_err());
        assert_eq!(Cursor::new(b"{3}\r\nabc").literal(), Ok(b"abc".to_vec()));
        assert_eq!(Cursor::new(b"{3+}\r\nabc").literal(), Ok(b"abc".to_vec()));
        assert!(Cursor::new(b"{4}\r\nabc").literal().is_err());
        assert!(
            Cursor::new(b"{99999999999999999999}\r\nabc")
                .literal()
                .is_err()
        );
        assert!(Cursor::new(b"{1}\r\n\0").literal().is_err());
        assert_eq!(Cursor::new(b"~{1}\r\n\0").literal8(), Ok(vec![0]));
        assert_eq!(Cursor::new(b"abc]d ").astring(), Ok(b"abc]d".to_vec()));
        assert!(Cursor::new(b"(x").astring().is_err());
        assert_eq!(Cursor::new(b"NIL").nstring(), Ok(None));
        assert_eq!(
            Cursor::new(b"\xc3\xa9 ").astring(),
            Err("expected a string")
        );
    }

    #[test]
    fn numbers_and_flags() {
        assert_eq!(Cursor::new(b"4294967295").number(), Ok(u32::MAX));
        assert!(Cursor::new(b"4294967296").number().is_err());
        assert!(Cursor::new(b"0").nz_number().is_err());
        assert!(Cursor::new(b"9223372036854775808").number64().is_err());
        let flags = Cursor::new(b"(\\Seen $Junk \\X-Ext)").flag_list();
        assert_eq!(flags.map(|f| f.len()), Ok(3));
        assert!(Cursor::new(b"(\\Seen").flag_list().is_err());
        assert!(Cursor::new(b"(\\)").flag_list().is_err());
    }
}
