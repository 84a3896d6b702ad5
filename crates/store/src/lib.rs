//! The storage API every protocol speaks (in the spirit of Dovecot's lib-storage).
//!
//! Nouns: a [`Directory`] of domains, accounts and aliases; a [`MailStore`] of mailboxes,
//! messages and blobs per account; [`ChangeEvent`]s published after each commit.
//!
//! Protocol crates depend on these traits only, never on a backend. The embedded backend is
//! `store-sqlite` (SQLite metadata + content-addressed blob files); `store-postgres` is shared
//! by several nodes. Both pass the conformance suite (`conformance`, feature `conformance`).
//!
//! Invariants every backend keeps:
//! - A call that returns `Ok` after writing has made the write durable (fsync'd): protocols
//!   acknowledge to clients right after it.
//! - UIDs in a mailbox are strictly increasing and never reused while UIDVALIDITY stays the same
//!   (RFC 9051 §2.3.1.1). MODSEQs are strictly increasing per mailbox (RFC 7162 §3.1).
//! - Change events are published only after the change is committed, and are written to the
//!   backend's durable per-account change log in the same transaction as the change (see
//!   `changes`), so that every process — and every node sharing a database — sees every
//!   change, whoever made it.
//! - Every mailbox and message call is scoped to an account: a [`MailboxId`] names its
//!   account, and a mailbox that is not that account's is `NotFound` (`backend::owners`).
//! - Nothing a protocol relies on for exclusivity or agreement lives in one process's memory:
//!   POP3 maildrop locks are leases ([`Coordination`]), `\Recent` claims are a mailbox column
//!   ([`MailStore::claim_recent`]), secrets shared by every node are stored once, and so are
//!   the DKIM signing keys ([`DkimKeyStore`]).

pub mod backend;
mod changes;
mod check;
#[cfg(feature = "conformance")]
pub mod conformance;
mod coordination;
mod dates;
mod directory;
mod dkim;
mod error;
mod greylist;
mod ids;
mod lease;
mod login_guard;
mod mailstore;
mod queue;
mod quota;
mod sending;
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
mod sql_ids;
pub mod transfer;
mod types;

pub use changes::{
    CHANGE_FEED_CAPACITY, Change, ChangeEvent, ChangeFeed, ChangeHub, ChangeLogReader, LoggedBatch,
    RecvError, TryRecvError, decode_events, encode_events, fill_requested, group_by_account,
};
pub use check::{CheckReport, DEFAULT_ORPHAN_GRACE};
pub use coordination::Coordination;
pub use dates::{AgeBasis, MessageDates};
pub use directory::{Alias, Directory, NewUserOutcome, Pop3Expire, UserRecord};
pub use dkim::{DkimAlgorithm, DkimKey, DkimKeyStore};
pub use error::{StoreError, StoreResult};
pub use greylist::{Greylist, GreylistEntry, GreylistPolicy, GreylistTriple};
pub use lease::{LeaseGuard, node_id};
pub use login_guard::{Ban, FailureCount, FailureWindows, GuardScope, LoginGuardStore};
pub use mailstore::{BlobReader, ConditionalStore, ExpungeLogLimits, MailStore, OpenedMailbox};
pub use queue::{
    AttemptResult, Claim, ClaimLimits, ClaimedMessage, DsnNotify, DsnRet, Lease, LeaseId,
    OutboundEnvelope, OutboundRecipient, QueueId, QueueStore, QueuedMessage, QueuedRecipient,
    RecipientStatus,
};
pub use quota::{
    AccountQuota, Charged, DEFAULT_WARN_AT, QuotaDefaults, QuotaLimits, QuotaResource, QuotaRow,
    QuotaStore, QuotaWarning, charge as charge_quota,
};
pub use sending::{SendingLimits, SendingLog, SendingUsage};
pub use types::*;

/// A backend implements all five; the server holds one `Arc<dyn Store>` (which converts to
/// `Arc<dyn Coordination>` for a [`LeaseGuard`], or `Arc<dyn DkimKeyStore>` for the signer).
pub trait Store:
    Directory + MailStore + Coordination + DkimKeyStore + MessageDates + QuotaStore
{
}
impl<T: Directory + MailStore + Coordination + DkimKeyStore + MessageDates + QuotaStore> Store
    for T
{
}
