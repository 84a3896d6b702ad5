//! IMAP sessions over the store traits: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) clients.
//!
//! Implements: STARTTLS, LOGIN, AUTHENTICATE PLAIN/LOGIN with SASL-IR (RFC 4959), ENABLE
//! (RFC 5161) of IMAP4rev2 and UTF8=ACCEPT (RFC 6855), ID (RFC 2971), NAMESPACE (RFC 2342),
//! LIST with LIST-EXTENDED (RFC 5258, RECURSIVEMATCH with CHILDINFO), LIST-STATUS (RFC 5819),
//! SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348) attributes, LSUB, STATUS, CREATE, DELETE,
//! RENAME, (UN)SUBSCRIBE (subscriptions are names that outlive their mailboxes: `\NonExistent`
//! in LIST, `\Noselect` in LSUB; patterns matched in linear time, `cmd/list/pattern.rs`),
//! SELECT/EXAMINE, CLOSE, UNSELECT (RFC 3691), FETCH, STORE, EXPUNGE, UID EXPUNGE / COPYUID /
//! APPENDUID (RFC 4315), COPY, MOVE (RFC 6851), APPEND, IDLE
//! (RFC 2177, with a `* OK Still here` keepalive every `idle_keepalive`), LITERAL+ (RFC 7888,
//! oversized non-synchronising literals are read, dropped and answered `NO [TOOBIG]`; before
//! login, literals over `max_preauth_literal` are refused unread, and a non-synchronising one
//! closes the connection), and live updates from other sessions (EXISTS, EXPUNGE,
//! FETCH FLAGS) through the store's change events.
//!
//! SEARCH / UID SEARCH with every RFC 9051 §6.4.4 key, ESEARCH (RFC 4731; MIN/MAX/ALL/COUNT)
//! and SEARCHRES (RFC 5182: `RETURN (SAVE)`, `$` in FETCH/STORE/COPY/MOVE/SEARCH and their
//! UID forms; reset by SELECT/EXAMINE/CLOSE/UNSELECT, expunged messages drop out).
//! BINARY (RFC 3516: `BINARY[]`, `.PEEK`, `.SIZE`, partials, `~{n}` literal8 when the data
//! holds NUL, `NO [UNKNOWN-CTE]`; APPEND of literal8 data, binary parts stored base64-encoded,
//! RFC 3516 §4.4). FETCH sections, BINARY parts and BODYSTRUCTURE come from one MIME part tree
//! (`mime/`), nested message/rfc822 parts included (RFC 9051 §6.4.5); ENVELOPE address lists
//! are parsed from the raw fields (RFC 5322 groups, routes). MULTIAPPEND (RFC 3502, all or
//! nothing by rolling back with an expunge), APPENDLIMIT (RFC 7889, = `max_message_size`).
//! `\Recent` for rev1 clients (RFC 3501 §2.3.2, see `recent.rs`): claimed by the first
//! read-write SELECT or EXISTS update in the process, peeked at by EXAMINE, counted by
//! STATUS RECENT and SEARCH RECENT/NEW/OLD; never shown to IMAP4rev2 sessions.
//! DELETE of a mailbox with inferiors is refused with `NO [HASCHILDREN]` (RFC 9051 §6.3.5).
//! ENVELOPE/BODYSTRUCTURE text that is not ASCII goes to clients without UTF-8 as RFC 2047
//! encoded-words (RFC 6855 §3, `downgrade.rs`). UID commands announce new messages first, so
//! `UID FETCH n:*` sees what other sessions added.
//!
//! SORT and UID SORT (RFC 5256, SORT=DISPLAY RFC 5957), THREAD=ORDEREDSUBJECT and
//! THREAD=REFERENCES (RFC 5256), ESORT and CONTEXT=SEARCH / CONTEXT=SORT (RFC 5267: RETURN
//! (UPDATE) with ADDTO/REMOVEFROM from every session's changes, CANCELUPDATE, NOUPDATE),
//! PARTIAL (RFC 9394: SEARCH/SORT result windows from either end, the UID FETCH modifier). The
//! header facts they sort and thread by come from one loader (`sort::load_keys`); the CPU work
//! runs on the blocking pool. EXPUNGE responses go out highest number first.
//!
//! CONDSTORE and QRESYNC (RFC 7162): ENABLE, SELECT/EXAMINE (CONDSTORE) and (QRESYNC ...)
//! with `VANISHED (EARLIER)` and the changed messages from the store's expunge log, `OK
//! [HIGHESTMODSEQ]`, FETCH MODSEQ and (CHANGEDSINCE n [VANISHED]), STORE (UNCHANGEDSINCE n)
//! with `[MODIFIED]`, SEARCH MODSEQ with `(MODSEQ n)`, STATUS HIGHESTMODSEQ; once enabled, every
//! flag FETCH response carries MODSEQ, and with QRESYNC expunges are `* VANISHED`. MODSEQ is
//! per message, not per flag (the entry-name search forms are treated as the plain one); the
//! QRESYNC sequence match data is not used (the expunge log is complete); EXPUNGE's tagged OK
//! carries no HIGHESTMODSEQ.
//!
//! FLAGS lists the keywords in use at SELECT, and a new `* FLAGS` / `PERMANENTFLAGS` goes
//! before any FETCH that shows a keyword the client was not told of (RFC 9051 §7.3.5,
//! `keywords.rs`). FETCH (`cmd/fetch/`) costs what its items need: flags, dates and sizes from
//! the session's view; ENVELOPE, BODY, BODYSTRUCTURE and the header from the store's cache of
//! parsed message facts (`facts.rs`, computed once per message body); large bodies streamed
//! from the store; responses sent as they accumulate, so memory per connection stays bounded.
//! SEARCH answers header keys from the same cache and yields to other sessions as it scans.
//!
//! CATENATE (RFC 4469, `cmd/catenate.rs`) with IMAP URLs (RFC 5092, `cmd/imapurl.rs`);
//! URLAUTH (RFC 4467: GENURLAUTH, URLFETCH, RESETKEY, INTERNAL mechanism as HMAC-SHA256 with
//! per-mailbox access keys in the store) and URLAUTH=BINARY (RFC 5524), in `cmd/urlauth.rs`.
//! NOTIFY (RFC 5465, `cmd/notify/`): STATUS of other mailboxes, the selected mailbox's
//! updates and LIST for mailbox names and subscriptions, sent at any time — between commands
//! and in IDLE too.
//!
//! QUOTA (RFC 9208, `cmd/quota.rs`): GETQUOTA, GETQUOTAROOT, and SETQUOTA with QUOTASET for
//! quota administrators; one root `""` per account with STORAGE and MESSAGE; APPEND, COPY
//! and MOVE answer `NO [OVERQUOTA]` from the store's atomic check (a MOVE within the account
//! is never refused); STATUS SIZE (RFC 8438).
//!
//! Not implemented: SEARCH CHARSET other than UTF-8/US-ASCII,
//! `\Noselect` leftovers of deleted parents (refused instead), downgrade of EAI addresses
//! (RFC 6857).
//! `\Recent` claims live in memory: after a restart every message is recent once more
//! (RFC 3501 §2.3.2 prefers that to losing it).

mod cmd;
mod ctx;
mod dispatch;
mod downgrade;
mod facts;
#[doc(hidden)]
pub mod fuzz_api;
mod keywords;
mod metrics;
mod mime;
mod recent;
mod search;
mod session;
mod sort;
mod state;
mod view;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, PlaintextAuth, Shutdown, TlsAcceptor};

pub use recent::RecentTracker;

/// The format of the message facts this server caches in the store (`facts.rs`).
pub const FACTS_VERSION: u32 = facts::VERSION;

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub hostname: String,
    /// Longest command line (the text between literals). RFC 7162 §4 asks for at least 8192;
    /// the default is 64 KiB, as Dovecot's, so a client that sends long quoted strings (an ID
    /// with 30 values of 1,024 octets, RFC 2971 §3.3; a long UID set) is not refused.
    pub max_line_length: usize,
    /// RFC 9051 §5.4: autologout after at least 30 minutes of inactivity; IDLE is bounded by
    /// the same timer, re-armed by each IDLE command.
    pub idle_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
    /// Largest message APPEND accepts (the literal size), answered `NO [TOOBIG]` beyond.
    pub max_message_size: u64,
    /// Largest whole command, lines and literals together.
    pub max_command_size: u64,
    /// Largest literal before login (a user name or password for LOGIN): anything larger is
    /// refused before its bytes are read, so anonymous clients cannot make the server buffer
    /// megabytes.
    pub max_preauth_literal: u64,
    /// During IDLE, an untagged `* OK Still here` this often, so NAT boxes and firewalls keep
    /// the connection (RFC 2177 §3 allows it; Dovecot's `imap_idle_notify_interval`). Zero
    /// sends none.
    pub idle_keepalive: Duration,
    /// How long the TLS handshake after STARTTLS may take (a client that stalls in it holds a
    /// connection slot until then).
    pub tls_handshake_timeout: Duration,
    /// Addresses of the quota administrators (RFC 9208 §3.1.2 QUOTASET): they may SETQUOTA
    /// and name any account's quota root by its address. Empty: nobody.
    pub quota_admins: Vec<String>,
    /// The process-wide budget for message data being received (APPEND literals, shared with
    /// SMTP DATA/BDAT): a literal that would exceed it is refused with `NO [LIMIT]`.
    /// Unlimited by default.
    pub transfer_budget: Arc<server_kit::MemoryBudget>,
    /// Distinct keywords a mailbox may hold before STORE refuses new ones with `NO [LIMIT]`
    /// and PERMANENTFLAGS stops offering `\*` (RFC 9051 §2.3.2, §7.1): the per-session
    /// keyword tables are bounded by it.
    pub max_keywords: usize,
}

impl ImapConfig {
    /// Defaults: 64 KiB lines, 30-minute idle timeout, plaintext passwords only from
    /// loopback, 50 MiB messages, 8 KiB literals before login, IDLE keepalive every 2 minutes.
    pub fn new(hostname: impl Into<String>) -> ImapConfig {
        ImapConfig {
            hostname: hostname.into(),
            max_line_length: 64 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            plaintext_auth: PlaintextAuth {
                allow_loopback: true,
            },
            max_message_size: 50 * 1024 * 1024,
            max_command_size: 60 * 1024 * 1024,
            max_preauth_literal: 8 * 1024,
            idle_keepalive: Duration::from_secs(120),
            tls_handshake_timeout: Duration::from_secs(30),
            quota_admins: Vec::new(),
            transfer_budget: server_kit::MemoryBudget::unlimited(),
            max_keywords: 256,
        }
    }
}

pub struct ImapServer {
    pub config: ImapConfig,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
    /// `\Recent` claims (RFC 3501 §2.3.2); share one tracker between all the servers
    /// (listeners) over the same store.
    pub recent: Arc<RecentTracker>,
}

/// Runs one IMAP session to its end. `tls` says whether `stream` is already encrypted
/// (implicit TLS, port 993).
pub async fn serve(
    server: Arc<ImapServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    session::run(server, stream, tls, info, shutdown).await
}
