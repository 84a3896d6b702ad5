//! Small helpers shared by the SQL modules: error mapping and column encodings.

use std::time::{SystemTime, UNIX_EPOCH};

use store::{Flags, StoreError, StoreResult, SystemFlags};

pub use store::backend::keywords::normalize_keywords;

/// Maps SQLite errors to [`StoreError::Temporary`]: busy/locked databases, full disks and I/O
/// errors are all "try again later" for a client. Rows that must exist or must not exist are
/// checked explicitly by the callers, so constraint errors here are unexpected too.
pub trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(|e| {
            tracing::warn!(error = %e, "database error");
            StoreError::Temporary(format!("database: {e}"))
        })
    }
}

/// Maps file-system errors of the blob directory.
pub fn io_err(context: &str, e: std::io::Error) -> StoreError {
    tracing::warn!(error = %e, context, "blob store I/O error");
    StoreError::Temporary(format!("{context}: {e}"))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// SQLite integers are signed 64-bit; sizes, MODSEQs and counts never come near `i64::MAX`.
pub fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The system-flag bits the `messages.flags` column stores.
pub const FLAG_MASK: u8 = 0x1f;

/// Encodes keywords for the `keywords` column: space separated (keywords are atoms, which
/// cannot contain spaces — RFC 9051 §9 `flag-keyword`).
pub fn encode_keywords(keywords: &[String]) -> String {
    keywords.join(" ")
}

pub fn decode_keywords(s: &str) -> Vec<String> {
    if s.is_empty() {
        // Most messages: no splitting machinery per row of a 100,000-message SELECT.
        return Vec::new();
    }
    s.split(' ')
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

/// Builds [`Flags`] from the two columns.
pub fn flags_from_columns(bits: i64, keywords: &str) -> Flags {
    Flags {
        system: SystemFlags((bits as u8) & FLAG_MASK),
        keywords: decode_keywords(keywords),
    }
}

/// Runs a parameterless statement (`BEGIN`, `COMMIT`, `SAVEPOINT ...`) through the connection's
/// prepared-statement cache: `execute_batch` parses the SQL again on every call, which showed
/// up as several per cent of the server's CPU under IMAP load.
pub fn exec_cached(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip_and_dedup() {
        let kw =
            normalize_keywords(&["$Forwarded".into(), "$forwarded".into(), "x".into()]).unwrap();
        assert_eq!(kw, vec!["$Forwarded".to_string(), "x".to_string()]);
        assert_eq!(decode_keywords(&encode_keywords(&kw)), kw);
        assert_eq!(decode_keywords(""), Vec::<String>::new());
    }
}
