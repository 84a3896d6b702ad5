//! The command type and its dispatcher, with the commands whose grammar fits in a line or
//! two; the longer ones live in their own files.

use super::append::{AppendMessage, append};
use super::ext::{SelectParam, select_params};
use super::fetch::{FetchAttributes, FetchModifier, fetch};
use super::mailbox::{
    ListReturnOption, ListSelectOption, StatusAttribute, create, list, lsub, status,
};
use super::notify::{NotifySet, notify};
use super::search::{PartialRange, SearchKey, SearchReturnOption, search};
use super::sequence::sequence_set;
use super::sort::{SortCriterion, ThreadAlgorithm, cancel_update, sort, thread};
use super::store::{StoreAction, store};
use super::urlauth::{UrlFetchArg, genurlauth, resetkey, urlfetch};
use super::{Cursor, PResult, ParseError, SequenceSet};
use crate::types::{Atom, Flag, Mailbox, Secret, Tag, is_astring_char};

/// One `ID` field and its value (`string SP nstring`) — RFC 2971 §3.1.
pub type IdParam = (Vec<u8>, Option<Vec<u8>>);

/// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
/// — RFC 9051 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: Tag,
    pub body: CommandBody,
}

/// Every command this codec understands. Which is allowed in which state is the session's
/// decision (RFC 9051 §6); the parser accepts all of them everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // Any state — RFC 9051 §6.1.
    Capability,
    Noop,
    Logout,
    /// `ID` — RFC 2971 §3.1; `None` for `ID NIL`.
    Id(Option<Vec<IdParam>>),
    // Not authenticated — RFC 9051 §6.2.
    StartTls,
    /// `initial_response` is the raw base64 text (`=` for an empty one, RFC 4959 §3); decode
    /// it with the SASL code. It may hold a password, hence [`Secret`].
    Authenticate {
        mechanism: Atom,
        initial_response: Option<Secret>,
    },
    Login {
        username: Vec<u8>,
        password: Secret,
    },
    // Authenticated — RFC 9051 §6.3.
    /// `ENABLE` — RFC 5161 §3.1.
    Enable(Vec<Atom>),
    Select {
        mailbox: Mailbox,
        params: Vec<SelectParam>,
    },
    Examine {
        mailbox: Mailbox,
        params: Vec<SelectParam>,
    },
    /// `special_use` holds the `USE` attributes without the backslash (RFC 6154 §3).
    Create {
        mailbox: Mailbox,
        special_use: Vec<Atom>,
    },
    Delete(Mailbox),
    Rename {
        from: Mailbox,
        to: Mailbox,
    },
    Subscribe(Mailbox),
    Unsubscribe(Mailbox),
    List {
        selection: Vec<ListSelectOption>,
        reference: Mailbox,
        patterns: Vec<String>,
        return_opts: Vec<ListReturnOption>,
    },
    /// RFC 3501 §6.3.9 (deprecated in RFC 9051).
    Lsub {
        reference: Mailbox,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: Mailbox,
        attributes: Vec<StatusAttribute>,
    },
    Append {
        mailbox: Mailbox,
        messages: Vec<AppendMessage>,
    },
    Idle,
    /// `GENURLAUTH` — RFC 4467 §7: (url-rump, mechanism) pairs.
    GenUrlAuth(Vec<(String, Atom)>),
    /// `RESETKEY` — RFC 4467 §7; no mailbox resets every key of the user.
    ResetKey {
        mailbox: Option<Mailbox>,
        mechanisms: Vec<Atom>,
    },
    /// `URLFETCH` — RFC 4467 §7, extended by RFC 5524 §3.1.
    UrlFetch(Vec<UrlFetchArg>),
    /// `NOTIFY` — RFC 5465 §3.1; `None` for `NOTIFY NONE`.
    Notify(Option<NotifySet>),
    /// `GETQUOTA` — RFC 9208 §4.2.
    GetQuota(Vec<u8>),
    /// `GETQUOTAROOT` — RFC 9208 §4.3.
    GetQuotaRoot(Mailbox),
    /// `SETQUOTA` — RFC 9208 §4.1.3: the quota root and (resource name, limit) pairs.
    SetQuota {
        root: Vec<u8>,
        limits: Vec<(Atom, u64)>,
    },
    // Selected — RFC 9051 §6.4.
    /// RFC 3501 §6.4.1 (removed in RFC 9051, where it is a NOOP).
    Check,
    Close,
    Unselect,
    Expunge,
    /// `UID EXPUNGE` — RFC 9051 §6.4.9 (RFC 4315 §2.1).
    UidExpunge(SequenceSet),
    Search {
        uid: bool,
        return_opts: Option<Vec<SearchReturnOption>>,
        charset: Option<String>,
        criteria: SearchKey,
    },
    Fetch {
        uid: bool,
        sequence_set: SequenceSet,
        attributes: FetchAttributes,
        modifiers: Vec<FetchModifier>,
        /// The `PARTIAL range` modifier (RFC 9394 §3.3), apart from the others: it narrows
        /// the set rather than changing what is fetched.
        partial: Option<PartialRange>,
    },
    Store {
        uid: bool,
        sequence_set: SequenceSet,
        unchanged_since: Option<u64>,
        action: StoreAction,
        flags: Vec<Flag>,
    },
    Copy {
        uid: bool,
        sequence_set: SequenceSet,
        mailbox: Mailbox,
    },
    /// `MOVE` — RFC 6851 §3.
    Move {
        uid: bool,
        sequence_set: SequenceSet,
        mailbox: Mailbox,
    },
    /// `SORT` / `UID SORT` — RFC 5256 §3, with RETURN options (ESORT, CONTEXT=SORT: RFC 5267
    /// §3, §4). `return_opts` as for [`CommandBody::Search`].
    Sort {
        uid: bool,
        return_opts: Option<Vec<SearchReturnOption>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        search: SearchKey,
    },
    /// `THREAD` / `UID THREAD` — RFC 5256 §3.
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        search: SearchKey,
    },
    /// `CANCELUPDATE` with the tags of the searches to stop updating — RFC 5267 §4.3.5.
    CancelUpdate(Vec<String>),
}

/// Parses one framed command (as [`CommandFramer`](crate::CommandFramer) returns it,
/// CRLF included).
///
/// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
/// — RFC 9051 §9.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut c = Cursor::new(input);
    let raw_tag = c.take_while(|b| is_astring_char(b) && b != b'+');
    let tag = std::str::from_utf8(raw_tag)
        .ok()
        .and_then(Tag::new)
        .ok_or(ParseError::MissingTag)?;
    // A tag is followed by SP (or ends a truncated line); anything else means no tag.
    if !matches!(c.peek(), Some(b' ' | b'\r' | b'\n')) {
        return Err(ParseError::MissingTag);
    }
    if !c.eat(b' ') {
        return Err(ParseError::Syntax {
            tag,
            reason: "expected a command after the tag",
        });
    }
    let name = c
        .take_while(|b| b.is_ascii_alphanumeric())
        .to_ascii_uppercase();
    if name.is_empty() {
        return Err(ParseError::Syntax {
            tag,
            reason: "expected a command after the tag",
        });
    }
    let body = match command_body(&mut c, &name) {
        Some(Ok(body)) => body,
        Some(Err(reason)) => return Err(ParseError::Syntax { tag, reason }),
        None => return Err(ParseError::UnknownCommand { tag }),
    };
    match c.end() {
        Ok(()) => Ok(Command { tag, body }),
        Err(reason) => Err(ParseError::Syntax { tag, reason }),
    }
}

/// Dispatches on the command name; `None` for an unknown command.
fn command_body(c: &mut Cursor<'_>, name: &[u8]) -> Option<PResult<CommandBody>> {
    use CommandBody as B;
    let mailbox_arg = |c: &mut Cursor<'_>| -> PResult<Mailbox> {
        c.sp()?;
        c.mailbox()
    };
    Some(match name {
        b"CAPABILITY" => Ok(B::Capability),
        b"NOOP" => Ok(B::Noop),
        b"LOGOUT" => Ok(B::Logout),
        b"STARTTLS" => Ok(B::StartTls),
        b"NAMESPACE" => Ok(B::Namespace),
        b"IDLE" => Ok(B::Idle),
        b"CHECK" => Ok(B::Check),
        b"CLOSE" => Ok(B::Close),
        b"UNSELECT" => Ok(B::Unselect),
        b"EXPUNGE" => Ok(B::Expunge),
        b"ID" => id(c),
        b"AUTHENTICATE" => authenticate(c),
        b"LOGIN" => login(c),
        b"ENABLE" => enable(c),
        b"SELECT" => select(c).map(|(mailbox, params)| B::Select { mailbox, params }),
        b"EXAMINE" => select(c).map(|(mailbox, params)| B::Examine { mailbox, params }),
        b"CREATE" => create(c),
        b"DELETE" => mailbox_arg(c).map(B::Delete),
        b"RENAME" => rename(c),
        b"SUBSCRIBE" => mailbox_arg(c).map(B::Subscribe),
        b"UNSUBSCRIBE" => mailbox_arg(c).map(B::Unsubscribe),
        b"LIST" => list(c),
        b"LSUB" => lsub(c),
        b"STATUS" => status(c),
        b"APPEND" => append(c),
        b"GENURLAUTH" => genurlauth(c),
        b"RESETKEY" => resetkey(c),
        b"URLFETCH" => urlfetch(c),
        b"NOTIFY" => notify(c),
        b"GETQUOTA" => c.sp().and_then(|_| c.astring()).map(B::GetQuota),
        b"GETQUOTAROOT" => mailbox_arg(c).map(B::GetQuotaRoot),
        b"SETQUOTA" => setquota(c),
        b"SEARCH" => search(c, false),
        b"SORT" => sort(c, false),
        b"THREAD" => thread(c, false),
        b"CANCELUPDATE" => cancel_update(c),
        b"FETCH" => fetch(c, false),
        b"STORE" => store(c, false),
        b"COPY" => copy_move(c, false, false),
        b"MOVE" => copy_move(c, false, true),
        b"UID" => uid(c),
        _ => return None,
    })
}

/// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)` — RFC 9051 §6.4.9;
/// `sort` and `thread` take the `UID` prefix too (RFC 5256 §5).
fn uid(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let name = c
        .take_while(|b| b.is_ascii_alphanumeric())
        .to_ascii_uppercase();
    match name.as_slice() {
        b"FETCH" => fetch(c, true),
        b"STORE" => store(c, true),
        b"SEARCH" => search(c, true),
        b"SORT" => sort(c, true),
        b"THREAD" => thread(c, true),
        b"COPY" => copy_move(c, true, false),
        b"MOVE" => copy_move(c, true, true),
        // `uid-expunge = "EXPUNGE" SP sequence-set` — RFC 9051 §9.
        b"EXPUNGE" => {
            c.sp()?;
            sequence_set(c).map(CommandBody::UidExpunge)
        }
        _ => Err("unknown UID command"),
    }
}

/// `copy = "COPY" SP sequence-set SP mailbox` — RFC 9051 §6.4.7;
/// `move = "MOVE" SP sequence-set SP mailbox` — RFC 6851 §3.
fn copy_move(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> PResult<CommandBody> {
    c.sp()?;
    let sequence_set = sequence_set(c)?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    Ok(if is_move {
        CommandBody::Move {
            uid,
            sequence_set,
            mailbox,
        }
    } else {
        CommandBody::Copy {
            uid,
            sequence_set,
            mailbox,
        }
    })
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`;
/// `initial-resp = (base64 / "=")` — RFC 9051 §6.2.2, RFC 4959 §7.
fn authenticate(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mechanism = c.atom()?;
    let mut initial_response = None;
    if c.eat(b' ') {
        let raw = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        // `base64 = *(4base64-char) [base64-terminal]`: a multiple of 4, or "=" alone.
        if raw.is_empty() || (raw != b"=" && !raw.len().is_multiple_of(4)) {
            return Err("bad initial response");
        }
        initial_response = Some(Secret(raw.to_vec()));
    }
    Ok(CommandBody::Authenticate {
        mechanism,
        initial_response,
    })
}

/// `login = "LOGIN" SP userid SP password`; `userid = astring`; `password = astring`
/// — RFC 9051 §6.2.3.
fn login(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let username = c.astring()?;
    c.sp()?;
    let password = Secret(c.astring()?);
    Ok(CommandBody::Login { username, password })
}

/// `enable = "ENABLE" 1*(SP capability)`; `capability = ("AUTH=" auth-type) / atom`
/// — RFC 5161 §4.
fn enable(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut caps = Vec::new();
    while c.eat(b' ') {
        caps.push(c.atom()?);
    }
    if caps.is_empty() {
        return Err("ENABLE needs a capability");
    }
    Ok(CommandBody::Enable(caps))
}

/// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list`;
/// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`;
/// `setquota-resource = resource-name SP resource-limit` (`resource-limit = number64`) —
/// RFC 9208 §6.
fn setquota(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let root = c.astring()?;
    c.sp()?;
    c.expect(b'(', "SETQUOTA needs a list of limits")?;
    let mut limits = Vec::new();
    if !c.eat(b')') {
        loop {
            let name = c.atom()?;
            c.sp()?;
            limits.push((name, c.number64()?));
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::SetQuota { root, limits })
}

/// `select = "SELECT" SP mailbox [select-params]`; `examine = "EXAMINE" SP mailbox
/// [select-params]` — RFC 9051 §6.3.2, §6.3.3, RFC 4466 §2.1.
fn select(c: &mut Cursor<'_>) -> PResult<(Mailbox, Vec<SelectParam>)> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let params = if c.eat(b' ') {
        select_params(c)?
    } else {
        Vec::new()
    };
    Ok((mailbox, params))
}

/// `rename = "RENAME" SP mailbox SP mailbox` — RFC 9051 §6.3.6.
fn rename(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let from = c.mailbox()?;
    c.sp()?;
    let to = c.mailbox()?;
    Ok(CommandBody::Rename { from, to })
}

/// `id = "ID" SP id-params-list`; `id-params-list = "(" *(string SP nstring) ")" / nil`
/// — RFC 2971 §4.
fn id(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    if c.eat_keyword("NIL") {
        return Ok(CommandBody::Id(None));
    }
    c.expect(b'(', "expected '(' or NIL")?;
    let mut params = Vec::new();
    while !c.eat(b')') {
        if !params.is_empty() {
            c.sp()?;
        }
        let key = c.string()?;
        c.sp()?;
        params.push((key, c.nstring()?));
    }
    Ok(CommandBody::Id(Some(params)))
}

/// `idle = "IDLE" CRLF "DONE"` — RFC 9051 §6.3.13: whether a line received during IDLE is
/// the `DONE` that ends it (case-insensitive, CRLF or bare LF).
pub fn parse_idle_done(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.eq_ignore_ascii_case(b"DONE")
}
