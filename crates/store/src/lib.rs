//! The storage API every protocol speaks (in the spirit of Dovecot's lib-storage).
//!
//! Nouns: a [`Directory`] of domains, accounts and aliases; a [`MailStore`] of mailboxes,
//! messages and blobs per account; [`ChangeEvent`]s published after each commit.
//!
//! Protocol crates depend on these traits only, never on a backend. The embedded backend is
//! `store-sqlite` (SQLite metadata + content-addressed blob files); a PostgreSQL backend shared
//! by several nodes implements the same traits later.
//!
//! Invariants every backend keeps:
//! - A call that returns `Ok` after writing has made the write durable (fsync'd): protocols
//!   acknowledge to clients right after it.
//! - UIDs in a mailbox are strictly increasing and never reused while UIDVALIDITY stays the same
//!   (RFC 9051 §2.3.1.1). MODSEQs are strictly increasing per mailbox (RFC 7162 §3.1).
//! - Change events are published only after the change is committed.

mod changes;
#[cfg(feature = "conformance")]
pub mod conformance;
mod directory;
mod error;
mod mailstore;
mod queue;
mod sending;
mod types;

pub use changes::{CHANGE_FEED_CAPACITY, Change, ChangeEvent, ChangeHub};
pub use directory::{Alias, Directory, UserRecord};
pub use error::{StoreError, StoreResult};
pub use mailstore::{BlobReader, ConditionalStore, MailStore, MailboxLock, OpenedMailbox};
pub use queue::{
    AttemptResult, Claim, ClaimLimits, ClaimedMessage, DsnNotify, DsnRet, Lease, LeaseId,
    OutboundEnvelope, OutboundRecipient, QueueId, QueueStore, QueuedMessage, QueuedRecipient,
    RecipientStatus,
};
pub use sending::{SendingLimits, SendingLog, SendingUsage};
pub use types::*;

/// A backend implements both halves; the server holds one `Arc<dyn Store>`.
pub trait Store: Directory + MailStore {}
impl<T: Directory + MailStore> Store for T {}
