//! APPEND, with MULTIAPPEND (RFC 3502), binary literal8 data (RFC 3516 §4.4) and CATENATE
//! (RFC 4469).

use super::date::date_time;
use super::{CommandBody, Cursor, PResult};
use crate::types::{DateTime, Flag};

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date_time: Option<DateTime>,
    pub data: AppendData,
}

/// `append-data = literal / literal8 / append-data-ext` — RFC 4466 §2.1, RFC 3516 §4.4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// The message as one literal. `binary`: sent as `literal8` (`~{n}`), so the content may
    /// be binary and the server must convert it or refuse with `NO [UNKNOWN-CTE]`
    /// (RFC 3516 §4.4).
    Literal { data: Vec<u8>, binary: bool },
    /// `"CATENATE" SP "(" cat-part *(SP cat-part) ")"` — RFC 4469 §5: the message is the
    /// parts one after the other.
    Catenate(Vec<CatPart>),
}

/// `cat-part = text-literal / url` — RFC 4469 §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `text-literal = "TEXT" SP literal`; also `literal8` (`binary`), the combination of
    /// CATENATE with BINARY's APPEND (RFC 3516 §4.4) that Dovecot accepts too.
    Text { data: Vec<u8>, binary: bool },
    /// `url = "URL" SP astring`: an IMAP URL (RFC 5092), not yet parsed or resolved.
    Url(String),
}

impl AppendData {
    /// The message bytes of a plain APPEND; `None` for CATENATE.
    pub fn literal(&self) -> Option<&[u8]> {
        match self {
            AppendData::Literal { data, .. } => Some(data),
            AppendData::Catenate(_) => None,
        }
    }
}

/// `append = "APPEND" SP mailbox 1*append-message`;
/// `append-message = append-opts SP append-data`;
/// `append-opts = [SP flag-list] [SP date-time] *(SP append-ext)`;
/// `append-data = literal / literal8 / append-data-ext`;
/// `append-data-ext =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")"` — RFC 3502 §6,
/// RFC 9051 §6.3.12, RFC 3516 §4.4, RFC 4469 §5. Other `append-ext`s are not supported.
pub(crate) fn append(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        let mut date = None;
        if c.peek() == Some(b'(') {
            flags = c.flag_list()?;
            c.sp()?;
        }
        if c.peek() == Some(b'"') {
            date = Some(date_time(c)?);
            c.sp()?;
        }
        let data = match c.peek() {
            Some(b'{') => AppendData::Literal {
                data: c.literal()?,
                binary: false,
            },
            Some(b'~') => AppendData::Literal {
                data: c.literal8()?,
                binary: true,
            },
            _ if c.eat_keyword("CATENATE") => {
                c.sp()?;
                AppendData::Catenate(c.paren_list(cat_part)?)
            }
            _ => return Err("expected the message as a literal or CATENATE"),
        };
        messages.push(AppendMessage {
            flags,
            date_time: date,
            data,
        });
    }
    if messages.is_empty() {
        return Err("expected a message");
    }
    Ok(CommandBody::Append { mailbox, messages })
}

/// `cat-part = text-literal / url`; `text-literal = "TEXT" SP literal`;
/// `url = "URL" SP astring` — RFC 4469 §5.
fn cat_part(c: &mut Cursor<'_>) -> PResult<CatPart> {
    if c.eat_keyword("TEXT") {
        c.sp()?;
        return Ok(match c.peek() {
            Some(b'~') => CatPart::Text {
                data: c.literal8()?,
                binary: true,
            },
            _ => CatPart::Text {
                data: c.literal()?,
                binary: false,
            },
        });
    }
    if c.eat_keyword("URL") {
        c.sp()?;
        let url = String::from_utf8(c.astring()?).map_err(|_| "URL is not UTF-8")?;
        return Ok(CatPart::Url(url));
    }
    Err("expected TEXT or URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> PResult<CommandBody> {
        let mut c = Cursor::new(s);
        c.keyword("APPEND", "")?;
        append(&mut c)
    }

    #[test]
    fn catenate_parts() {
        let cmd = parse(
            b"APPEND Drafts (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {3}\r\nabc TEXT ~{1}\r\n\0)",
        )
        .unwrap();
        let CommandBody::Append { messages, .. } = cmd else {
            panic!()
        };
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].flags, vec![Flag::Seen]);
        assert_eq!(
            messages[0].data,
            AppendData::Catenate(vec![
                CatPart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".into()),
                CatPart::Text {
                    data: b"abc".to_vec(),
                    binary: false
                },
                CatPart::Text {
                    data: vec![0],
                    binary: true
                },
            ])
        );
    }

    #[test]
    fn catenate_in_multiappend() {
        let cmd = parse(
            b"APPEND x catenate (url \"/x/;uid=1\") (\\Answered) {1}\r\nz CATENATE (TEXT {0}\r\n)",
        )
        .unwrap();
        let CommandBody::Append { messages, .. } = cmd else {
            panic!()
        };
        assert_eq!(messages.len(), 3);
        assert!(matches!(messages[0].data, AppendData::Catenate(_)));
        assert_eq!(messages[1].data.literal(), Some(&b"z"[..]));
        assert_eq!(
            messages[2].data,
            AppendData::Catenate(vec![CatPart::Text {
                data: vec![],
                binary: false
            }])
        );
    }

    #[test]
    fn malformed_catenate() {
        for bad in [
            &b"APPEND x CATENATE ()"[..],
            b"APPEND x CATENATE",
            b"APPEND x CATENATE (TEXT \"abc\")",
            b"APPEND x CATENATE (URL)",
            b"APPEND x CATENATE (URL {3}\r\nabc",
            b"APPEND x CATENATE (FOO {1}\r\na)",
            b"APPEND x CATENATE (TEXT {1}\r\na",
            b"APPEND x CATENATE (TEXT {1}\r\na  URL x)",
            b"APPEND x CATENATE(TEXT {1}\r\na)",
            b"APPEND x CATENATE (TEXT {2}\r\na)",
            b"APPEND x CATENATE (TEXT {1}\r\n\0)",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
