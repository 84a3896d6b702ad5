//! Paths and ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2).

use mail_types::Address;

use crate::ParseError;
use crate::dsn::{RcptParams, Ret, parse_envid, parse_notify, parse_orcpt, parse_ret};

/// `Reverse-path = Path / "<>"` — RFC 5321 §4.1.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `<>`: the null sender of bounces (RFC 5321 §4.5.5).
    Null,
    Mailbox(Address),
}

impl std::fmt::Display for ReversePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(a) => write!(f, "{a}"),
        }
    }
}

/// `Forward-path = Path`, or the special `<Postmaster>` — RFC 5321 §4.1.1.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain (case-insensitive); must be accepted (RFC 5321 §4.5.1).
    Postmaster,
    Mailbox(Address),
}

/// `BODY=` values: RFC 6152 (8BITMIME), RFC 3030 (BINARYMIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// The MAIL parameters yubin supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` — RFC 1870 §6: the client's estimate of the message size.
    pub size: Option<u64>,
    pub body: Option<Body>,
    /// `SMTPUTF8` — RFC 6531 §3.4.
    pub smtputf8: bool,
    /// `AUTH=` — RFC 4954 §5: accepted and ignored.
    pub auth: Option<String>,
    /// `RET=` — RFC 3461 §4.3.
    pub ret: Option<Ret>,
    /// `ENVID=` — RFC 3461 §4.4, validated xtext as sent.
    pub envid: Option<String>,
}

/// Splits `<path> params` into the path text (without brackets) and the parameter text.
///
/// Liberal forms accepted: spaces after the colon (`MAIL FROM: <a@b>`, Outlook) and a path
/// without angle brackets (`MAIL FROM:a@b`), which RFC 5321 §4.1.2 does not allow but old
/// clients send.
fn split_path(rest: &str) -> Result<(&str, &str), ParseError> {
    let rest = rest.trim_start_matches([' ', '\t']);
    if let Some(inner) = rest.strip_prefix('<') {
        // Find the closing '>' outside a quoted local part.
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '>' if !quoted => return Ok((&inner[..i], &inner[i + 1..])),
                _ => {}
            }
        }
        Err(ParseError::BadAddress)
    } else {
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        if end == 0 {
            return Err(ParseError::BadAddress);
        }
        Ok((&rest[..end], &rest[end..]))
    }
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"`: a source route `@a,@b:` is ignored
/// (RFC 5321 §4.1.2 and Appendix C: servers SHOULD accept and ignore it).
fn strip_source_route(path: &str) -> Result<&str, ParseError> {
    if path.starts_with('@') {
        match path.find(':') {
            Some(i) => Ok(&path[i + 1..]),
            None => Err(ParseError::BadAddress),
        }
    } else {
        Ok(path)
    }
}

fn mailbox(path: &str) -> Result<Address, ParseError> {
    let path = strip_source_route(path)?;
    if path.chars().any(|c| c.is_control()) {
        return Err(ParseError::BadAddress);
    }
    Address::parse(path).map_err(|_| ParseError::BadAddress)
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)`, `esmtp-param = esmtp-keyword ["=" esmtp-value]`
/// — RFC 5321 §4.1.2. Keywords are case-insensitive.
fn params(text: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    text.split([' ', '\t'])
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
}

/// Parses what follows `MAIL FROM:`.
///
/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF` — RFC 5321 §4.1.1.2.
pub(crate) fn parse_mail(rest: &str) -> Result<(ReversePath, MailParams), ParseError> {
    let (path, param_text) = split_path(rest).map_err(|_| ParseError::BadSender)?;
    let from = if path.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(mailbox(path).map_err(|_| ParseError::BadSender)?)
    };
    let mut out = MailParams::default();
    let mut seen = Vec::new();
    for (key, value) in params(param_text) {
        // A keyword given twice is ambiguous (RFC 3461 §4.3/§4.4 allow each once): refuse it.
        if seen.contains(&key) {
            return Err(ParseError::Syntax("Duplicate parameter"));
        }
        seen.push(key.clone());
        match (key.as_str(), value) {
            // RFC 1870 §6: `size-value ::= 1*20DIGIT`.
            ("SIZE", Some(v)) => {
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::Syntax("Bad SIZE parameter"));
                }
                out.size = Some(v.parse().unwrap_or(u64::MAX));
            }
            ("BODY", Some(v)) => {
                out.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(ParseError::Syntax("Bad BODY parameter")),
                });
            }
            ("SMTPUTF8", None) => out.smtputf8 = true,
            // RFC 4954 §5: `AUTH=<>` or an xtext mailbox.
            ("AUTH", Some(v)) => out.auth = Some(v.to_string()),
            ("RET", Some(v)) => out.ret = Some(parse_ret(v)?),
            ("ENVID", Some(v)) => out.envid = Some(parse_envid(v)?),
            ("SIZE" | "BODY" | "AUTH" | "RET" | "ENVID", None) | ("SMTPUTF8", Some(_)) => {
                return Err(ParseError::Syntax("Bad parameter value"));
            }
            _ => return Err(ParseError::UnknownParameter),
        }
    }
    Ok((from, out))
}

/// Parses what follows `RCPT TO:`: the path and the DSN parameters (RFC 3461 §4.1, §4.2).
///
/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
/// [SP Rcpt-parameters] CRLF` — RFC 5321 §4.1.1.3.
pub(crate) fn parse_rcpt(rest: &str) -> Result<(ForwardPath, RcptParams), ParseError> {
    let (path, param_text) = split_path(rest)?;
    let mut out = RcptParams::default();
    for (key, value) in params(param_text) {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) if out.notify.is_none() => out.notify = Some(parse_notify(v)?),
            ("ORCPT", Some(v)) if out.orcpt.is_none() => out.orcpt = Some(parse_orcpt(v)?),
            // Without a value, or given twice.
            ("NOTIFY" | "ORCPT", _) => {
                return Err(ParseError::Syntax("Bad or duplicate parameter"));
            }
            _ => return Err(ParseError::UnknownParameter),
        }
    }
    let to = if path.eq_ignore_ascii_case("postmaster") {
        ForwardPath::Postmaster
    } else {
        ForwardPath::Mailbox(mailbox(path)?)
    };
    Ok((to, out))
}
