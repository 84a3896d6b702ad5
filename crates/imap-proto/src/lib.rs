//! IMAP codec, sans-IO: command framing (lines and literals), command parsing into typed
//! values, and response encoding. No sockets, no session state.
//!
//! Use: feed received bytes to a [`CommandFramer`]; on [`Decoded::Complete`] give the bytes
//! to [`parse_command`]; answer [`Decoded::NeedsContinuation`] with `+`; answer a
//! [`FrameError`] or [`ParseError`] with `BAD` (or `NO [TOOBIG]`) and go on. Responses are
//! built from [`Response`] / [`Status`] / [`Data`] and written with [`Response::encode`].
//!
//! RFCs: 9051 (IMAP4rev2) and 3501 (IMAP4rev1) — every command of §6 and the responses of §7;
//! 7888 (LITERAL+ / LITERAL-), 3516 (BINARY: `~{n}` literal8, BINARY fetch), 4959 (SASL-IR),
//! 5161 (ENABLE), 4466 (generic command parameters), 7162 (CONDSTORE/QRESYNC: SELECT
//! parameters, CHANGEDSINCE, VANISHED, UNCHANGEDSINCE, MODSEQ search), 5258 (LIST-EXTENDED),
//! 5819 (LIST-STATUS), 6154 (SPECIAL-USE, CREATE USE), 4731 (ESEARCH), 5182 (SEARCHRES `$`),
//! 5032 (WITHIN: OLDER/YOUNGER), 3502 (MULTIAPPEND), 6851 (MOVE), 4315 (UIDPLUS), 5530
//! (response codes), 2971 (ID), 9208 (GETQUOTA/GETQUOTAROOT/SETQUOTA), 2342 (NAMESPACE), 6855
//! (UTF8=ACCEPT: strings as UTF-8), 5256 (SORT, THREAD and their responses), 5957
//! (SORT=DISPLAY), 5267 (ESORT, CONTEXT=SEARCH/SORT: RETURN (CONTEXT UPDATE PARTIAL),
//! CANCELUPDATE, ADDTO/REMOVEFROM, NOUPDATE), 9394 (PARTIAL search results, negative ranges),
//! modified UTF-7 names (RFC 3501 §5.1.3), CATENATE (RFC 4469, `TEXT` parts also as
//! literal8), URLAUTH (RFC 4467: GENURLAUTH, RESETKEY, URLFETCH, `BADURL`/`URLMECH`) with
//! URLAUTH=BINARY's extended URLFETCH (RFC 5524), IMAP URLs of messages and message parts
//! (RFC 5092, [`ImapUrl`]), NOTIFY (RFC 5465: NOTIFY SET/NONE, `NOTIFICATIONOVERFLOW`,
//! `BADEVENT`).
//!
//! Not implemented: the client side; `append-ext`s other than CATENATE; ACL,
//! METADATA, COMPRESS, SAVEDATE, OBJECTID and PREVIEW fetch items; the SEARCH return option
//! RELEVANCY; THREAD algorithms other than ORDEREDSUBJECT and REFERENCES; `SEARCH` keys of
//! extensions not listed above (they are refused as syntax errors). Bare LF is tolerated in
//! place of CRLF.

mod encode;
mod framing;
mod mutf7;
mod parse;
mod types;
mod url;

pub use encode::*;
pub use framing::{CommandFramer, Decoded, FrameError, FrameLimits};
pub use mutf7::{Mutf7Error, decode_mutf7, encode_mutf7};
pub use parse::*;
pub use types::{
    Atom, Date, DateTime, Flag, Mailbox, Secret, Tag, is_astring_char, is_atom_char,
    normalize_inbox,
};
pub use url::{ImapUrl, UrlAccess, UrlAuth, UrlBase, UrlError, encode_component};
