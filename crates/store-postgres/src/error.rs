//! The crate's internal error: a [`StoreError`] the operation decided on, or a database error
//! whose SQLSTATE decides whether the whole transaction is worth running again.

use store::StoreError;
use tokio_postgres::error::SqlState;

#[derive(Debug)]
pub enum Error {
    /// An answer for the caller (`NotFound`, `Exists`, `OverQuota`, …).
    Store(StoreError),
    /// A database error.
    Db(tokio_postgres::Error),
}

pub type PgResult<T> = Result<T, Error>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::warn!(error = %e, "no database connection");
        Error::Store(StoreError::Temporary(format!("database connection: {e}")))
    }
}

impl Error {
    /// Whether running the transaction again may succeed: a serialization failure or deadlock
    /// (PostgreSQL aborted one of two conflicting transactions), or a constraint violation from
    /// a race with another node between our check and our write — a unique violation (it
    /// inserted the same name) or a foreign-key violation (it deleted the domain or account we
    /// refer to): the next attempt sees that and answers `Exists` or `NotFound` properly.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Db(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::UNIQUE_VIOLATION
                    || *c == SqlState::FOREIGN_KEY_VIOLATION
            ),
            Error::Store(_) => false,
        }
    }

    /// The SQLSTATE of a database error.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            Error::Db(e) => e.code(),
            Error::Store(_) => None,
        }
    }

    /// What the caller sees: database errors are all "try again later" for a client.
    pub fn into_store(self) -> StoreError {
        match self {
            Error::Store(e) => e,
            Error::Db(e) => {
                // The server's message (or the conversion that failed) is the source.
                let detail = match std::error::Error::source(&e) {
                    Some(s) => format!("{e}: {s}"),
                    None => e.to_string(),
                };
                tracing::warn!(error = %detail, "database error");
                StoreError::Temporary(format!("database: {detail}"))
            }
        }
    }
}
