//! IMAP sessions over the store traits: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) clients.
//!
//! Implements: STARTTLS, LOGIN, AUTHENTICATE PLAIN/LOGIN with SASL-IR (RFC 4959), ENABLE
//! (RFC 5161) of IMAP4rev2 and UTF8=ACCEPT (RFC 6855), ID (RFC 2971), NAMESPACE (RFC 2342),
//! LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and
//! CHILDREN (RFC 3348) attributes, LSUB, STATUS, CREATE, DELETE, RENAME, (UN)SUBSCRIBE,
//! SELECT/EXAMINE, CLOSE, UNSELECT (RFC 3691), FETCH, STORE, EXPUNGE, UID EXPUNGE / COPYUID /
//! APPENDUID (RFC 4315), COPY, MOVE (RFC 6851), APPEND, IDLE
//! (RFC 2177), LITERAL+ (RFC 7888), and live updates from other sessions (EXISTS, EXPUNGE,
//! FETCH FLAGS) through the store's change events.
//!
//! SEARCH / UID SEARCH with every RFC 9051 §6.4.4 key and ESEARCH (RFC 4731; MIN/MAX/ALL/COUNT).
//!
//! Not implemented: CONDSTORE/QRESYNC (the parser accepts their syntax; the session refuses
//! or ignores it), SEARCHRES (`$` is the empty set, RETURN (SAVE) is BAD), MODSEQ search
//! key, BINARY fetch items, QUOTA, MULTIAPPEND beyond one message per command, a precise
//! `\Recent` flag of RFC 3501 (0 recent at SELECT; messages that arrive while selected are
//! recent), SEARCH CHARSET other than UTF-8/US-ASCII.

mod cmd;
mod dispatch;
mod mime;
mod search;
mod session;
mod state;

use std::sync::Arc;
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, PlaintextAuth, Shutdown, TlsAcceptor};

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub hostname: String,
    /// Longest command line (the text between literals). RFC 7162 §4 asks for at least 8192.
    pub max_line_length: usize,
    /// RFC 9051 §5.4: autologout after at least 30 minutes of inactivity; IDLE is bounded by
    /// the same timer, re-armed by each IDLE command.
    pub idle_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
    /// Largest message APPEND accepts (the literal size), answered `NO [TOOBIG]` beyond.
    pub max_message_size: u64,
    /// Largest whole command, lines and literals together.
    pub max_command_size: u64,
}

impl ImapConfig {
    /// Defaults: 8192-octet lines, 30-minute idle timeout, plaintext passwords only from
    /// loopback, 50 MiB messages.
    pub fn new(hostname: impl Into<String>) -> ImapConfig {
        ImapConfig {
            hostname: hostname.into(),
            max_line_length: 8192,
            idle_timeout: Duration::from_secs(30 * 60),
            plaintext_auth: PlaintextAuth {
                allow_loopback: true,
            },
            max_message_size: 50 * 1024 * 1024,
            max_command_size: 60 * 1024 * 1024,
        }
    }
}

pub struct ImapServer {
    pub config: ImapConfig,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
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
