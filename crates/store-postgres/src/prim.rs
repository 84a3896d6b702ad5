//! Primitive write steps shared by the operations: locks, UID and MODSEQ allocation, blob
//! reference counting, quota accounting, message removal. Each runs inside a write transaction.
//!
//! Locking (several nodes write at once; READ COMMITTED plus explicit row locks):
//! - Every write to a mailbox's messages first locks the mailbox row (`FOR NO KEY UPDATE`,
//!   which foreign-key checks of inserted messages do not conflict with) and holds it to the
//!   commit: writes to one mailbox are serialised, so a UID or MODSEQ is handed out by one
//!   transaction at a time and commits happen in MODSEQ order (RFC 7162 §3.1: a reader that
//!   sees HIGHESTMODSEQ N sees every change up to N). Several mailboxes are locked in id order.
//! - Then the account row (quota), then blob rows (hash order). Always in this order, so two
//!   writers cannot wait for each other; PostgreSQL's deadlock detection and the retry in
//!   `tx.rs` cover what slips through.
//! - Changes to an account's mailbox names (create, rename, delete, account deletion) take a
//!   per-account advisory lock first ([`lock_namespace`]), so two nodes cannot, say, create
//!   `a/b` while renaming `a`.

use std::collections::BTreeMap;

use store::{
    AccountId, Change, ChangeEvent, MailboxId, ModSeq, SpecialUse, StoreError, StoreResult, Uid,
};

use crate::db::{col_u32, exec, now, one, opt, rows, sql_u64};
use crate::error::PgResult;
use crate::tx::Tx;

/// The columns of a mailbox row the write paths need.
#[derive(Debug, Clone)]
pub struct MailboxRow {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
}

fn mailbox_not_found(id: MailboxId) -> StoreError {
    StoreError::NotFound(format!("mailbox {id}"))
}

/// Locks the mailbox row to the end of the transaction (see the module doc).
pub async fn lock_mailbox(tx: &Tx<'_>, id: MailboxId) -> PgResult<MailboxRow> {
    let row = opt(
        &tx.t,
        // Scoped to the account the id names (see `store::MailStore`).
        "SELECT name FROM mailboxes WHERE id = $1 AND account_id = $2 FOR NO KEY UPDATE",
        &[&id, &id.account],
    )
    .await?
    .ok_or_else(|| mailbox_not_found(id))?;
    Ok(MailboxRow {
        id,
        account: id.account,
        name: row.get(0),
    })
}

/// Locks two mailbox rows in id order; returns them as (`a`, `b`).
pub async fn lock_two(
    tx: &Tx<'_>,
    a: MailboxId,
    b: MailboxId,
) -> PgResult<(MailboxRow, MailboxRow)> {
    if a == b {
        let row = lock_mailbox(tx, a).await?;
        return Ok((row.clone(), row));
    }
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    let first = lock_mailbox(tx, first).await?;
    let second = lock_mailbox(tx, second).await?;
    Ok(if first.id == a {
        (first, second)
    } else {
        (second, first)
    })
}

/// A key for `pg_advisory_xact_lock` per account's mailbox names.
const NAMESPACE_LOCK: i64 = 0x6e73 << 48;

/// Serialises changes to the mailbox names of `account` (module doc).
pub async fn lock_namespace(tx: &Tx<'_>, account: AccountId) -> PgResult<()> {
    exec(
        &tx.t,
        "SELECT pg_advisory_xact_lock($1)",
        &[&(NAMESPACE_LOCK ^ account.0)],
    )
    .await?;
    Ok(())
}

/// Hands out a new UIDVALIDITY: the current time in seconds, or one more than the last value
/// handed out in this database if that is larger. Unique across the database (the row lock
/// serialises nodes), so a mailbox re-created under an old name never gets its predecessor's
/// value (RFC 9051 §2.3.1.1).
pub async fn next_uid_validity(tx: &Tx<'_>) -> PgResult<u32> {
    let next: i64 = one(
        &tx.t,
        "INSERT INTO meta (key, value) VALUES ('last_uid_validity', $1)
         ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value + 1, excluded.value)
         RETURNING value",
        &[&now()],
    )
    .await?
    .get(0);
    if next <= 0 || next > i64::from(u32::MAX) {
        // After 2106: still non-zero.
        return Ok(1);
    }
    Ok(next as u32)
}

/// Inserts a mailbox row and queues its `MailboxCreated` event.
pub async fn insert_mailbox(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    subscribed: bool,
) -> PgResult<MailboxId> {
    let uid_validity = i64::from(next_uid_validity(tx).await?);
    let id: i64 = one(
        &tx.t,
        "INSERT INTO mailboxes (account_id, name, uid_validity, special_use)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[
            &account,
            &name,
            &uid_validity,
            &special_use.map(SpecialUse::as_str),
        ],
    )
    .await?
    .get(0);
    let id = MailboxId::new(account, id);
    if subscribed {
        exec(
            &tx.t,
            "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&account, &name],
        )
        .await?;
    }
    tx.events.push(ChangeEvent {
        mailbox: id,
        change: Change::MailboxCreated {
            name: name.to_string(),
        },
    });
    Ok(id)
}

/// What [`allocate`] hands out.
pub struct Allocation {
    /// The first of the UIDs reserved.
    pub first_uid: Uid,
    pub uid_validity: u32,
    /// The MODSEQ of this change.
    pub modseq: ModSeq,
}

/// Reserves `count` consecutive UIDs and the next MODSEQ of a (locked) mailbox in one
/// statement. RFC 9051 §2.3.1.1: UIDs are strictly ascending and never reused — `uid_next`
/// only grows; RFC 7162 §3.1: each change gets a MODSEQ above all before it.
pub async fn allocate(tx: &Tx<'_>, mailbox: MailboxId, count: u32) -> PgResult<Allocation> {
    let count = i64::from(count);
    let row = opt(
        &tx.t,
        "UPDATE mailboxes SET uid_next = uid_next + $2, highest_modseq = highest_modseq + 1
         WHERE id = $1 RETURNING uid_next - $2, uid_validity, highest_modseq",
        &[&mailbox, &count],
    )
    .await?
    .ok_or_else(|| mailbox_not_found(mailbox))?;
    let first: i64 = row.get(0);
    if first < 1 || first + count - 1 > i64::from(u32::MAX) {
        // The transaction is rolled back. A client can only fix this by re-creating the
        // mailbox (new UIDVALIDITY).
        return Err(StoreError::Invalid("mailbox UID space exhausted".into()).into());
    }
    Ok(Allocation {
        first_uid: first as Uid,
        uid_validity: col_u32(row.get(1)),
        modseq: row.get::<_, i64>(2) as ModSeq,
    })
}

/// Bumps and returns the mailbox's HIGHESTMODSEQ (RFC 7162 §3.1: all messages changed by one
/// call share it).
pub async fn bump_modseq(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<ModSeq> {
    let m: i64 = opt(
        &tx.t,
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1
         RETURNING highest_modseq",
        &[&mailbox],
    )
    .await?
    .ok_or_else(|| mailbox_not_found(mailbox))?
    .get(0);
    Ok(m as ModSeq)
}

/// Adds `bytes` and `messages` to the account's usage counters (RFC 9208 STORAGE and MESSAGE;
/// negative to release). With `check`, a growing resource that would pass its limit (the
/// account's override, else the configured default, see `store::QuotaDefaults`) fails with
/// `OverQuota`, and the caller's transaction is rolled back with the increment.
///
/// One statement adds and returns the new row under the account row's lock, held to the
/// commit: a concurrent delivery on any node waits for it and then sees the new usage, so two
/// cannot together pass the limit. A threshold crossed upward queues a `quota_warnings` row
/// in the same transaction.
pub async fn charge_quota(
    tx: &Tx<'_>,
    account: AccountId,
    bytes: i64,
    messages: i64,
    check: bool,
) -> PgResult<()> {
    let row = opt(
        &tx.t,
        "UPDATE accounts a SET quota_used = greatest(a.quota_used + $2::bigint, 0),
                messages_used = greatest(a.messages_used + $3::bigint, 0)
         FROM domains d WHERE a.id = $1 AND d.id = a.domain_id
         RETURNING a.quota_used, a.messages_used, a.quota_limit, a.message_limit, d.name,
                   a.storage_warned, a.messages_warned",
        &[&account, &bytes, &messages],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    let after_row = quota_row(&row);
    // The row as it was before this charge, for the rule shared with the embedded store.
    let before = store::QuotaRow {
        used: after_row.used.saturating_add_signed(-bytes),
        messages: after_row.messages.saturating_add_signed(-messages),
        ..after_row.clone()
    };
    let after = store::charge_quota(&tx.quota, &before, bytes, messages, check)?;
    if after.levels_changed(&before) {
        exec(
            &tx.t,
            "UPDATE accounts SET storage_warned = $2, messages_warned = $3 WHERE id = $1",
            &[
                &account,
                &i16::from(after.storage_warned),
                &i16::from(after.messages_warned),
            ],
        )
        .await?;
    }
    for (resource, percent, used, limit) in &after.crossed {
        exec(
            &tx.t,
            "INSERT INTO quota_warnings (account_id, resource, percent, used, limit_value,
                                         created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &account,
                &resource.code(),
                &i16::from(*percent),
                &sql_u64(*used),
                &sql_u64(*limit),
                &now(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Reads `quota_used, messages_used, quota_limit, message_limit, domain, storage_warned,
/// messages_warned` (the first seven columns, in this order) into a [`store::QuotaRow`].
pub fn quota_row(r: &tokio_postgres::Row) -> store::QuotaRow {
    let u = |v: Option<i64>| v.map(|v| v.max(0) as u64);
    store::QuotaRow {
        used: r.get::<_, i64>(0).max(0) as u64,
        messages: r.get::<_, i64>(1).max(0) as u64,
        overrides: store::QuotaLimits {
            storage: u(r.get(2)),
            messages: u(r.get(3)),
        },
        domain: r.get(4),
        storage_warned: r.get::<_, i16>(5).clamp(0, 100) as u8,
        messages_warned: r.get::<_, i16>(6).clamp(0, 100) as u8,
    }
}

/// Takes `n` references on blob `hash`, inserting the row with `bytes` when it does not exist.
/// Without `bytes` (a copy of a stored message) the row must exist: the caller holds the lock
/// of a mailbox whose message references it, so it cannot go meanwhile.
pub async fn acquire_blob(tx: &Tx<'_>, hash: &str, n: u64, bytes: Option<&[u8]>) -> PgResult<()> {
    let n = sql_u64(n);
    // Most deliveries of a known body (one message to many recipients, copies) need no body
    // transfer: try the increment first.
    let updated = exec(
        &tx.t,
        "UPDATE blobs SET refcount = refcount + $2 WHERE hash = $1",
        &[&hash, &n],
    )
    .await?;
    if updated == 1 {
        return Ok(());
    }
    let Some(bytes) = bytes else {
        return Err(StoreError::Temporary(format!("blob {hash} missing")).into());
    };
    // Another node may insert the same body at the same moment: ON CONFLICT waits for it and
    // then counts our references on its row.
    exec(
        &tx.t,
        "INSERT INTO blobs (hash, size, refcount, data) VALUES ($1, $2, $3, $4)
         ON CONFLICT (hash) DO UPDATE SET refcount = blobs.refcount + excluded.refcount",
        &[&hash, &(bytes.len() as i64), &n, &bytes],
    )
    .await?;
    Ok(())
}

/// Takes references on blobs that exist (copies): `(hash, n)` in hash order.
pub async fn acquire_existing(tx: &Tx<'_>, per_blob: &BTreeMap<String, u64>) -> PgResult<()> {
    for (hash, n) in per_blob {
        acquire_blob(tx, hash, *n, None).await?;
    }
    Ok(())
}

/// Drops references on blobs (`hash` → count); a blob whose count reaches zero is deleted in
/// the same transaction (with its cached facts), so a body lives exactly as long as a message
/// or queue entry uses it.
pub async fn release_blobs(tx: &Tx<'_>, per_blob: &BTreeMap<String, u64>) -> PgResult<()> {
    if per_blob.is_empty() {
        return Ok(());
    }
    // In hash order, like the acquisitions: the planner walks the (sorted) array with the
    // primary key, locking the rows in that order. Should it not, a deadlock between two
    // releases is detected by PostgreSQL and the transaction retried (`tx.rs`).
    let hashes: Vec<&str> = per_blob.keys().map(String::as_str).collect();
    let counts: Vec<i64> = per_blob.values().map(|n| sql_u64(*n)).collect();
    exec(
        &tx.t,
        "UPDATE blobs b SET refcount = greatest(b.refcount - r.n, 0)
         FROM unnest($1::text[], $2::bigint[]) AS r(hash, n)
         WHERE b.hash = r.hash",
        &[&hashes, &counts],
    )
    .await?;
    exec(
        &tx.t,
        "DELETE FROM blobs WHERE hash = ANY($1) AND refcount = 0",
        &[&hashes],
    )
    .await?;
    Ok(())
}

/// Inserts one message row (the blob reference is taken by the caller).
pub struct NewMessage<'a> {
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub hash: &'a str,
    pub size: u64,
    pub internal_date: i64,
    pub flags: i16,
    pub keywords: &'a [String],
    pub modseq: ModSeq,
}

pub async fn insert_message(tx: &Tx<'_>, m: &NewMessage<'_>) -> PgResult<()> {
    exec(
        &tx.t,
        "INSERT INTO messages
           (mailbox_id, uid, blob_hash, size, internal_date, flags, keywords, modseq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &m.mailbox,
            &i64::from(m.uid),
            &m.hash,
            &sql_u64(m.size),
            &m.internal_date,
            &m.flags,
            &m.keywords,
            &sql_u64(m.modseq),
        ],
    )
    .await?;
    Ok(())
}

/// Removes the messages `uids` of the locked mailbox `mb`: one MODSEQ bump, expunge-log rows
/// (RFC 7162 §3.2.5), quota and blob references released, an `Expunged` event. Returns the
/// UIDs actually removed, ascending.
pub async fn expunge_uids(tx: &mut Tx<'_>, mb: &MailboxRow, uids: &[Uid]) -> PgResult<Vec<Uid>> {
    expunge_uids_with(tx, mb, uids, true).await
}

/// [`expunge_uids`]; `release_quota` false leaves the account's usage alone (MOVE and the
/// rename of INBOX: the messages stay in the account).
pub async fn expunge_uids_with(
    tx: &mut Tx<'_>,
    mb: &MailboxRow,
    uids: &[Uid],
    release_quota: bool,
) -> PgResult<Vec<Uid>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<i64> = uids.iter().map(|u| i64::from(*u)).collect();
    let deleted = rows(
        &tx.t,
        "DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)
         RETURNING uid, blob_hash, size",
        &[&mb.id, &wanted],
    )
    .await?;
    if deleted.is_empty() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::with_capacity(deleted.len());
    let mut freed = 0i64;
    let mut per_blob: BTreeMap<String, u64> = BTreeMap::new();
    for r in &deleted {
        removed.push(col_u32(r.get(0)));
        *per_blob.entry(r.get(1)).or_default() += 1;
        freed += r.get::<_, i64>(2);
    }
    removed.sort_unstable();
    let modseq = bump_modseq(tx, mb.id).await?;
    let logged: Vec<i64> = removed.iter().map(|u| i64::from(*u)).collect();
    exec(
        &tx.t,
        "INSERT INTO expunged (mailbox_id, uid, modseq)
         SELECT $1, u, $3 FROM unnest($2::bigint[]) AS u
         ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
        &[&mb.id, &logged, &sql_u64(modseq)],
    )
    .await?;
    if release_quota {
        charge_quota(tx, mb.account, -freed, -(removed.len() as i64), false).await?;
    }
    release_blobs(tx, &per_blob).await?;
    tx.events.push(ChangeEvent {
        mailbox: mb.id,
        change: Change::Expunged {
            uids: removed.clone(),
            modseq,
        },
    });
    Ok(removed)
}

/// Deletes a locked mailbox row with all its messages, its expunge log and its URLAUTH key,
/// releasing quota and blob references, and queues `MailboxDeleted`.
pub async fn drop_mailbox(tx: &mut Tx<'_>, mb: &MailboxRow) -> PgResult<()> {
    let deleted = rows(
        &tx.t,
        "DELETE FROM messages WHERE mailbox_id = $1 RETURNING blob_hash, size",
        &[&mb.id],
    )
    .await?;
    let mut freed = 0i64;
    let mut per_blob: BTreeMap<String, u64> = BTreeMap::new();
    for r in &deleted {
        *per_blob.entry(r.get(0)).or_default() += 1;
        freed += r.get::<_, i64>(1);
    }
    charge_quota(tx, mb.account, -freed, -(deleted.len() as i64), false).await?;
    release_blobs(tx, &per_blob).await?;
    exec(
        &tx.t,
        "DELETE FROM expunged WHERE mailbox_id = $1",
        &[&mb.id],
    )
    .await?;
    exec(&tx.t, "DELETE FROM mailboxes WHERE id = $1", &[&mb.id]).await?;
    tx.events.push(ChangeEvent {
        mailbox: mb.id,
        change: Change::MailboxDeleted {
            name: mb.name.clone(),
        },
    });
    Ok(())
}

/// `StoreResult` → `PgResult`, for the checks shared with the embedded store.
pub fn check<T>(r: StoreResult<T>) -> PgResult<T> {
    r.map_err(Into::into)
}
