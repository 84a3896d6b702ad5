//! Domains, accounts and aliases: who receives mail here and who may log in.

use async_trait::async_trait;
use mail_types::{Address, Domain};

use crate::{AccountId, StoreResult};

/// An account as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: AccountId,
    pub address: Address,
    /// PHC string (argon2id), never logged.
    pub password_hash: String,
    /// The account's own storage limit in bytes (`None`: the default applies, see
    /// [`crate::QuotaDefaults`]).
    pub quota_limit: Option<u64>,
    /// The account's own message-count limit (`None`: the default applies).
    pub message_limit: Option<u64>,
    /// SCRAM-SHA-256 credentials (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`, see
    /// `sasl::scram`), never logged; `None` when the password was set without them.
    pub scram: Option<String>,
}

/// What [`Directory::add_users`] did with one account of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewUserOutcome {
    Created(AccountId),
    /// The address has an account already (left as it is).
    Exists,
    /// The address's domain is not one of this server's.
    NoDomain,
}

/// An alias: one address delivered to one or more local users. `source` `@example.com`
/// (empty local part) is the domain's catch-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub source: String,
    pub targets: Vec<Address>,
}

/// An account's own choice of how long POP3-downloaded mail stays on the server (RFC 2449
/// §6.7 EXPIRE), made on the account pages; without one the configured policy applies.
/// Stored as `accounts.pop3_expire_days`: NULL none, -1 never, n ≥ 0 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop3Expire {
    /// Kept on the server.
    Never,
    /// Deleted this many days after the first download (0: at the end of that session's
    /// retention pass, i.e. as soon as possible).
    Days(u32),
}

impl Pop3Expire {
    /// The stored value.
    pub fn to_sql(self) -> i64 {
        match self {
            Pop3Expire::Never => -1,
            Pop3Expire::Days(n) => i64::from(n),
        }
    }
    /// From the stored value (`None` for NULL).
    pub fn from_sql(v: Option<i64>) -> Option<Pop3Expire> {
        match v? {
            n if n < 0 => Some(Pop3Expire::Never),
            n => Some(Pop3Expire::Days(u32::try_from(n).unwrap_or(u32::MAX))),
        }
    }
}

#[async_trait]
pub trait Directory: Send + Sync {
    async fn add_domain(&self, domain: &Domain) -> StoreResult<()>;
    /// Refuses with `Invalid` while users or aliases of the domain exist.
    async fn delete_domain(&self, domain: &Domain) -> StoreResult<()>;
    async fn list_domains(&self) -> StoreResult<Vec<Domain>>;
    async fn is_local_domain(&self, domain: &Domain) -> StoreResult<bool>;

    /// Creates the account with its default mailboxes (INBOX, Sent, Drafts, Trash, Junk,
    /// Archive). The domain must exist (`NotFound`), the address must be free (`Exists`).
    async fn add_user(&self, address: &Address, password_hash: &str) -> StoreResult<AccountId>;
    /// Adds many accounts (address, password hash) in one transaction, each with its default
    /// mailboxes as [`Directory::add_user`] makes them; one outcome per entry, in order. For
    /// bulk imports: one commit (one fsync) per batch instead of one per account.
    async fn add_users(&self, users: &[(Address, String)]) -> StoreResult<Vec<NewUserOutcome>>;
    /// Also clears the SCRAM credentials (they belong to the old password); set new ones with
    /// [`Directory::set_scram`].
    async fn set_password(&self, address: &Address, password_hash: &str) -> StoreResult<()>;
    /// Stores the account's SCRAM-SHA-256 credentials (RFC 5802 §3). `NotFound` without the user.
    async fn set_scram(&self, address: &Address, scram: &str) -> StoreResult<()>;
    /// Replaces the account's password hash with `new_hash` and its SCRAM credentials with
    /// `scram`, only if the stored hash is still `expected_hash` (an upgrade after a login
    /// must not undo a password change made meanwhile). Returns whether it was replaced.
    async fn replace_password(
        &self,
        address: &Address,
        expected_hash: &str,
        new_hash: &str,
        scram: Option<&str>,
    ) -> StoreResult<bool>;
    /// Deletes the account, its mailboxes and messages (blobs lose a reference each).
    async fn delete_user(&self, address: &Address) -> StoreResult<()>;
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Up to `limit` accounts whose address sorts after `after` (from the first when `None`),
    /// in address order: a pass over every account (retention) holds one page at a time, not
    /// 100,000 records.
    async fn list_users_after(
        &self,
        after: Option<&Address>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>>;
    async fn find_user(&self, address: &Address) -> StoreResult<Option<UserRecord>>;
    async fn user_count(&self) -> StoreResult<u64>;

    /// Adds (or replaces) an alias; every target must be a local user.
    async fn add_alias(&self, source: &str, targets: &[Address]) -> StoreResult<()>;
    async fn delete_alias(&self, source: &str) -> StoreResult<()>;
    async fn list_aliases(&self) -> StoreResult<Vec<Alias>>;

    /// The accounts mail to `address` goes to: the user itself, else an alias's targets, else
    /// the domain's catch-all; empty when nobody here receives it.
    async fn resolve_recipient(&self, address: &Address) -> StoreResult<Vec<AccountId>>;

    /// The account's own POP3 retention choice (`None`: the configured policy applies);
    /// `NotFound` without the user.
    async fn pop3_expire(&self, address: &Address) -> StoreResult<Option<Pop3Expire>>;
    /// Sets or clears (`None`) the account's POP3 retention choice; `NotFound` without the user.
    async fn set_pop3_expire(
        &self,
        address: &Address,
        choice: Option<Pop3Expire>,
    ) -> StoreResult<()>;
    /// Every account that made a choice, with it (the retention pass and POP3 CAPA read them).
    async fn pop3_expire_choices(&self) -> StoreResult<Vec<(Address, Pop3Expire)>>;
}
