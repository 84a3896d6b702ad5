//! The relational schema and its versioned migrations.
//!
//! The schema is meant to be read by an admin with `psql`: one table per noun, real columns,
//! message bodies as `bytea` in `blobs`. `schema_migrations` lists the steps applied, one row
//! per version. [`migrate`] applies the missing steps in order, each in its own transaction
//! that first takes a transaction-level advisory lock: several nodes starting at once against a
//! fresh (or older) database wait for each other, and each step runs exactly once.
//!
//! Types: ids are `bigint` identities (never reused, so a session holding a stale id cannot
//! reach a newer object); UIDs, UIDVALIDITY and MODSEQs are `bigint` (a UID is 32-bit unsigned,
//! RFC 9051 §2.3.1.1; a MODSEQ 63-bit, RFC 7162 §3.1); mailbox names use the "C" collation so
//! that they sort and compare by bytes whatever the database's locale.

use deadpool_postgres::Client;
use store::StoreError;

use crate::error::PgResult;

/// The version [`migrate`] produces. Add a step to [`STEPS`] when the schema changes.
pub const SCHEMA_VERSION: i32 = 11;

/// The key of the advisory lock held while migrating (any constant unique to yubin: "yubin"
/// in ASCII).
const MIGRATION_LOCK: i64 = 0x0079_7562_696e;

/// Version 1: the initial schema, the same nouns as the embedded store's.
const V1: &str = r#"
CREATE TABLE domains (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE                 -- canonical lower-case form
);

CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address       text NOT NULL UNIQUE,              -- canonical (lower-case) local@domain
    domain_id     bigint NOT NULL REFERENCES domains(id),
    password_hash text NOT NULL,                     -- PHC string (argon2id)
    scram         text,                              -- SCRAM-SHA-256 credentials, RFC 5802 §3
    quota_limit   bigint,                            -- bytes; NULL = unlimited
    quota_used    bigint NOT NULL DEFAULT 0,         -- bytes; kept current by every write
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_domain ON accounts(domain_id);

-- source is local@domain, or @domain for the domain's catch-all.
CREATE TABLE aliases (
    source      text PRIMARY KEY,
    domain_id   bigint NOT NULL REFERENCES domains(id)
);
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE alias_targets (
    source      text NOT NULL REFERENCES aliases(source) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position    integer NOT NULL,
    PRIMARY KEY (source, account_id)
);
CREATE INDEX alias_targets_account ON alias_targets(account_id);

CREATE TABLE mailboxes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts(id),
    name           text COLLATE "C" NOT NULL,        -- full name, '/' separated, UTF-8
    uid_validity   bigint NOT NULL CHECK (uid_validity BETWEEN 1 AND 4294967295),
    uid_next       bigint NOT NULL DEFAULT 1,        -- RFC 9051 §2.3.1.1; only grows
    highest_modseq bigint NOT NULL DEFAULT 1,        -- RFC 7162 §3.1; only grows
    special_use    text CHECK (special_use IN ('sent', 'drafts', 'trash', 'junk', 'archive')),
    UNIQUE (account_id, name)
);

-- Subscriptions are names (RFC 9051 §6.3.7): they outlive their mailbox.
CREATE TABLE subscriptions (
    account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        text COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- Message bodies, content-addressed and shared: refcount counts the messages and queue
-- entries using the body; the row goes in the transaction that drops the last one.
CREATE TABLE blobs (
    hash        text PRIMARY KEY,                    -- lower-case hex SHA-256 of data
    size        bigint NOT NULL,
    refcount    bigint NOT NULL CHECK (refcount >= 0),
    data        bytea NOT NULL
);
-- Uncompressed out of line (like the embedded store's files): a large body is streamed in
-- slices, and a slice of a compressed value would decompress it from the start every time.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE messages (
    mailbox_id    bigint NOT NULL REFERENCES mailboxes(id),
    uid           bigint NOT NULL,
    blob_hash     text NOT NULL REFERENCES blobs(hash),
    size          bigint NOT NULL,
    internal_date bigint NOT NULL,                   -- Unix seconds
    flags         smallint NOT NULL DEFAULT 0,       -- 1 Seen, 2 Answered, 4 Flagged, 8 Deleted, 16 Draft
    keywords      text[] NOT NULL DEFAULT '{}',      -- IMAP keywords, in the order set
    modseq        bigint NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_hash);
-- What an IMAP session keeps of every message (all but the blob): SELECT, STATUS and the
-- session's view read it with index-only scans instead of the rows.
CREATE INDEX messages_summary ON messages(mailbox_id, uid)
    INCLUDE (flags, size, internal_date, modseq, keywords);

-- Expunged UIDs with the MODSEQ of their removal, for QRESYNC (RFC 7162 §3.2.5).
CREATE TABLE expunged (
    mailbox_id  bigint NOT NULL,
    uid         bigint NOT NULL,
    modseq      bigint NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- What IMAP parsed once from a body (store::MessageFacts). A cache: rows go with their blob.
CREATE TABLE message_facts (
    blob_hash          text PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE,
    version            bigint NOT NULL,
    header             bytea NOT NULL,
    envelope           bytea NOT NULL,
    envelope_utf8      bytea,
    body               bytea NOT NULL,
    body_utf8          bytea,
    bodystructure      bytea NOT NULL,
    bodystructure_utf8 bytea
);

-- URLAUTH mailbox access keys (RFC 4467 §2.2), one per mailbox.
CREATE TABLE urlauth_keys (
    mailbox_id  bigint PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key         bytea NOT NULL
);
CREATE INDEX urlauth_keys_account ON urlauth_keys(account_id);

-- Small store-wide counters, e.g. the last UIDVALIDITY handed out.
CREATE TABLE meta (
    key         text PRIMARY KEY,
    value       bigint NOT NULL
);

-- The outbound queue (RFC 5321 §4.5.4): a message holds one reference on its body's blob.
CREATE TABLE queue_messages (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    blob           text NOT NULL REFERENCES blobs(hash),
    size           bigint NOT NULL,
    sender         text NOT NULL,                    -- reverse-path; '' for <>
    envid          text,                             -- RFC 3461 ENVID
    ret            text CHECK (ret IN ('full', 'hdrs')), -- RFC 3461 RET
    account        bigint,                           -- submitting account, if any
    smtputf8       boolean NOT NULL DEFAULT false,
    created        bigint NOT NULL,                  -- Unix seconds
    delay_notified boolean NOT NULL DEFAULT false
);
CREATE INDEX queue_messages_blob ON queue_messages(blob);

CREATE TABLE queue_recipients (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message       bigint NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address       text NOT NULL,
    domain        text NOT NULL,                     -- lower-case domain part
    orcpt         text,                              -- RFC 3461 ORCPT, addr-type;xtext
    notify        smallint NOT NULL,                 -- 1 success, 2 failure, 4 delay (0 = NEVER)
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt  bigint NOT NULL,                   -- Unix seconds
    last_error    text,
    last_attempt  bigint
);
CREATE INDEX queue_recipients_message ON queue_recipients(message);
CREATE INDEX queue_recipients_due ON queue_recipients(next_attempt) WHERE status = 'pending';

-- Exclusive claims with expiry (the POP3 maildrop lock, RFC 1939 §8): a node that dies
-- stops renewing its leases, and they lapse at expires_at (the database's clock).
CREATE TABLE leases (
    name        text PRIMARY KEY,                    -- e.g. 'maildrop:42'
    node        text NOT NULL,                       -- the holding process
    token       bigint NOT NULL,                     -- one acquisition by that process
    expires_at  timestamptz NOT NULL
);
"#;

/// Version 3: the durable change log every node reads (`change_log.rs`). `seq` numbers each
/// account's batches without gaps, from the per-account counter in `change_heads` (which
/// outlives the log's pruning and the account itself).
const V3: &str = r#"
CREATE TABLE change_heads (
    account     bigint PRIMARY KEY,
    seq         bigint NOT NULL
);
CREATE TABLE change_log (
    account     bigint NOT NULL,
    seq         bigint NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    events      text NOT NULL,                       -- JSON array of store::ChangeEvent
    PRIMARY KEY (account, seq)
);
CREATE INDEX change_log_created ON change_log (created);
"#;

/// Version 2: what nodes agree on through the database (`store::Coordination`, the same nouns
/// as the embedded store's version 10). `leases` is keyed by holder name (the caller's, e.g.
/// `mx1-3f9a0c12#7`) instead of node and token: the version-1 rows were the old maildrop locks
/// of running nodes, which lapse within a minute anyway, so the table is simply re-created.
/// `secrets`: values created once and shared (the SCRAM decoy-salt secret).
/// `mailboxes.recent_uid`: the highest UID some session has claimed as `\Recent` (RFC 3501
/// §2.3.2); 0 for existing mailboxes, so their messages are recent once more.
const V2: &str = r#"
DROP TABLE leases;

-- Exclusive claims with expiry (the POP3 maildrop lock, RFC 1939 §8): a holder that dies stops
-- renewing, and its lease is free again after expires_at — the database's clock, so nodes
-- with skewed clocks agree.
CREATE TABLE leases (
    name        text PRIMARY KEY,                    -- e.g. 'pop3-maildrop/42'
    holder      text NOT NULL,                       -- host-random#n of the holding process
    expires_at  timestamptz NOT NULL
);

CREATE TABLE secrets (
    name        text PRIMARY KEY,                    -- e.g. 'scram-decoy-salt'
    value       bytea NOT NULL                       -- random bytes, never replaced
);

ALTER TABLE mailboxes ADD COLUMN recent_uid bigint NOT NULL DEFAULT 0;
"#;

/// Version 4: the queue shared by several nodes (see `store::QueueStore` and `claims.rs`):
/// leases (one delivery batch of one node each), the lease holding each recipient, the index of
/// destination domains with due work, and the sending log of the per-account hourly limits.
const V4: &str = r#"
CREATE TABLE queue_leases (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- never reused
    destination text NOT NULL,                   -- domain, or '' when a smarthost takes all
    domain      text NOT NULL,                   -- the recipients' domain
    holder      text NOT NULL,                   -- node id of the holding process
    expires     bigint NOT NULL                  -- Unix seconds (the nodes' clock)
);
CREATE INDEX queue_leases_destination ON queue_leases(destination, expires);
CREATE INDEX queue_leases_expires ON queue_leases(expires);

-- The lease that claimed the recipient; while it is live, next_attempt is its expiry. No
-- foreign key: an expired lease's row goes while its id stays here, so that a late result of
-- its holder still matches until another lease claims the recipient (as in the embedded store).
ALTER TABLE queue_recipients ADD COLUMN lease bigint;
CREATE INDEX queue_recipients_lease ON queue_recipients(lease) WHERE lease IS NOT NULL;
-- A domain's due recipients in claim order (the claim's per-domain read, no sort).
CREATE INDEX queue_recipients_domain_due
    ON queue_recipients(domain, next_attempt, id) WHERE status = 'pending';

-- Domains with pending recipients; next_due is never later than the earliest next_attempt of
-- their pending recipients (it may be earlier: a claim then finds nothing and corrects it).
CREATE TABLE queue_domains (
    domain      text PRIMARY KEY,
    next_due    bigint NOT NULL                  -- Unix seconds
);
CREATE INDEX queue_domains_due ON queue_domains(next_due, domain);
INSERT INTO queue_domains (domain, next_due)
    SELECT domain, min(next_attempt) FROM queue_recipients WHERE status = 'pending'
    GROUP BY domain;

-- Messages accepted from authenticated accounts, for the hourly sending limits. No foreign
-- key to accounts (as in the embedded store): rows age out of the window either way.
CREATE TABLE sending_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account     bigint NOT NULL,
    at          bigint NOT NULL,                 -- Unix seconds
    recipients  bigint NOT NULL
);
CREATE INDEX sending_log_account ON sending_log(account, at);
"#;

/// Version 5: DKIM signing keys (`store::DkimKeyStore`, the embedded store's version 12): one
/// set for every node, so mail signed on any node carries the same key and a key generated on
/// one node signs on all. Domain and selector are lower case (DNS names, RFC 4343 §3); the
/// newest key of a domain signs unless a selector is configured, `id` ordering keys made in
/// the same second.
const V5: &str = r#"
CREATE TABLE dkim_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain      text NOT NULL,                   -- signing domain (d=), lower case
    selector    text NOT NULL,                   -- s=, one DNS label, lower case
    algorithm   text NOT NULL CHECK (algorithm IN ('ed25519', 'rsa')),
    private_key text NOT NULL,                   -- PEM; a secret
    created_at  bigint NOT NULL,                 -- Unix seconds
    UNIQUE (domain, selector)
);
CREATE INDEX dkim_keys_newest ON dkim_keys (domain, created_at, id);
"#;

/// Version 6: the password-guessing defence (`store::LoginGuardStore`): failed-login counters
/// per client address and per account, and IP bans, shared by every node.
const V6: &str = r#"
-- One row per counted subject: failures in the current long window (a day by default) and
-- short window (bursts). A window restarts at the first failure after it ended.
CREATE TABLE login_failures (
    scope           text NOT NULL,               -- 'ip' or 'account'
    subject         text NOT NULL,               -- canonical IP (IPv6: its /64) or address
    window_start    bigint NOT NULL,             -- Unix seconds
    failures        integer NOT NULL,
    burst_start     bigint NOT NULL,             -- Unix seconds
    burst_failures  integer NOT NULL,
    last_failure    bigint NOT NULL,             -- Unix seconds
    PRIMARY KEY (scope, subject)
);
CREATE INDEX login_failures_last ON login_failures(scope, last_failure);

-- Client addresses refused by every listener until `until` (yubin ban list/add/del).
CREATE TABLE login_bans (
    ip          text PRIMARY KEY,                -- canonical IP (IPv6: its /64)
    until       bigint NOT NULL,                 -- Unix seconds
    created     bigint NOT NULL,                 -- Unix seconds
    reason      text NOT NULL                    -- failures, burst, manual, ...
);
CREATE INDEX login_bans_until ON login_bans(until);
"#;

/// Version 7: greylisting state (`store::Greylist`, the embedded store's version 13): one row
/// per (client network, envelope sender, recipient) triple, shared by every node. `passed` is
/// NULL while the triple waits for its retry.
const V7: &str = r#"
CREATE TABLE greylist (
    network     text NOT NULL,                   -- IPv4 /24 or IPv6 /64, e.g. 192.0.2.0/24
    sender      text NOT NULL,                   -- envelope sender, lower case; '' for <>
    recipient   text NOT NULL,                   -- envelope recipient, lower case
    first_seen  bigint NOT NULL,                 -- Unix seconds
    last_seen   bigint NOT NULL,                 -- Unix seconds
    passed      bigint,                          -- Unix seconds of the accepted retry
    PRIMARY KEY (network, sender, recipient)
);
CREATE INDEX greylist_last_seen ON greylist (last_seen);
"#;

/// Version 8: the dates retention goes by (`store::MessageDates`, the embedded store's version
/// 16). `save_date`: when the message entered its mailbox (RFC 8514); new rows get the
/// database's clock by default, so every insert path (delivery, APPEND, COPY, MOVE) sets it,
/// and rows stored before count as saved at the upgrade (the default's value when the column
/// is added: no table rewrite) — an upgrade never makes old Trash due at once. `retrieved_at`:
/// the first POP3 RETR (RFC 2449 §6.7 EXPIRE). Indexed per mailbox for retention's batches.
const V8: &str = r#"
ALTER TABLE messages
    ADD COLUMN save_date bigint DEFAULT extract(epoch FROM now())::bigint;  -- Unix seconds
ALTER TABLE messages ADD COLUMN retrieved_at bigint;   -- Unix seconds
CREATE INDEX messages_save_date ON messages(mailbox_id, save_date);
CREATE INDEX messages_retrieved ON messages(mailbox_id, retrieved_at)
    WHERE retrieved_at IS NOT NULL;
"#;

/// Version 9: quotas in two resources (RFC 9208 STORAGE and MESSAGE; the embedded store's
/// version 17). `quota_limit` becomes the account's storage override (NULL: the configured
/// default applies); `message_limit` is its message-count override; `messages_used` counts its
/// messages, kept current by every write (computed here once); `storage_warned` and
/// `messages_warned` are the thresholds (percent) usage has reached, so a warning goes out
/// once per crossing; `quota_warnings` queues the warnings until a node sends them.
const V9: &str = r#"
ALTER TABLE accounts ADD COLUMN message_limit bigint;              -- NULL = the default applies
ALTER TABLE accounts ADD COLUMN messages_used bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN storage_warned smallint NOT NULL DEFAULT 0;  -- percent
ALTER TABLE accounts ADD COLUMN messages_warned smallint NOT NULL DEFAULT 0; -- percent
UPDATE accounts a SET messages_used = (
    SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
    WHERE b.account_id = a.id);

CREATE TABLE quota_warnings (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    resource    text NOT NULL,                   -- 'storage' or 'messages'
    percent     smallint NOT NULL,               -- the threshold crossed
    used        bigint NOT NULL,                 -- bytes or messages, right after the crossing
    limit_value bigint NOT NULL,
    created_at  bigint NOT NULL                  -- Unix seconds
);
CREATE INDEX quota_warnings_account ON quota_warnings (account_id);
"#;

/// Version 10: the account's own POP3 retention choice from the account pages
/// (`store::Pop3Expire`; the embedded store's version 18): NULL = the configured policy,
/// -1 = never, n = days.
const V10: &str = r#"
ALTER TABLE accounts ADD COLUMN pop3_expire_days integer;
"#;

/// Version 11: the expunge log is pruned (`store::ExpungeLogLimits`; the embedded store's
/// version 19). `expunged.expunged_at` dates each row (existing rows count from the upgrade);
/// `mailboxes.expunge_floor` is the highest MODSEQ pruned from the mailbox's log: the log
/// holds every expunge above it, and a QRESYNC client further behind gets a full resync
/// (RFC 7162 §3.2.5.2).
const V11: &str = r#"
ALTER TABLE expunged ADD COLUMN expunged_at bigint NOT NULL
    DEFAULT extract(epoch FROM now())::bigint;
ALTER TABLE mailboxes ADD COLUMN expunge_floor bigint NOT NULL DEFAULT 0;
"#;

/// The steps in order: (version, description, SQL).
const STEPS: &[(i32, &str, &str)] = &[
    (1, "initial schema", V1),
    (2, "leases by holder, shared secrets, recent marks", V2),
    (3, "change log", V3),
    (4, "shared queue: leases, due domains, sending log", V4),
    (5, "DKIM signing keys", V5),
    (6, "login guard: failed-login counters and bans", V6),
    (7, "greylisting", V7),
    (8, "message save dates and first POP3 retrievals", V8),
    (
        9,
        "quotas: message counts, warning levels and the warning queue",
        V9,
    ),
    (10, "the account's own POP3 retention choice", V10),
    (11, "expunge log pruning: row dates, per-mailbox floor", V11),
];

const CREATE_MIGRATIONS: &str = "
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

/// Creates or upgrades the schema to [`SCHEMA_VERSION`]; a no-op when it is current. Safe to
/// run from several nodes at once.
pub async fn migrate(client: &mut Client) -> PgResult<()> {
    for &(version, description, sql) in STEPS {
        let tx = client.transaction().await?;
        // Held until this transaction ends: a node starting meanwhile waits here, then sees
        // the step applied.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(CREATE_MIGRATIONS).await?;
        let current: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "database schema version {current} is newer than this program ({SCHEMA_VERSION})"
            ))
            .into());
        }
        if current >= version {
            tx.commit().await?;
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[&version, &description],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, description, "applied schema migration");
    }
    Ok(())
}
