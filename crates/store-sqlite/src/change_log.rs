//! The durable change log (schema v9): written by the writer thread in each job's savepoint,
//! read by the follower (`follower.rs`) to catch up with other processes' writes.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use store::{AccountId, ChangeEvent, LoggedBatch, StoreResult};

use crate::db::{Db, sql_u64};

/// Appends a job's events, one row per account, each with the account's next `seq`. Runs in
/// the job's savepoint: the rows commit or roll back with the change they describe.
pub fn append(
    conn: &Connection,
    events: Vec<ChangeEvent>,
    now: i64,
) -> rusqlite::Result<Vec<LoggedBatch>> {
    let mut batches = Vec::new();
    for (account, events) in store::group_by_account(events) {
        // The writer is the only one writing (SQLite's write lock): read, then insert.
        let seq: i64 = conn
            .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM change_log WHERE account = ?1")?
            .query_row([account], |r| r.get(0))?;
        conn.prepare_cached(
            "INSERT INTO change_log (account, seq, created, events) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![account, seq, now, store::encode_events(&events)])?;
        batches.push(LoggedBatch {
            account,
            seq: u64::try_from(seq).unwrap_or(0),
            events,
        });
    }
    Ok(batches)
}

/// The account's last `seq` (0 before its first change).
pub fn head(conn: &Connection, account: AccountId) -> StoreResult<u64> {
    let seq: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM change_log WHERE account = ?1")
        .db()?
        .query_row([account], |r| r.get(0))
        .db()?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

/// The account's head and the batches after `after` still in the log, ascending.
pub fn after(
    conn: &Connection,
    account: AccountId,
    after: u64,
    limit: usize,
) -> StoreResult<(u64, Vec<LoggedBatch>)> {
    let head = head(conn, account)?;
    if head <= after {
        return Ok((head, Vec::new()));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, events FROM change_log WHERE account = ?1 AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![
                account,
                sql_u64(after),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .db()?;
    let mut batches = Vec::new();
    for row in rows {
        let (seq, text) = row.db()?;
        batches.push(LoggedBatch {
            account,
            seq: u64::try_from(seq).unwrap_or(0),
            events: store::decode_events(&text)?,
        });
    }
    Ok((head, batches))
}

const SINCE: &str = "SELECT id, account, seq FROM change_log WHERE id > ?1 ORDER BY id";

/// Rows committed after row `after_id` (by any process): each account's highest `seq` among
/// them, and the last row id. What the follower polls; reads no event text.
///
/// A range read on the row id, grouped here: `GROUP BY account` in SQL made SQLite walk the
/// whole `(account, seq)` index to produce the groups in order — every row the log retains,
/// at every poll — where this reads only the rows added since the last poll.
pub fn since(conn: &Connection, after_id: i64) -> StoreResult<(i64, Vec<(AccountId, u64)>)> {
    let mut stmt = conn.prepare_cached(SINCE).db()?;
    let rows = stmt
        .query_map([after_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .db()?;
    let mut last = after_id;
    let mut heads: HashMap<AccountId, u64> = HashMap::new();
    for row in rows {
        let (id, account, seq) = row.db()?;
        let account = AccountId(account);
        last = id;
        let seq = u64::try_from(seq).unwrap_or(0);
        let head = heads.entry(account).or_insert(seq);
        *head = (*head).max(seq);
    }
    Ok((last, heads.into_iter().collect()))
}

/// The id of the newest row (0 for an empty log): where a new follower starts.
pub fn last_id(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM change_log")
        .db()?
        .query_row([], |r| r.get(0))
        .db()
}

/// Deletes the rows created before `cutoff`, but never an account's newest row (it carries
/// the account's `seq`, and the newest row of all keeps ids from being reused). Rows are in
/// `id` order and `created` follows it.
pub fn prune(conn: &Connection, cutoff: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM change_log WHERE id < coalesce(
             (SELECT id FROM change_log WHERE created >= ?1 ORDER BY id LIMIT 1),
             (SELECT max(id) + 1 FROM change_log))
           AND id NOT IN (SELECT max(id) FROM change_log GROUP BY account)",
    )?
    .execute([cutoff])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;
    use store::Change;

    fn ev(account: i64) -> ChangeEvent {
        ChangeEvent {
            mailbox: store::MailboxId::new(AccountId(account), 1),
            change: Change::MailboxCreated { name: "x".into() },
        }
    }

    /// Pruning keeps each account's newest row: seqs go on without reuse, and so do ids.
    #[test]
    fn prune_keeps_the_newest_row_of_each_account() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::connect(&dir.path().join("c.db"), false).unwrap();
        schema::migrate(&conn).unwrap();
        for _ in 0..3 {
            append(&conn, vec![ev(1)], 100).unwrap();
        }
        append(&conn, vec![ev(2)], 100).unwrap();
        let last = last_id(&conn).unwrap();
        assert_eq!(prune(&conn, 1_000).unwrap(), 2);
        assert_eq!(
            (
                head(&conn, AccountId(1)).unwrap(),
                head(&conn, AccountId(2)).unwrap()
            ),
            (3, 1)
        );
        let b = append(&conn, vec![ev(1), ev(2)], 2_000).unwrap();
        assert_eq!((b[0].seq, b[1].seq), (4, 2));
        assert!(last_id(&conn).unwrap() > last);
        // Account 1's log after seq 1 no longer holds 2: a reader after 1 must resync.
        let (h, batches) = after(&conn, AccountId(1), 1, 10).unwrap();
        assert_eq!(h, 4);
        assert_eq!(batches.iter().map(|b| b.seq).collect::<Vec<_>>(), [3, 4]);
    }

    /// The follower's poll reads the rows after the last one it saw, by row id, whatever the
    /// log's length: each account's highest `seq` among them, and the last id.
    #[test]
    fn since_reads_only_the_new_rows() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::connect(&dir.path().join("s.db"), false).unwrap();
        schema::migrate(&conn).unwrap();
        for _ in 0..50 {
            append(&conn, vec![ev(1), ev(2)], 100).unwrap();
        }
        let from = last_id(&conn).unwrap();
        assert_eq!(since(&conn, from).unwrap(), (from, vec![]));
        append(&conn, vec![ev(2)], 100).unwrap();
        append(&conn, vec![ev(3)], 100).unwrap();
        append(&conn, vec![ev(2)], 100).unwrap();
        let (last, mut heads) = since(&conn, from).unwrap();
        heads.sort_unstable();
        assert_eq!(
            (last, heads),
            (from + 3, vec![(AccountId(2), 52), (AccountId(3), 1)])
        );
        // A range search on the row id, not a walk of the (account, seq) index.
        let plan: String = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {SINCE}"))
            .unwrap()
            .query_map([from], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("; ");
        assert!(plan.contains("INTEGER PRIMARY KEY (rowid>?)"), "{plan}");
    }
}
