//! URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, with the extended URLFETCH of
//! URLAUTH=BINARY (RFC 5524). The URLs stay strings here: what they name is parsed by
//! [`ImapUrl`](crate::ImapUrl), and the URLAUTH rump must be kept byte for byte (RFC 4467 §6).

use super::{CommandBody, Cursor, PResult};
use crate::types::Atom;

/// One URLFETCH argument — RFC 5524 §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchArg {
    pub url: String,
    /// `None` for `url-fetch-simple` (the answer is then `url SP nstring`); `Some` for
    /// `url-fetch-ext`, possibly empty (RFC 5524 §3.1: "If no url-fetch-param present, as
    /// unextended").
    pub params: Option<Vec<UrlFetchParam>>,
}

/// `url-fetch-param = "BODY" / "BINARY" / "BODYPARTSTRUCTURE" / atom` — RFC 5524 §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlFetchParam {
    Body,
    Binary,
    BodyPartStructure,
    /// An unknown parameter: the session answers BAD.
    Other(Atom),
}

/// `mechanism = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")` — RFC 4467 §9.
fn mechanism(c: &mut Cursor<'_>) -> PResult<Atom> {
    let raw = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    std::str::from_utf8(raw)
        .ok()
        .and_then(Atom::new)
        .ok_or("expected a URLAUTH mechanism")
}

/// An astring holding a URL (ASCII text).
fn url(c: &mut Cursor<'_>) -> PResult<String> {
    let raw = c.astring()?;
    if raw.is_empty() || !raw.is_ascii() {
        return Err("bad URL");
    }
    String::from_utf8(raw).map_err(|_| "bad URL")
}

/// `genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)`; `url-rump = astring`
/// — RFC 4467 §9.
pub(crate) fn genurlauth(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut pairs = Vec::new();
    while c.eat(b' ') {
        let rump = url(c)?;
        c.sp()?;
        pairs.push((rump, mechanism(c)?));
    }
    if pairs.is_empty() {
        return Err("GENURLAUTH needs a URL and a mechanism");
    }
    Ok(CommandBody::GenUrlAuth(pairs))
}

/// `resetkey = "RESETKEY" [SP mailbox *(SP mechanism)]` — RFC 4467 §9.
pub(crate) fn resetkey(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    if !c.eat(b' ') {
        return Ok(CommandBody::ResetKey {
            mailbox: None,
            mechanisms: Vec::new(),
        });
    }
    let mailbox = c.mailbox()?;
    let mut mechanisms = Vec::new();
    while c.eat(b' ') {
        mechanisms.push(mechanism(c)?);
    }
    Ok(CommandBody::ResetKey {
        mailbox: Some(mailbox),
        mechanisms,
    })
}

/// `urlfetch = "URLFETCH" 1*(SP url-fetch-arg)`; `url-fetch-arg = url-fetch-simple /
/// url-fetch-ext`; `url-fetch-simple = url-full`; `url-fetch-ext = "(" url-full *(SP
/// url-fetch-param) ")"` — RFC 5524 §5 (RFC 4467 §9 has the simple form only).
pub(crate) fn urlfetch(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut args = Vec::new();
    while c.eat(b' ') {
        if c.eat(b'(') {
            let url = url(c)?;
            let mut params = Vec::new();
            while c.eat(b' ') {
                let name = c.atom()?;
                params.push(if name.eq_ignore_case("BODY") {
                    UrlFetchParam::Body
                } else if name.eq_ignore_case("BINARY") {
                    UrlFetchParam::Binary
                } else if name.eq_ignore_case("BODYPARTSTRUCTURE") {
                    UrlFetchParam::BodyPartStructure
                } else {
                    UrlFetchParam::Other(name)
                });
            }
            c.expect(b')', "expected ')'")?;
            args.push(UrlFetchArg {
                url,
                params: Some(params),
            });
        } else {
            args.push(UrlFetchArg {
                url: url(c)?,
                params: None,
            });
        }
    }
    if args.is_empty() {
        return Err("URLFETCH needs a URL");
    }
    Ok(CommandBody::UrlFetch(args))
}
