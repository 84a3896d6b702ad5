//! yubin-bench: load generators for measuring a running yubin (or any SMTP server).
//!
//! - `smtp`: delivers N messages over C concurrent connections, a new connection per
//!   message, and reports messages stored per second (250 after DATA — RFC 5321 §4.1.1.4;
//!   yubin sends it only after fsync), DATA-end→250 latency percentiles and the server's RSS.
//! - `idle`: holds K connections open after the banner and reports server RSS per connection.
//!
//! The client speaks only the RFC 5321 subset it needs: no PIPELINING (RFC 2920), no
//! STARTTLS (RFC 3207), no AUTH (RFC 4954), no BDAT/CHUNKING (RFC 3030), no SMTPUTF8.

pub mod client;
pub mod idle;
pub mod load;
pub mod message;
pub mod procfs;
pub mod report;
pub mod rlimit;
