//! The invariants `MailStore::check` verifies with SQL (see `store::check`), in the dialect
//! SQLite and PostgreSQL share, over the tables both backends have with the same names and
//! columns. Each query returns one text column: a violation, naming its object.

/// Every message and queue entry's body reference, one row per reference.
macro_rules! references {
    () => {
        "SELECT blob_hash AS h FROM messages UNION ALL SELECT blob AS h FROM queue_messages"
    };
}

/// The invariants, one query each.
pub const QUERIES: &[&str] = &[
    // RFC 9051 §2.3.1.1: UIDs strictly ascending and never reused, so UIDNEXT is above every
    // UID the mailbox has held — the expunged ones too.
    "SELECT 'mailbox ' || a.address || ' ' || mb.name || ': UIDNEXT ' || mb.uid_next
            || ' is not above UID ' || u.max_uid
     FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id
     JOIN (SELECT mailbox_id, max(uid) AS max_uid FROM
             (SELECT mailbox_id, uid FROM messages UNION ALL SELECT mailbox_id, uid FROM expunged) t
           GROUP BY mailbox_id) u ON u.mailbox_id = mb.id
     WHERE u.max_uid >= mb.uid_next",
    "SELECT 'mailbox ' || a.address || ' ' || mb.name || ': UID ' || m.uid
            || ' is both present and expunged (reused)'
     FROM messages m JOIN expunged e ON e.mailbox_id = m.mailbox_id AND e.uid = m.uid
     JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN accounts a ON a.id = mb.account_id",
    "SELECT 'mailbox ' || mailbox_id || ': UID ' || uid || ' appears ' || count(*) || ' times'
     FROM messages GROUP BY mailbox_id, uid HAVING count(*) > 1",
    "SELECT 'message in mailbox ' || m.mailbox_id || ' UID ' || m.uid || ': no such mailbox'
     FROM messages m LEFT JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.id IS NULL",
    // RFC 7162 §3.1: HIGHESTMODSEQ is the highest MODSEQ of any change in the mailbox.
    "SELECT 'mailbox ' || a.address || ' ' || mb.name || ': MODSEQ ' || x.modseq
            || ' above HIGHESTMODSEQ ' || mb.highest_modseq
     FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id
     JOIN (SELECT mailbox_id, max(modseq) AS modseq FROM
             (SELECT mailbox_id, modseq FROM messages UNION ALL
              SELECT mailbox_id, modseq FROM expunged) t
           GROUP BY mailbox_id) x ON x.mailbox_id = mb.id
     WHERE x.modseq > mb.highest_modseq",
    // RFC 9208: the counters every write keeps equal the real sums.
    "SELECT 'account ' || a.address || ': quota counters say ' || a.quota_used || ' bytes, '
            || a.messages_used || ' messages; its messages hold ' || coalesce(s.bytes, 0)
            || ' bytes, ' || coalesce(s.n, 0) || ' messages'
     FROM accounts a LEFT JOIN
       (SELECT mb.account_id, sum(m.size) AS bytes, count(*) AS n
        FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id GROUP BY mb.account_id) s
       ON s.account_id = a.id
     WHERE a.quota_used <> coalesce(s.bytes, 0) OR a.messages_used <> coalesce(s.n, 0)",
    // Blob reference counts (`prim.rs`): one per message and queue entry using the body.
    concat!(
        "SELECT 'body ' || b.hash || ': refcount ' || b.refcount || ', referenced '
                || coalesce(r.n, 0) || ' times'
         FROM blobs b LEFT JOIN (SELECT h, count(*) AS n FROM (",
        references!(),
        ") t GROUP BY h) r ON r.h = b.hash
         WHERE b.refcount <> coalesce(r.n, 0)"
    ),
    concat!(
        "SELECT 'body ' || r.h || ': referenced ' || count(*) || ' times but has no blobs row'
         FROM (",
        references!(),
        ") r LEFT JOIN blobs b ON b.hash = r.h WHERE b.hash IS NULL GROUP BY r.h"
    ),
    // The row goes in the transaction that drops the last reference.
    "SELECT 'body ' || hash || ': kept with no reference (refcount 0)'
     FROM blobs WHERE refcount = 0",
];
