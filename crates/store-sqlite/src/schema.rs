//! The relational schema, connection settings and migrations.
//!
//! The schema is meant to be read by an admin with `sqlite3 yubin.db`: one table per noun, real
//! columns, no opaque blobs. `PRAGMA user_version` holds the schema version; [`migrate`] brings
//! an older database up to [`SCHEMA_VERSION`] step by step.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use store::{StoreError, StoreResult};

use crate::db::Db;
use crate::schema_sql::*;

/// The version [`migrate`] produces. Bump it and add a step when the schema changes.
pub const SCHEMA_VERSION: i64 = 19;

/// How long a writer waits for another process's write lock (the admin CLI and the server share
/// the database) before giving up with a temporary error.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection with the settings every connection needs. Reader connections are opened
/// read-write (WAL readers need to update the shared-memory index) and then set `query_only`.
pub fn connect(path: &Path, reader: bool) -> StoreResult<Connection> {
    let flags = if reader {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).db()?;
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    // Durability: every commit is fsync'd before the call returns (WAL + synchronous=FULL).
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;",
    )
    .db()?;
    conn.set_prepared_statement_cache_capacity(64);
    // This SQLite is built with STAT4, which marks every statement whose bound parameters could
    // change its plan as expired at each new binding: a cached statement was parsed and planned
    // again at every execution. The query planner stability guarantee plans once per statement;
    // nothing is lost, as the store never runs ANALYZE (there are no statistics to plan from).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .db()?;
    Ok(conn)
}

/// Runs `sql` (adding `column` to `table`) unless the column exists.
fn add_column(conn: &Connection, table: &str, column: &str, sql: &str) -> StoreResult<()> {
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )
        .db()?;
    if !exists {
        conn.execute_batch(sql).db()?;
    }
    Ok(())
}

/// Switches the database to WAL mode and creates or upgrades the schema.
pub fn migrate(conn: &Connection) -> StoreResult<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Temporary(format!(
            "could not switch the database to WAL mode (got {mode})"
        )));
    }
    // BEGIN IMMEDIATE: two processes opening a fresh data dir at once must not both migrate.
    conn.execute_batch("BEGIN IMMEDIATE").db()?;
    let result = (|| {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .db()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "database schema version {version} is newer than this program ({SCHEMA_VERSION})"
            )));
        }
        if version < 1 {
            conn.execute_batch(V1).db()?;
        }
        if version < 2 {
            conn.execute_batch(V2).db()?;
        }
        if version < 3 {
            conn.execute_batch(V3).db()?;
        }
        if version < 4 {
            conn.execute_batch(V4).db()?;
        }
        if version < 5 {
            conn.execute_batch(V5).db()?;
        }
        if version < 6 {
            conn.execute_batch(V6).db()?;
        }
        if version < 7 {
            conn.execute_batch(V7).db()?;
        }
        if version < 8 {
            conn.execute_batch(V8).db()?;
        }
        if version < 9 {
            conn.execute_batch(V9).db()?;
        }
        if version < 10 {
            conn.execute_batch(V10).db()?;
        }
        if version < 11 {
            conn.execute_batch(V11).db()?;
        }
        if version < 12 {
            conn.execute_batch(V12).db()?;
        }
        if version < 13 {
            conn.execute_batch(V13).db()?;
        }
        if version < 14 {
            conn.execute_batch(V14).db()?;
        }
        if version < 15 {
            conn.execute_batch(V15).db()?;
        }
        if version < 16 {
            conn.execute_batch(V16).db()?;
        }
        if version < 17 {
            conn.execute_batch(V17).db()?;
        }
        if version < 18 {
            conn.execute_batch(V18).db()?;
        }
        if version < 19 {
            for (table, column, sql) in V19 {
                add_column(conn, table, column, sql)?;
            }
        }
        if version < SCHEMA_VERSION {
            conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                .db()?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").db(),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 database (before the queue) is upgraded in place, keeping its data.
    #[test]
    fn migrates_version_1_to_current() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("m.db"), false).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1; INSERT INTO domains (name) VALUES ('a.test');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let (d, q): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM queue_recipients)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((d, q), (1, 0));
        // Idempotent.
        migrate(&conn).unwrap();
    }

    /// Version 18 adds the account's own POP3 retention choice, unset for existing accounts.
    #[test]
    fn migrates_to_pop3_choices() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("p.db"), false).unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO domains (name) VALUES ('a.test');
             ALTER TABLE accounts DROP COLUMN pop3_expire_days;
             INSERT INTO accounts (address, domain_id, password_hash, created_at)
               VALUES ('u@a.test', 1, 'x', 0);
             PRAGMA user_version = 17;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let v: Option<i64> = conn
            .query_row("SELECT pop3_expire_days FROM accounts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, None);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert!(version >= 18);
    }

    /// Version 17 counts each account's messages once (RFC 9208 MESSAGE); later writes keep
    /// the count current.
    #[test]
    fn migrates_to_message_counts() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("m.db"), false).unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO domains (name) VALUES ('a.test');
             INSERT INTO accounts (address, domain_id, password_hash, created_at)
               VALUES ('u@a.test', 1, 'x', 0), ('v@a.test', 1, 'x', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity) VALUES (1, 'INBOX', 1),
               (1, 'Trash', 2), (2, 'INBOX', 3);
             INSERT INTO blobs (hash, size, refcount) VALUES ('h', 10, 3);
             INSERT INTO messages (mailbox_id, uid, blob_hash, size, internal_date, modseq)
               VALUES (1, 1, 'h', 10, 0, 1), (2, 1, 'h', 10, 0, 1), (3, 1, 'h', 10, 0, 1);
             DROP TABLE quota_warnings;
             ALTER TABLE accounts DROP COLUMN message_limit;
             ALTER TABLE accounts DROP COLUMN messages_used;
             ALTER TABLE accounts DROP COLUMN storage_warned;
             ALTER TABLE accounts DROP COLUMN messages_warned;
             ALTER TABLE accounts DROP COLUMN pop3_expire_days;
             PRAGMA user_version = 16;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let counts: Vec<i64> = conn
            .prepare("SELECT messages_used FROM accounts ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(counts, vec![2, 1]);
    }

    /// Version 6 moves the subscribed flags of mailbox rows into the subscriptions table.
    #[test]
    fn migrates_subscriptions_to_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("s.db"), false).unwrap();
        for v in [V1, V2, V3, V4, V5] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 5;
             INSERT INTO domains (name) VALUES ('a.test');
             INSERT INTO accounts (address, domain_id, password_hash, created_at)
                 VALUES ('u@a.test', 1, 'x', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, subscribed)
                 VALUES (1, 'INBOX', 1, 1), (1, 'Old', 2, 0), (1, 'Kept', 3, 1);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let subs: Vec<String> = conn
            .prepare("SELECT name FROM subscriptions WHERE account_id = 1 ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(subs, ["INBOX", "Kept"]);
        let cols: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('mailboxes') WHERE name = 'subscribed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, 0);
    }

    /// Version 10 gives existing mailboxes a recent mark of 0 (their messages are recent once
    /// more) and adds the lease and secret tables.
    #[test]
    fn migrates_to_leases_secrets_and_recent_marks() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("r.db"), false).unwrap();
        for v in [V1, V2, V3, V4, V5, V6, V7, V8] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 8;
             INSERT INTO domains (name) VALUES ('a.test');
             INSERT INTO accounts (address, domain_id, password_hash, created_at)
                 VALUES ('u@a.test', 1, 'x', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next)
                 VALUES (1, 'INBOX', 1, 10);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let (mark, leases, secrets): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT recent_uid FROM mailboxes), (SELECT count(*) FROM leases),
                        (SELECT count(*) FROM secrets)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((mark, leases, secrets), (0, 0, 0));
    }

    /// Version 11 indexes the destination domains of a queue that was filled before it: the
    /// earliest due time of each domain's pending recipients, no row for finished ones.
    #[test]
    fn migrates_the_queue_to_leases() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("q.db"), false).unwrap();
        for v in [V1, V2, V3, V4, V5, V6, V7, V8] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 8;
             INSERT INTO blobs (hash, size, refcount) VALUES ('h', 1, 1);
             INSERT INTO queue_messages (id, blob, size, sender, created) VALUES (1, 'h', 1, '', 5);
             INSERT INTO queue_recipients (message, address, domain, notify, status, next_attempt)
                 VALUES (1, 'a@b.test', 'b.test', 0, 'pending', 50),
                        (1, 'c@b.test', 'b.test', 0, 'pending', 20),
                        (1, 'd@c.test', 'c.test', 0, 'pending', 70),
                        (1, 'e@d.test', 'd.test', 0, 'delivered', 0);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let rows: Vec<(String, i64)> = conn
            .prepare("SELECT domain, next_due FROM queue_domains ORDER BY domain")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [("b.test".into(), 20), ("c.test".into(), 70)]);
        let unleased: i64 = conn
            .query_row(
                "SELECT count(*) FROM queue_recipients WHERE lease IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unleased, 4);
    }

    /// Version 16: existing messages count as saved at the upgrade (not by their internal
    /// date: an upgrade must not make old Trash due at once), and the batches of aged messages
    /// are range reads of the new indexes.
    #[test]
    fn migrates_to_save_dates() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("d.db"), false).unwrap();
        for v in [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 14;
             INSERT INTO domains (name) VALUES ('a.test');
             INSERT INTO accounts (address, domain_id, password_hash, created_at)
                 VALUES ('u@a.test', 1, 'x', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity) VALUES (1, 'Trash', 1);
             INSERT INTO blobs (hash, size, refcount) VALUES ('h', 1, 1);
             INSERT INTO messages (mailbox_id, uid, blob_hash, size, internal_date, modseq)
                 VALUES (1, 1, 'h', 1, 5, 1);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let (saved, retrieved): (Option<i64>, Option<i64>) = conn
            .query_row("SELECT save_date, retrieved_at FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            saved.is_some_and(|s| (now - 5..=now + 5).contains(&s)),
            "{saved:?}"
        );
        assert_eq!(retrieved, None);
        // A batch is a range read in date order that stops at the limit: no sort of every
        // due message (a temporary B-tree), whatever the mailbox's size.
        for (sql, index) in [
            (
                "SELECT uid FROM messages WHERE mailbox_id = ?1 AND save_date < ?1
                 ORDER BY save_date LIMIT ?1",
                "messages_save_date",
            ),
            (
                "SELECT uid FROM messages
                 WHERE mailbox_id = ?1 AND retrieved_at IS NOT NULL AND retrieved_at < ?1
                 ORDER BY retrieved_at LIMIT ?1",
                "messages_retrieved",
            ),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([1], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains(index), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    /// SELECT's view and STATUS's counts read the narrow covering index, not the table rows
    /// with their blob hashes (which would read several times the pages for 100,000 messages).
    #[test]
    fn view_and_counts_use_the_covering_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("p.db"), false).unwrap();
        migrate(&conn).unwrap();
        for sql in [
            "SELECT uid, size, internal_date, flags, keywords, modseq FROM messages
             WHERE mailbox_id = ?1 ORDER BY uid",
            "SELECT count(*), coalesce(sum((flags & 1) = 0), 0), coalesce(sum(size), 0)
             FROM messages WHERE mailbox_id = ?1",
            "SELECT uid, flags FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([1], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                plan.contains("COVERING INDEX messages_summary"),
                "{sql}: {plan}"
            );
        }
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT uid, keywords FROM messages
                 WHERE mailbox_id = ?1 AND keywords <> '' ORDER BY uid",
                [1],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("COVERING INDEX messages_keywords"), "{plan}");
    }
}
