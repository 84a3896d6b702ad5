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

/// How backends word a full file system or database in [`StoreError::Temporary`]: SQLite's
/// `SQLITE_FULL`, `ENOSPC`'s text (blob files; PostgreSQL's "could not extend file"), and
/// PostgreSQL's SQLSTATE 53100 name.
const STORAGE_FULL: &[&str] = &[
    "database or disk is full",
    "No space left on device",
    "(os error 28)",
    "disk_full",
];

impl StoreError {
    /// Whether the store failed because its disk is full — a temporary condition a protocol
    /// may name (SMTP `452 4.3.1`, RFC 3463 §3.4 "mail system full"). Read from the message
    /// of [`StoreError::Temporary`] so that the error type stays as every backend and
    /// protocol knows it.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Temporary(why) => STORAGE_FULL.iter().any(|m| why.contains(m)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn storage_full_is_recognised() {
        for why in [
            "database: database or disk is full",
            "writing blob: No space left on device (os error 28)",
            "database: db error: ERROR: could not extend file \"base/1/2\": No space left on device",
        ] {
            assert!(StoreError::Temporary(why.into()).is_storage_full(), "{why}");
        }
        assert!(!StoreError::Temporary("database: connection refused".into()).is_storage_full());
        assert!(!StoreError::OverQuota.is_storage_full());
    }
}
