//! SMTP codec, sans-IO: command parsing, reply encoding, DATA end-of-data scanning with
//! dot-unstuffing, and BDAT chunk headers. No sockets, no session state.
//!
//! RFCs: 5321 (SMTP), 1870 (SIZE), 2034 + 3463 (enhanced status codes), 2920 (PIPELINING,
//! a session matter), 3030 (CHUNKING/BDAT, BINARYMIME), 3207 (STARTTLS), 4954 (AUTH),
//! 6152 (8BITMIME), 6531 (SMTPUTF8), 3461 (DSN parameters `RET`, `ENVID`, `NOTIFY`, `ORCPT`
//! and xtext).
//!
//! Not implemented: the RFC 6533 `utf-8-addr-xtext` forms of ORCPT, `MT-PRIORITY`, `REQUIRETLS`, `DELIVERBY`, `TURN`/`ETRN`, and the client side.

mod command;
mod data;
mod dsn;
mod path;
mod reply;

pub use command::{Command, parse_command};
pub use data::{DataProgress, DataScanner, dot_stuff, to_crlf};
pub use dsn::{Notify, RcptParams, Ret, is_xtext, xtext_decode, xtext_encode};
pub use path::{Body, ForwardPath, MailParams, ReversePath};
pub use reply::Reply;

/// Why a command line could not be parsed; [`ParseError::reply`] gives the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    UnknownCommand,
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// A recipient path that is not a valid mailbox.
    #[error("bad recipient address")]
    BadAddress,
    /// A sender path that is not a valid mailbox.
    #[error("bad sender address")]
    BadSender,
    #[error("unknown parameter")]
    UnknownParameter,
}

impl ParseError {
    /// The reply for this error (RFC 5321 §4.2.2, RFC 3463 §3).
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::UnknownCommand => Reply::new(500, "5.5.1", "Command unrecognized"),
            ParseError::Syntax(why) => Reply::new(501, "5.5.4", format!("Syntax error: {why}")),
            // RFC 3463 §3.2: X.1.3 bad destination mailbox address syntax.
            ParseError::BadAddress => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
            // RFC 3463 §3.2: X.1.7 bad sender's mailbox address syntax.
            ParseError::BadSender => Reply::new(501, "5.1.7", "Bad sender address syntax"),
            // RFC 5321 §4.1.1.11: 555 for unrecognized MAIL/RCPT parameters.
            ParseError::UnknownParameter => Reply::new(555, "5.5.4", "Unsupported parameter"),
        }
    }
}
