//! APPEND, with MULTIAPPEND (RFC 3502) and binary literal8 data (RFC 3516 §4.4).

use super::date::date_time;
use super::{CommandBody, Cursor, PResult};
use crate::types::{DateTime, Flag};

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date_time: Option<DateTime>,
    pub data: Vec<u8>,
    /// Sent as `literal8` (`~{n}`): the content may be binary and the server must convert
    /// it or refuse with `NO [UNKNOWN-CTE]` (RFC 3516 §4.4).
    pub binary: bool,
}

/// `append = "APPEND" SP mailbox 1*append-message`;
/// `append-message = append-opts SP append-data`;
/// `append-opts = [SP flag-list] [SP date-time] *(SP append-ext)`;
/// `append-data = literal / literal8 / append-data-ext` — RFC 3502 §6, RFC 9051 §6.3.12,
/// RFC 3516 §4.4. `append-ext` and CATENATE (RFC 4469) are not supported.
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
        let (data, binary) = match c.peek() {
            Some(b'{') => (c.literal()?, false),
            Some(b'~') => (c.literal8()?, true),
            _ => return Err("expected the message as a literal"),
        };
        messages.push(AppendMessage {
            flags,
            date_time: date,
            data,
            binary,
        });
    }
    if messages.is_empty() {
        return Err("expected a message");
    }
    Ok(CommandBody::Append { mailbox, messages })
}
