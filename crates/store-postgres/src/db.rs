//! Small helpers shared by the SQL modules: prepared-statement shortcuts and column encodings.
//!
//! Every statement goes through the connection's statement cache (`prepare_cached`): the store
//! runs a fixed set of statements, each parsed and planned once per pooled connection.

use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_postgres::GenericClient;
use store::{Flags, StoreError, StoreResult, SystemFlags};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::PgResult;

pub use store::backend::keywords::normalize_keywords;

/// Statement parameters.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Every row of `sql`.
pub async fn rows<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> PgResult<Vec<Row>> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query(&st, params).await?)
}

/// The row of `sql`, if any (more than one is an error).
pub async fn opt<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> PgResult<Option<Row>> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&st, params).await?)
}

/// The one row of `sql`.
pub async fn one<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> PgResult<Row> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_one(&st, params).await?)
}

/// Runs `sql`; returns the number of rows it affected.
pub async fn exec<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> PgResult<u64> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.execute(&st, params).await?)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Columns are signed 64-bit; sizes, MODSEQs and counts never come near `i64::MAX`.
pub fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A non-negative column value as `u64`.
pub fn col_u64(v: i64) -> u64 {
    v.max(0) as u64
}

/// A UID or UIDVALIDITY column (`bigint`, as `integer` cannot hold 2^32 - 1).
pub fn col_u32(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

/// The system-flag bits the `messages.flags` column stores.
pub const FLAG_MASK: u8 = 0x1f;

/// The `messages.flags` column value of `flags`.
pub fn flag_bits(flags: SystemFlags) -> i16 {
    i16::from(flags.0 & FLAG_MASK)
}

/// Builds [`Flags`] from the `flags` and `keywords` columns.
pub fn flags_from_columns(bits: i16, keywords: Vec<String>) -> Flags {
    Flags {
        system: SystemFlags((bits as u8) & FLAG_MASK),
        keywords,
    }
}

/// `flags` with validated, de-duplicated keywords and only the stored system flags.
pub fn normalize_flags(flags: &Flags) -> StoreResult<Flags> {
    Ok(Flags {
        system: SystemFlags(flags.system.0 & FLAG_MASK),
        keywords: normalize_keywords(&flags.keywords)?,
    })
}

/// A value read from the database that cannot be parsed back: logged, and a temporary error
/// for the caller.
pub fn corrupt(what: &str, value: &str) -> StoreError {
    tracing::error!(what, value, "unparseable value in the database");
    StoreError::Temporary(format!("corrupt {what} in the database"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_conversions() {
        assert_eq!(flag_bits(SystemFlags(0xff)), 0x1f);
        assert_eq!(col_u32(1 << 40), u32::MAX);
    }
}
