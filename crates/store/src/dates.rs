//! The dates a message carries besides its internal date, and what retention asks of them.
//!
//! - The save date (RFC 8514 §1): when the message entered its current mailbox — set by the
//!   backend to its clock at delivery, APPEND, COPY and MOVE (a copy or a moved message is
//!   saved anew), kept by `yubin migrate`. Messages stored before save dates were recorded
//!   count as saved when the schema was upgraded (both backends' migration step); a row
//!   without one (`None`) goes by its internal date.
//! - The first-retrieval time: when a POP3 client first RETRieved the message (the server
//!   side of "leave a copy on the server for N days", RFC 2449 §6.7 EXPIRE). Set once, never
//!   moved by later RETRs; not an IMAP-visible change (no MODSEQ, no event).
//!
//! Removing aged messages is not done here: the retention task expunges (or moves) the UIDs
//! found by [`MessageDates::aged_messages`] through the ordinary `MailStore` calls, so the
//! change log, MODSEQs and live sessions see them as any other expunge.

use async_trait::async_trait;

use crate::{MailboxId, StoreResult, Uid, UnixTime};

/// Which date a retention rule measures a message's age from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeBasis {
    /// The save date (the internal date for messages without one).
    Saved,
    /// The first POP3 retrieval; messages never retrieved never age.
    Retrieved,
}

#[async_trait]
pub trait MessageDates: Send + Sync {
    /// The save dates of the messages `uids` (sorted or not), in UID order; missing UIDs are
    /// skipped, `None` for a message stored before save dates were recorded.
    async fn save_dates(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<(Uid, Option<UnixTime>)>>;

    /// Records `at` as the first-retrieval time of the messages `uids` that have none yet
    /// (POP3 RETR); missing UIDs are skipped. Returns how many got one now.
    async fn mark_retrieved(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        at: UnixTime,
    ) -> StoreResult<u64>;

    /// The first-retrieval times of the messages `uids`, in UID order (missing UIDs skipped).
    async fn retrieved_dates(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<(Uid, Option<UnixTime>)>>;

    /// Up to `limit` UIDs of `mailbox` whose `basis` date is before `before`, the oldest
    /// first (ties in any order), returned ascending: one batch of what a retention rule
    /// removes. Backends answer from an index range read that stops at `limit` (no sort of
    /// every due message), so a batch costs the same in a mailbox of a million messages.
    async fn aged_messages(
        &self,
        mailbox: MailboxId,
        basis: AgeBasis,
        before: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<Uid>>;
}
