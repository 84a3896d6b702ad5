//! Mailbox commands with arguments beyond a name: CREATE, LIST (with LIST-EXTENDED,
//! LIST-STATUS, SPECIAL-USE), LSUB and STATUS.

use super::{CommandBody, Cursor, PResult};
use crate::types::Atom;

/// `status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE"`
/// — RFC 9051 §9; `"RECENT"` — RFC 3501 §9; `"HIGHESTMODSEQ"` — RFC 7162 §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusAttribute {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    HighestModSeq,
}

/// `list-select-opt` — RFC 5258 §6, RFC 6154 §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSelectOption {
    /// `SUBSCRIBED` — RFC 5258 §3.
    Subscribed,
    /// `REMOTE` — RFC 5258 §3.
    Remote,
    /// `RECURSIVEMATCH` — RFC 5258 §3.
    RecursiveMatch,
    /// `SPECIAL-USE` — RFC 6154 §3.
    SpecialUse,
    /// `option-extension`; the server answers BAD for one it does not know (RFC 5258 §3).
    Other(Atom),
}

/// `return-option` — RFC 5258 §6, RFC 5819 §5, RFC 6154 §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturnOption {
    Subscribed,
    Children,
    SpecialUse,
    /// `"STATUS" SP "(" status-att *(SP status-att) ")"` — RFC 5819 §5.
    Status(Vec<StatusAttribute>),
    Other(Atom),
}

/// `status-att` — RFC 9051 §9.
pub(crate) fn status_attribute(c: &mut Cursor<'_>) -> PResult<StatusAttribute> {
    let atom = c.atom().map_err(|_| "expected a status attribute")?;
    Ok(match atom.as_str().to_ascii_uppercase().as_str() {
        "MESSAGES" => StatusAttribute::Messages,
        "UIDNEXT" => StatusAttribute::UidNext,
        "UIDVALIDITY" => StatusAttribute::UidValidity,
        "UNSEEN" => StatusAttribute::Unseen,
        "DELETED" => StatusAttribute::Deleted,
        "SIZE" => StatusAttribute::Size,
        "RECENT" => StatusAttribute::Recent,
        "HIGHESTMODSEQ" => StatusAttribute::HighestModSeq,
        _ => return Err("unknown status attribute"),
    })
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"` — RFC 9051 §6.3.11.
pub(crate) fn status(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let attributes = c.paren_list(status_attribute)?;
    Ok(CommandBody::Status {
        mailbox,
        attributes,
    })
}

/// `create = "CREATE" SP mailbox [create-params]`;
/// `create-param = "USE" SP "(" [use-attr *(SP use-attr)] ")"` — RFC 9051 §6.3.4, RFC 6154 §6.
/// The USE attributes are kept without their backslash (`\Sent` → `Sent`).
pub(crate) fn create(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        // `create-params = SP "(" create-param *(SP create-param) ")"` — RFC 4466 §2.2.
        c.expect(b'(', "expected create parameters")?;
        loop {
            c.keyword("USE", "unknown CREATE parameter")?;
            c.sp()?;
            c.expect(b'(', "expected '(' after USE")?;
            if !c.eat(b')') {
                loop {
                    c.expect(b'\\', "expected a special-use attribute")?;
                    special_use.push(c.atom()?);
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::Create {
        mailbox,
        special_use,
    })
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`;
/// `mbox-or-pat = list-mailbox / patterns`; `patterns = "(" list-mailbox *(SP list-mailbox) ")"`
/// — RFC 9051 §6.3.9, RFC 5258 §6.
pub(crate) fn list(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mut selection = Vec::new();
    if c.peek() == Some(b'(') {
        selection = list_select_opts(c)?;
        c.sp()?;
    }
    let reference = c.mailbox()?;
    c.sp()?;
    let patterns = if c.peek() == Some(b'(') {
        c.paren_list(|c| c.list_mailbox())?
    } else {
        vec![c.list_mailbox()?]
    };
    let mut return_opts = Vec::new();
    if c.eat(b' ') {
        c.keyword("RETURN", "expected RETURN")?;
        c.sp()?;
        return_opts = list_return_opts(c)?;
    }
    Ok(CommandBody::List {
        selection,
        reference,
        patterns,
        return_opts,
    })
}

/// `list-select-opts = "(" [(*(list-select-mod SP) list-select-base-opt
/// *(SP list-select-opt)) / (list-select-independent-opt *(SP list-select-opt))] ")"`
/// — RFC 5258 §6.
fn list_select_opts(c: &mut Cursor<'_>) -> PResult<Vec<ListSelectOption>> {
    c.expect(b'(', "expected '('")?;
    let mut opts = Vec::new();
    if !c.eat(b')') {
        loop {
            let atom = c.atom()?;
            opts.push(match atom.as_str().to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => ListSelectOption::Subscribed,
                "REMOTE" => ListSelectOption::Remote,
                "RECURSIVEMATCH" => ListSelectOption::RecursiveMatch,
                "SPECIAL-USE" => ListSelectOption::SpecialUse,
                _ => ListSelectOption::Other(atom),
            });
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    // RFC 5258 §3: RECURSIVEMATCH needs another selection option that is not REMOTE;
    // "the server MUST return BAD" otherwise.
    let has_base = opts.iter().any(|o| {
        !matches!(
            o,
            ListSelectOption::RecursiveMatch | ListSelectOption::Remote
        )
    });
    if opts.contains(&ListSelectOption::RecursiveMatch) && !has_base {
        return Err("RECURSIVEMATCH needs another selection option");
    }
    Ok(opts)
}

/// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"` —
/// RFC 5258 §6; `status-option` — RFC 5819 §5.
fn list_return_opts(c: &mut Cursor<'_>) -> PResult<Vec<ListReturnOption>> {
    c.expect(b'(', "expected '(' after RETURN")?;
    let mut opts = Vec::new();
    if c.eat(b')') {
        return Ok(opts);
    }
    loop {
        let atom = c.atom()?;
        opts.push(match atom.as_str().to_ascii_uppercase().as_str() {
            "SUBSCRIBED" => ListReturnOption::Subscribed,
            "CHILDREN" => ListReturnOption::Children,
            "SPECIAL-USE" => ListReturnOption::SpecialUse,
            "STATUS" => {
                c.sp()?;
                ListReturnOption::Status(c.paren_list(status_attribute)?)
            }
            _ => ListReturnOption::Other(atom),
        });
        if c.eat(b')') {
            return Ok(opts);
        }
        c.sp()?;
    }
}

/// `lsub = "LSUB" SP mailbox SP list-mailbox` — RFC 3501 §6.3.9.
pub(crate) fn lsub(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let reference = c.mailbox()?;
    c.sp()?;
    let pattern = c.list_mailbox()?;
    Ok(CommandBody::Lsub { reference, pattern })
}
