//! `MailStore::check` for PostgreSQL (see `store::check` for the invariants): the shared SQL of
//! `store::backend::check_sql`, and every body hashed inside the database, all in one
//! read-only REPEATABLE READ snapshot. Bodies live in `blobs.data`, written in the transaction
//! that references them, so there are no files to race with and no grace period to apply.

use deadpool_postgres::Transaction;
use store::CheckReport;
use store::backend::check_sql::QUERIES;

use crate::db::{one, rows};
use crate::error::PgResult;

pub async fn run(t: &Transaction<'_>) -> PgResult<CheckReport> {
    let count = |table: &'static str| async move {
        let sql = format!("SELECT count(*) FROM {table}");
        one(t, &sql, &[]).await.map(|r| r.get::<_, i64>(0) as u64)
    };
    let mut report = CheckReport {
        accounts: count("accounts").await?,
        mailboxes: count("mailboxes").await?,
        messages: count("messages").await?,
        blobs: count("blobs").await?,
        problems: Vec::new(),
    };
    // The body's recorded size and its content address (the lower-case hex SHA-256).
    let bodies = "SELECT 'body ' || hash || ': ' || length(data) || ' bytes, ' || size
                         || ' recorded, content hashes to ' || encode(sha256(data), 'hex')
                  FROM blobs
                  WHERE length(data) <> size OR encode(sha256(data), 'hex') <> hash";
    for sql in QUERIES.iter().copied().chain([bodies]) {
        for row in rows(t, sql, &[]).await? {
            report.problem(row.get::<_, String>(0));
        }
    }
    Ok(report)
}
