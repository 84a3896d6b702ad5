//! One error type for every backend; each protocol maps it to replies in exactly one place
//! (IMAP `NO [OVERQUOTA]`, SMTP `452 4.2.2`, POP3 `-ERR [SYS/TEMP]`, …).

/// What went wrong in the store, in terms a protocol can answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The named object (domain, account, mailbox, message) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object to create exists already.
    #[error("already exists: {0}")]
    Exists(String),
    /// The account is over its storage quota.
    #[error("over quota")]
    OverQuota,
    /// The message was expunged meanwhile.
    #[error("message expunged")]
    Expunged,
    /// Exclusive access is held by another session (POP3 maildrop lock, RFC 1939 §8).
    #[error("in use by another session")]
    InUse,
    /// The request is invalid (bad name, refused operation); the string says why.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A transient failure (I/O, database busy); the client may retry later.
    #[error("temporary failure: {0}")]
    Temporary(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
