//! `yubin check`: a read-only verification of the store's invariants, like a file-system
//! check (or Dovecot's `doveadm force-resync` without the repair). Each backend implements
//! [`crate::MailStore::check`]; this module holds what they report.
//!
//! What a backend verifies (the invariants of `lib.rs` and of its own layout):
//! - per mailbox: UIDNEXT greater than every UID, present or expunged (RFC 9051 §2.3.1.1: a
//!   UID is never reused), no UID both present and expunged, no MODSEQ above HIGHESTMODSEQ
//!   (RFC 7162 §3.1);
//! - per account: the quota counters equal the real sums of its messages (RFC 9208);
//! - per body: its reference count equals the messages and queue entries using it, every
//!   referenced body is present with the recorded size and hash, and no body is kept that
//!   nothing references. A body file younger than the grace period is not reported as an
//!   orphan: a running server writes a body before the row that references it.
//!
//! It runs beside a live server: the database is read from one snapshot, and a finding about a
//! file that could be a race with a commit after the snapshot is confirmed by a second read.

use std::fmt;
use std::time::Duration;

/// How old an unreferenced body must be before `check` reports it: a running server writes a
/// body, then commits the row, within well under a minute.
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// What [`crate::MailStore::check`] looked at and found wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub accounts: u64,
    pub mailboxes: u64,
    pub messages: u64,
    pub blobs: u64,
    /// One line per violated invariant, naming the object (empty: the store is consistent).
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        write!(
            f,
            "checked {} accounts, {} mailboxes, {} messages, {} bodies: {}",
            self.accounts,
            self.mailboxes,
            self.messages,
            self.blobs,
            match self.problems.len() {
                0 => "no problems".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        )
    }
}
