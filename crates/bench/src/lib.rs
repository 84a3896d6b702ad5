//! yubin-bench: load generators for measuring a running yubin (or any SMTP server).
//!
//! - `smtp`: delivers N messages over C concurrent connections, a new connection per
//!   message, and reports messages stored per second (250 after DATA — RFC 5321 §4.1.1.4;
//!   yubin sends it only after fsync), DATA-end→250 latency percentiles and the server's RSS.
//! - `checks`: the CPU cost of the checks on one arriving message (SPF, iprev, DKIM, ARC,
//!   DMARC), in process, DNS from a static table.
//! - `idle`: holds K connections open after the banner and reports server RSS per connection.
//! - `imap-fill`: loads mailboxes from an mbox, through the store or over IMAP APPEND.
//! - `imap-users`: creates many accounts through the store, the password hashed once.
//! - `imap-select`: LOGIN/SELECT latency and `UID FETCH 1:* (UID FLAGS)` throughput.
//! - `imap-idle`: K (TLS) sessions in IDLE (RFC 2177); server RSS per connection.
//! - `idle-latency`: delivery (SMTP 250) → `* N EXISTS` in an IDLE session, p50/p99, optionally
//!   under SMTP load and across nodes sharing one store.
//! - `imap-mix`: C clients running a realistic IMAP command mix; commands/s and latency.
//! - `plot`: a CSV of samples drawn as a PNG (the soak run's curves, docs/soak.md).
//!
//! The SMTP client speaks only the RFC 5321 subset it needs: no PIPELINING (RFC 2920), no
//! STARTTLS (RFC 3207), no AUTH (RFC 4954), no BDAT/CHUNKING (RFC 3030), no SMTPUTF8. The IMAP
//! client (RFC 9051 subset) does LOGIN, tagged commands, APPEND and IDLE; no STARTTLS, no
//! SASL, no response parsing beyond status words and EXISTS.

pub mod checks;
pub mod client;
pub mod dkim_sign;
pub mod idle;
pub mod idle_latency;
pub mod imap_client;
pub mod imap_fill;
pub mod imap_idle;
pub mod imap_mix;
pub mod imap_scale;
pub mod imap_select;
pub mod imap_users;
pub mod load;
pub mod mbox;
pub mod message;
pub mod plot;
pub mod procfs;
pub mod report;
pub mod rlimit;
