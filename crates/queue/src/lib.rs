//! Outbound delivery: the queue scheduler (claims with leases, so several processes can share
//! one queue), MX resolution, an SMTP client, DSNs and DKIM.
//!
//! RFCs: 5321 (§4.5.4 retry strategy, §5 address resolution and implicit MX, §6.1 reliable
//! delivery), 7505 (null MX), 3207 (STARTTLS, opportunistic per RFC 7435), 4954 (AUTH PLAIN to
//! a smarthost), 3461 (DSN parameters passed on), 3464 (DSN format), 3463 (status codes),
//! 6531 (SMTPUTF8), 6152 (8BITMIME), 1870 (SIZE), 2920 (PIPELINING: MAIL, RCPT and DATA as one
//! group when the server offers it), 6376 + 8463 (DKIM signing, Ed25519 and RSA).
//!
//! Not implemented: CHUNKING (RFC 3030) on the client side, MTA-STS (RFC 8461), DANE
//! (RFC 7672), REQUIRETLS, conversion of 8-bit messages for 7-bit servers (they are sent
//! as they are), per-domain limits on the connection *rate* (the number of concurrent
//! connections per destination is limited, across processes), IPv6/IPv4 source selection.

pub mod client;
pub mod config;
pub mod dkim;
pub mod dns;
pub mod dsn;
mod engine;
pub mod reply;

pub use config::{DnsOverride, QueueConfig, Smarthost, SmarthostTls};
pub use engine::Engine;
