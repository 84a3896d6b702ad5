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

/// The version [`migrate`] produces. Bump it and add a step when the schema changes.
pub const SCHEMA_VERSION: i64 = 19;

/// Version 1: the initial schema.
const V1: &str = "
CREATE TABLE domains (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE   -- canonical lower-case form
);

-- AUTOINCREMENT: ids of deleted accounts and mailboxes are never handed out again, so a
-- session holding a stale id cannot reach a newer object.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address       TEXT NOT NULL UNIQUE COLLATE NOCASE, -- canonical local@domain
    domain_id     INTEGER NOT NULL REFERENCES domains(id),
    password_hash TEXT NOT NULL,                       -- PHC string (argon2id)
    quota_limit   INTEGER,                             -- bytes; NULL = unlimited
    quota_used    INTEGER NOT NULL DEFAULT 0,          -- bytes; kept current by every write
    created_at    INTEGER NOT NULL                     -- Unix seconds
);
CREATE INDEX accounts_domain ON accounts(domain_id);

-- source is local@domain, or @domain for the domain's catch-all.
CREATE TABLE aliases (
    source      TEXT PRIMARY KEY COLLATE NOCASE,
    domain_id   INTEGER NOT NULL REFERENCES domains(id)
);
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE alias_targets (
    source      TEXT NOT NULL REFERENCES aliases(source) ON DELETE CASCADE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (source, account_id)
);
CREATE INDEX alias_targets_account ON alias_targets(account_id);

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    name           TEXT NOT NULL,             -- full name, '/' separated, UTF-8
    uid_validity   INTEGER NOT NULL,          -- RFC 9051 §2.3.1.1
    uid_next       INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1, -- RFC 7162 §3.1
    special_use    TEXT,                      -- sent, drafts, trash, junk, archive (RFC 6154)
    subscribed     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);

CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,             -- lower-case hex SHA-256; file blobs/ab/<hash>
    size        INTEGER NOT NULL,
    refcount    INTEGER NOT NULL CHECK (refcount >= 0)
) WITHOUT ROWID;

CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
    uid           INTEGER NOT NULL,
    blob_hash     TEXT NOT NULL REFERENCES blobs(hash),
    size          INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,           -- Unix seconds
    flags         INTEGER NOT NULL DEFAULT 0, -- 1 Seen, 2 Answered, 4 Flagged, 8 Deleted, 16 Draft
    keywords      TEXT NOT NULL DEFAULT '',   -- space-separated IMAP keywords
    modseq        INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_hash);

-- Expunged UIDs with the MODSEQ of their removal, for QRESYNC (RFC 7162 §3.2.5).
CREATE TABLE expunged (
    mailbox_id  INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- Small store-wide counters, e.g. the last UIDVALIDITY handed out.
CREATE TABLE meta (
    key         TEXT PRIMARY KEY,
    value       INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 2: the outbound queue (RFC 5321 §4.5.4). A message body is one reference on its
/// blob, like a mailbox message; recipients carry their own status and retry schedule.
const V2: &str = "
CREATE TABLE queue_messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    blob           TEXT NOT NULL REFERENCES blobs(hash),
    size           INTEGER NOT NULL,
    sender         TEXT NOT NULL,            -- reverse-path; '' for <>
    envid          TEXT,                     -- RFC 3461 ENVID
    ret            TEXT,                     -- 'full', 'hdrs' or NULL (RFC 3461 RET)
    account        INTEGER,                  -- submitting account, if any
    smtputf8       INTEGER NOT NULL DEFAULT 0,
    created        INTEGER NOT NULL,         -- Unix seconds
    delay_notified INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE queue_recipients (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message       INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address       TEXT NOT NULL,
    domain        TEXT NOT NULL,             -- lower-case domain part
    orcpt         TEXT,                      -- RFC 3461 ORCPT, addr-type;xtext
    notify        INTEGER NOT NULL,          -- 1 success, 2 failure, 4 delay (0 = NEVER)
    status        TEXT NOT NULL DEFAULT 'pending', -- pending, delivered, failed
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL,          -- Unix seconds
    last_error    TEXT,
    last_attempt  INTEGER
);
CREATE INDEX queue_recipients_message ON queue_recipients(message);
CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);
";

/// Version 3: SCRAM-SHA-256 credentials per account (RFC 5802 §3: salt, iteration count,
/// StoredKey, ServerKey — never the password), as `SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>`;
/// NULL for accounts whose password was set before (they can still use PLAIN/LOGIN).
const V3: &str = "
ALTER TABLE accounts ADD COLUMN scram TEXT;
";

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

/// Version 4: a covering index for what IMAP SELECT, `FETCH 1:* (FLAGS)` and STATUS read of
/// every message (UID order, flags, size), so they scan a narrow index instead of the table
/// rows with their blob hashes and keywords.
const V4: &str = "
CREATE INDEX messages_uid_flags ON messages(mailbox_id, uid, flags, size);
";

/// Version 5: the covering index holds everything an IMAP session keeps of a message (all
/// but the blob hash), so the session's view is read from indexes only; it replaces v4's.
/// SELECT reads just UIDs and flags from it, and the keywords of the (few) messages that have
/// any from a partial index of those alone.
const V5: &str = "
CREATE INDEX messages_summary
    ON messages(mailbox_id, uid, flags, size, internal_date, modseq, keywords);
CREATE INDEX messages_keywords ON messages(mailbox_id, uid, keywords) WHERE keywords <> '';
DROP INDEX messages_uid_flags;
";

/// Version 6: what IMAP parsed once from each message body (`store::MessageFacts`), per blob
/// like the bodies themselves, so that ENVELOPE, BODYSTRUCTURE and header fetches read neither
/// the file nor parse it again. A cache: rows go with their blob (and may be deleted at any
/// time); `version` is the format of the IMAP code that wrote the row.
const V6: &str = "
CREATE TABLE message_facts (
    blob_hash          TEXT PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE,
    version            INTEGER NOT NULL,
    header             BLOB NOT NULL,    -- the header section, with its closing empty line
    envelope           BLOB NOT NULL,    -- IMAP ENVELOPE (RFC 2047 words for non-ASCII)
    envelope_utf8      BLOB,             -- for UTF8=ACCEPT sessions, when different
    body               BLOB NOT NULL,    -- IMAP BODY
    body_utf8          BLOB,
    bodystructure      BLOB NOT NULL,    -- IMAP BODYSTRUCTURE
    bodystructure_utf8 BLOB
);
";

/// Version 7: URLAUTH mailbox access keys (RFC 4467 §2.2), one per mailbox (a mailbox belongs
/// to one account, so this is per user and mailbox); they go with their mailbox or account.
const V7: &str = "
CREATE TABLE urlauth_keys (
    mailbox_id  INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key         BLOB NOT NULL               -- random secret, the HMAC-SHA256 key of URLAUTH
);
CREATE INDEX urlauth_keys_account ON urlauth_keys(account_id);
";

/// Version 8: subscriptions are names of their own (RFC 9051 §6.3.7): they outlive the
/// mailbox (DELETE, RENAME) and may name one that does not exist, so they leave the mailbox
/// row for a table keyed by account and name.
const V8: &str = "
CREATE TABLE subscriptions (
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,                -- canonical mailbox name; need not exist
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
INSERT INTO subscriptions (account_id, name)
    SELECT account_id, name FROM mailboxes WHERE subscribed <> 0;
ALTER TABLE mailboxes DROP COLUMN subscribed;
";

/// Version 9: the durable change log every process reads (see `change_log.rs`). `id` orders
/// all rows in commit order (one writer at a time; the newest row is never pruned, so ids are
/// never reused); `seq` numbers each account's batches without gaps (the next is the
/// account's highest + 1; pruning keeps each account's newest row, so a deleted account's
/// last batch keeps its number too). Three pages a commit at most: the table's last leaf and
/// one index leaf per account.
const V9: &str = "
CREATE TABLE change_log (
    id      INTEGER PRIMARY KEY,
    account INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    created INTEGER NOT NULL,
    events  TEXT NOT NULL,
    UNIQUE (account, seq)
);
";

/// Version 10: what several processes on one data directory must agree on, out of their
/// memory. `leases`: exclusive things held for a time and renewed (the POP3 maildrop, RFC 1939
/// §8), so a killed holder's lock expires. `secrets`: values created once and shared (the SCRAM
/// decoy-salt secret). `mailboxes.recent_uid`: the highest UID some session has claimed as
/// `\Recent` (RFC 3501 §2.3.2); 0 for existing mailboxes, so their messages are recent once
/// more, as after a restart before.
const V10: &str = "
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,             -- e.g. pop3-maildrop/42
    holder      TEXT NOT NULL,                -- host-random#n of the holding process
    expires_at  INTEGER NOT NULL              -- Unix milliseconds; free again after it
) WITHOUT ROWID;

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,             -- e.g. scram-decoy-salt
    value       BLOB NOT NULL                 -- random bytes, never replaced
) WITHOUT ROWID;

ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
";

/// Version 11: the queue shared by several processes (see `store::QueueStore`): leases (one
/// delivery batch of one process each), the lease holding each recipient, the sending log of
/// the per-account rate limits, and an index of destination domains with pending work so a
/// claim round visits due domains, not every queued message.
const V11: &str = "
CREATE TABLE queue_leases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a stale holder's id stays stale
    destination TEXT NOT NULL,   -- domain, or '' when everything goes through a smarthost
    domain      TEXT NOT NULL,   -- the recipients' domain
    holder      TEXT NOT NULL,   -- node id of the holding process (host/pid/random)
    expires     INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX queue_leases_destination ON queue_leases(destination, expires);
CREATE INDEX queue_leases_expires ON queue_leases(expires);

-- The lease that claimed the recipient; while it is live, next_attempt is its expiry.
ALTER TABLE queue_recipients ADD COLUMN lease INTEGER;
CREATE INDEX queue_recipients_lease ON queue_recipients(lease) WHERE lease IS NOT NULL;
-- A domain's due recipients, oldest first (the claim's per-domain read).
CREATE INDEX queue_recipients_domain_due
    ON queue_recipients(domain, next_attempt) WHERE status = 'pending';

-- Domains with pending recipients; next_due is never later than the earliest next_attempt of
-- their pending recipients (it may be earlier: a claim round then finds nothing and fixes it).
CREATE TABLE queue_domains (
    domain      TEXT PRIMARY KEY,
    next_due    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX queue_domains_due ON queue_domains(next_due);
INSERT INTO queue_domains (domain, next_due)
    SELECT domain, min(next_attempt) FROM queue_recipients WHERE status = 'pending'
    GROUP BY domain;

-- Messages accepted from authenticated accounts, for the hourly sending limits.
CREATE TABLE sending_log (
    id          INTEGER PRIMARY KEY,
    account     INTEGER NOT NULL,
    at          INTEGER NOT NULL,  -- Unix seconds
    recipients  INTEGER NOT NULL
);
CREATE INDEX sending_log_account ON sending_log(account, at);
";

/// Version 12: DKIM signing keys (`store::DkimKeyStore`), in the database rather than in
/// `data_dir/dkim/<domain>/<selector>.pem`, so every process signs with the same keys and
/// `yubin migrate` copies them (key files of older versions are imported by `yubin serve`).
/// Domain and selector are lower case (DNS names, RFC 4343 §3); the newest key of a domain
/// signs unless a selector is configured: `id` orders keys made in the same second.
const V12: &str = "
CREATE TABLE dkim_keys (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL,                -- signing domain (d=), lower case
    selector    TEXT NOT NULL,                -- s=, one DNS label, lower case
    algorithm   TEXT NOT NULL CHECK (algorithm IN ('ed25519', 'rsa')),
    private_key TEXT NOT NULL,                -- PEM; a secret
    created_at  INTEGER NOT NULL,             -- Unix seconds
    UNIQUE (domain, selector)
);
CREATE INDEX dkim_keys_newest ON dkim_keys(domain, created_at, id);
";

/// Version 13: the password-guessing defence (`store::LoginGuardStore`): failed-login counters
/// per client address and per account, and IP bans, shared by every process on the data
/// directory and kept across restarts.
const V13: &str = "
-- One row per counted subject: failures in the current long window (a day by default) and
-- short window (bursts). A window restarts at the first failure after it ended.
CREATE TABLE login_failures (
    scope           TEXT NOT NULL,     -- 'ip' or 'account'
    subject         TEXT NOT NULL,     -- canonical IP (IPv6: its /64) or account address
    window_start    INTEGER NOT NULL,  -- Unix seconds
    failures        INTEGER NOT NULL,
    burst_start     INTEGER NOT NULL,  -- Unix seconds
    burst_failures  INTEGER NOT NULL,
    last_failure    INTEGER NOT NULL,  -- Unix seconds
    PRIMARY KEY (scope, subject)
) WITHOUT ROWID;
CREATE INDEX login_failures_last ON login_failures(scope, last_failure);

-- Client addresses refused by every listener until `until` (yubin ban list/add/del).
CREATE TABLE login_bans (
    ip          TEXT PRIMARY KEY,      -- canonical IP (IPv6: its /64)
    until       INTEGER NOT NULL,      -- Unix seconds
    created     INTEGER NOT NULL,      -- Unix seconds
    reason      TEXT NOT NULL          -- failures, burst, manual, ...
) WITHOUT ROWID;
CREATE INDEX login_bans_until ON login_bans(until);
";

/// Version 14: greylisting state (`store::Greylist`): one row per (client network, envelope
/// sender, recipient) triple, shared by every process on the data directory and kept across
/// restarts. `passed` is NULL while the triple waits for its retry.
const V14: &str = "
CREATE TABLE greylist (
    network     TEXT NOT NULL,     -- client network: IPv4 /24 or IPv6 /64, e.g. 192.0.2.0/24
    sender      TEXT NOT NULL,     -- envelope sender, lower case; '' for <>
    recipient   TEXT NOT NULL,     -- envelope recipient, lower case
    first_seen  INTEGER NOT NULL,  -- Unix seconds
    last_seen   INTEGER NOT NULL,  -- Unix seconds
    passed      INTEGER,           -- Unix seconds of the accepted retry
    PRIMARY KEY (network, sender, recipient)
) WITHOUT ROWID;
CREATE INDEX greylist_last_seen ON greylist(last_seen);
";

/// Version 15: small message bodies inside the database (`bodies.rs`), so that one fsync (the
/// commit's) makes a small message durable. A rowid table: the bodies are KiBs, too large for
/// the rows of a WITHOUT ROWID table.
const V15: &str = "
CREATE TABLE blob_bodies (
    hash  TEXT PRIMARY KEY,   -- the blobs row's hash
    body  BLOB NOT NULL
);
";

/// Version 16: the dates retention goes by (`store::MessageDates`). `save_date`: when the
/// message entered its mailbox (RFC 8514); messages stored before count as saved at the
/// upgrade — the safe side: an upgrade never makes old Trash due at once (their internal
/// dates may be years old). `retrieved_at`: the first POP3 RETR, for "leave a copy for N
/// days" (RFC 2449 §6.7 EXPIRE). Indexed per mailbox, so a retention batch reads only what it
/// removes.
const V16: &str = "
ALTER TABLE messages ADD COLUMN save_date INTEGER;      -- Unix seconds
UPDATE messages SET save_date = CAST(strftime('%s', 'now') AS INTEGER);
ALTER TABLE messages ADD COLUMN retrieved_at INTEGER;   -- Unix seconds
CREATE INDEX messages_save_date ON messages(mailbox_id, save_date);
CREATE INDEX messages_retrieved ON messages(mailbox_id, retrieved_at)
    WHERE retrieved_at IS NOT NULL;
";

/// Version 17: quotas (RFC 9208) in two resources. `accounts.quota_limit` becomes the
/// account's storage override (NULL: the configured default applies); `message_limit` is its
/// message-count override; `messages_used` counts its messages, kept current by every write as
/// `quota_used` is (and computed here once from the messages); `storage_warned` and
/// `messages_warned` are the warning thresholds (percent) usage has reached, so a warning goes
/// out once per crossing. `quota_warnings` queues the warnings until the server sends them.
const V17: &str = "
ALTER TABLE accounts ADD COLUMN message_limit INTEGER;            -- NULL = the default applies
ALTER TABLE accounts ADD COLUMN messages_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN storage_warned INTEGER NOT NULL DEFAULT 0;  -- percent
ALTER TABLE accounts ADD COLUMN messages_warned INTEGER NOT NULL DEFAULT 0; -- percent
UPDATE accounts SET messages_used = (
    SELECT count(*) FROM messages JOIN mailboxes ON mailboxes.id = messages.mailbox_id
    WHERE mailboxes.account_id = accounts.id);

CREATE TABLE quota_warnings (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    resource    TEXT NOT NULL,      -- 'storage' or 'messages'
    percent     INTEGER NOT NULL,   -- the threshold crossed
    used        INTEGER NOT NULL,   -- bytes or messages, right after the crossing
    limit_value INTEGER NOT NULL,
    created_at  INTEGER NOT NULL    -- Unix seconds
);
CREATE INDEX quota_warnings_account ON quota_warnings(account_id);
";

/// Version 18: the account's own POP3 retention choice from the account pages
/// (`store::Pop3Expire`): NULL = the configured policy, -1 = never, n = days.
const V18: &str = "
ALTER TABLE accounts ADD COLUMN pop3_expire_days INTEGER;
";

/// Version 19: the expunge log is pruned (`store::ExpungeLogLimits`). `expunged.expunged_at`
/// dates each row (existing rows count from the upgrade); `mailboxes.expunge_floor` is the
/// highest MODSEQ pruned from the mailbox's log: the log holds every expunge above it, and a
/// QRESYNC client further behind gets a full resync (RFC 7162 §3.2.5.2).
/// (Each column is added only when missing, so the upgrade tests that rewind
/// `user_version` over a current schema can run it again.)
const V19: [(&str, &str, &str); 2] = [
    (
        "expunged",
        "expunged_at",
        "ALTER TABLE expunged ADD COLUMN expunged_at INTEGER NOT NULL DEFAULT 0; -- Unix seconds
         UPDATE expunged SET expunged_at = unixepoch();",
    ),
    (
        "mailboxes",
        "expunge_floor",
        "ALTER TABLE mailboxes ADD COLUMN expunge_floor INTEGER NOT NULL DEFAULT 0;",
    ),
];

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
