//! The SQL of each schema version, applied in order by `schema::migrate`. A version's text
//! never changes once released: a new version is a new constant.

/// Version 1: the initial schema.
pub(crate) const V1: &str = "
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
pub(crate) const V2: &str = "
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
pub(crate) const V3: &str = "
ALTER TABLE accounts ADD COLUMN scram TEXT;
";

/// Version 4: a covering index for what IMAP SELECT, `FETCH 1:* (FLAGS)` and STATUS read of
/// every message (UID order, flags, size), so they scan a narrow index instead of the table
/// rows with their blob hashes and keywords.
pub(crate) const V4: &str = "
CREATE INDEX messages_uid_flags ON messages(mailbox_id, uid, flags, size);
";

/// Version 5: the covering index holds everything an IMAP session keeps of a message (all
/// but the blob hash), so the session's view is read from indexes only; it replaces v4's.
/// SELECT reads just UIDs and flags from it, and the keywords of the (few) messages that have
/// any from a partial index of those alone.
pub(crate) const V5: &str = "
CREATE INDEX messages_summary
    ON messages(mailbox_id, uid, flags, size, internal_date, modseq, keywords);
CREATE INDEX messages_keywords ON messages(mailbox_id, uid, keywords) WHERE keywords <> '';
DROP INDEX messages_uid_flags;
";

/// Version 6: what IMAP parsed once from each message body (`store::MessageFacts`), per blob
/// like the bodies themselves, so that ENVELOPE, BODYSTRUCTURE and header fetches read neither
/// the file nor parse it again. A cache: rows go with their blob (and may be deleted at any
/// time); `version` is the format of the IMAP code that wrote the row.
pub(crate) const V6: &str = "
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
pub(crate) const V7: &str = "
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
pub(crate) const V8: &str = "
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
pub(crate) const V9: &str = "
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
pub(crate) const V10: &str = "
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
pub(crate) const V11: &str = "
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
pub(crate) const V12: &str = "
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
pub(crate) const V13: &str = "
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
pub(crate) const V14: &str = "
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
pub(crate) const V15: &str = "
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
pub(crate) const V16: &str = "
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
pub(crate) const V17: &str = "
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
pub(crate) const V18: &str = "
ALTER TABLE accounts ADD COLUMN pop3_expire_days INTEGER;
";

/// Version 19: the expunge log is pruned (`store::ExpungeLogLimits`). `expunged.expunged_at`
/// dates each row (existing rows count from the upgrade); `mailboxes.expunge_floor` is the
/// highest MODSEQ pruned from the mailbox's log: the log holds every expunge above it, and a
/// QRESYNC client further behind gets a full resync (RFC 7162 §3.2.5.2).
/// (Each column is added only when missing, so the upgrade tests that rewind
/// `user_version` over a current schema can run it again.)
pub(crate) const V19: [(&str, &str, &str); 2] = [
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
