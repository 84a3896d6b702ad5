//! POP3 codec, sans-IO: command parser, response encoder, and the byte-stuffing and TOP
//! filters that turn a stored message into a multi-line response in constant memory.
//!
//! Implements the wire syntax of:
//! - RFC 1939 (POP3): USER, PASS, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL;
//!   multi-line responses with byte-stuffing (§3).
//! - RFC 2449 (CAPA, extended response codes `[IN-USE]`, `[SYS/TEMP]`, …).
//! - RFC 2595 §4 (STLS).
//! - RFC 5034 (AUTH with optional initial response, `+ ` continuations).
//! - RFC 3206 (`[AUTH]`, `[SYS/TEMP]`, `[SYS/PERM]` response codes).
//!
//! Not implemented: APOP (RFC 1939 §7, needs plaintext-equivalent passwords; parsed as an
//! unknown command), LOGIN-DELAY and EXPIRE values (RFC 2449 §6.5/§6.7).
//!
//! Framing (reading one bounded CRLF line) is the caller's job (`server_kit::Conn`); this crate
//! never does I/O.

mod command;
mod response;
mod stuff;
mod top;

pub use command::{Command, ParseError};
pub use response::{Reply, RespCode, Status, continuation, multiline_end};
pub use stuff::DotStuffer;
pub use top::TopFilter;
