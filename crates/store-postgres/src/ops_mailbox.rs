//! Mailbox writes: create, delete, rename, subscribe (RFC 9051 §6.3.4–§6.3.8). Name changes
//! take the account's namespace lock first (`prim.rs`).

use store::{AccountId, Change, ChangeEvent, INBOX, MailboxId, StoreError};

use crate::db::{exec, opt, rows};
use crate::error::PgResult;
use crate::ops_msg::copy_rows;
use crate::prim::{
    MailboxRow, check, drop_mailbox, expunge_uids_with, insert_mailbox, lock_mailbox,
    lock_namespace,
};
use crate::tx::Tx;
use store::backend::names;

async fn find_id(tx: &Tx<'_>, account: AccountId, name: &str) -> PgResult<Option<MailboxId>> {
    Ok(opt(
        &tx.t,
        "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2",
        &[&account, &name],
    )
    .await?
    .map(|r| MailboxId::new(account, r.get(0))))
}

/// Creates the missing superiors of `name` (RFC 9051 §6.3.4: "the server SHOULD create any
/// superior hierarchical names that are needed").
async fn create_parents(tx: &mut Tx<'_>, account: AccountId, name: &str) -> PgResult<()> {
    for parent in names::parents(name) {
        if find_id(tx, account, parent).await?.is_none() {
            insert_mailbox(tx, account, parent, None, false).await?;
        }
    }
    Ok(())
}

/// RFC 9051 §6.3.4 CREATE. Returns the new mailbox's id.
pub async fn create(tx: &mut Tx<'_>, account: AccountId, name: &str) -> PgResult<MailboxId> {
    let name = check(names::canonical(name))?;
    if opt(&tx.t, "SELECT 1 FROM accounts WHERE id = $1", &[&account])
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound(format!("account {account}")).into());
    }
    lock_namespace(tx, account).await?;
    // INBOX always exists, so creating it (in any case) is "already exists".
    if find_id(tx, account, &name).await?.is_some() {
        return Err(StoreError::Exists(format!("mailbox {name}")).into());
    }
    create_parents(tx, account, &name).await?;
    insert_mailbox(tx, account, &name, None, false).await
}

/// RFC 9051 §6.3.5 DELETE. INBOX cannot be deleted; inferior mailboxes are left in place.
pub async fn delete(tx: &mut Tx<'_>, mailbox: MailboxId) -> PgResult<()> {
    let account = owner(tx, mailbox).await?;
    lock_namespace(tx, account).await?;
    let mb = lock_mailbox(tx, mailbox).await?;
    if mb.name == INBOX {
        return Err(StoreError::Invalid("INBOX cannot be deleted".into()).into());
    }
    drop_mailbox(tx, &mb).await
}

/// The account of a mailbox (`NotFound` without it).
async fn owner(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<AccountId> {
    Ok(opt(
        &tx.t,
        "SELECT account_id FROM mailboxes WHERE id = $1",
        &[&mailbox],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?
    .get(0))
}

/// RFC 9051 §6.3.6 RENAME: inferiors are renamed with it, missing superiors of the new name are
/// created. Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty (its
/// inferiors stay where they are).
pub async fn rename(tx: &mut Tx<'_>, mailbox: MailboxId, new_name: &str) -> PgResult<()> {
    let new_name = check(names::canonical(new_name))?;
    let account = owner(tx, mailbox).await?;
    lock_namespace(tx, account).await?;
    let mb = lock_mailbox(tx, mailbox).await?;
    if find_id(tx, mb.account, &new_name).await?.is_some() {
        return Err(StoreError::Exists(format!("mailbox {new_name}")).into());
    }
    if mb.name == INBOX {
        return rename_inbox(tx, &mb, &new_name).await;
    }
    if names::is_inferior(&new_name, &mb.name) {
        return Err(StoreError::Invalid("cannot rename a mailbox into itself".into()).into());
    }
    // The mailbox and its inferiors, with their old and new names. Names sort by bytes
    // ("C" collation) and '0' follows '/', so the inferiors of `a` are the range
    // ['a/', 'a0'): an index range scan.
    let mut moves: Vec<(MailboxId, String, String)> =
        vec![(mb.id, mb.name.clone(), new_name.clone())];
    let inferiors = rows(
        &tx.t,
        "SELECT id, name FROM mailboxes
         WHERE account_id = $1 AND name >= $2::text || '/' AND name < $2::text || '0'
         ORDER BY name",
        &[&mb.account, &mb.name],
    )
    .await?;
    for r in &inferiors {
        let (id, old): (MailboxId, String) = (MailboxId::new(mb.account, r.get(0)), r.get(1));
        let suffix = old.get(mb.name.len()..).unwrap_or_default().to_string();
        moves.push((id, old, format!("{new_name}{suffix}")));
    }
    for (_, _, name) in &moves[1..] {
        if name.len() > names::MAX_NAME_LEN {
            return Err(StoreError::Invalid("mailbox name: too long".into()).into());
        }
        if find_id(tx, mb.account, name).await?.is_some() {
            return Err(StoreError::Exists(format!("mailbox {name}")).into());
        }
    }
    create_parents(tx, mb.account, &new_name).await?;
    for (id, old_name, new_name) in moves {
        exec(
            &tx.t,
            "UPDATE mailboxes SET name = $2 WHERE id = $1",
            &[&id, &new_name],
        )
        .await?;
        tx.events.push(ChangeEvent {
            mailbox: id,
            change: Change::MailboxRenamed { old_name, new_name },
        });
    }
    Ok(())
}

/// RFC 9051 §6.3.6: "Renaming INBOX is permitted … [it] moves all messages in INBOX to a new
/// mailbox with the given name, leaving INBOX empty." The messages are copied (keeping their
/// blob references and quota) and expunged from INBOX, whose UIDs are not reused.
async fn rename_inbox(tx: &mut Tx<'_>, inbox: &MailboxRow, new_name: &str) -> PgResult<()> {
    create_parents(tx, inbox.account, new_name).await?;
    let dst = insert_mailbox(tx, inbox.account, new_name, None, false).await?;
    let dst = lock_mailbox(tx, dst).await?;
    let moved = copy_rows(tx, inbox, None, &dst, false).await?;
    let uids: Vec<u32> = moved.iter().map(|m| m.0).collect();
    expunge_uids_with(tx, inbox, &uids, false).await?;
    Ok(())
}

/// RFC 9051 §6.3.7/§6.3.8 SUBSCRIBE/UNSUBSCRIBE. Subscribing needs the mailbox to exist
/// now; the subscription is a name and outlives it. Unsubscribing takes any name (that is how
/// a subscription to a deleted mailbox is dropped).
pub async fn set_subscribed(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    subscribed: bool,
) -> PgResult<()> {
    let name = check(names::canonical(name))?;
    let id = find_id(tx, account, &name).await?;
    if subscribed {
        if id.is_none() {
            return Err(StoreError::NotFound(format!("mailbox {name}")).into());
        }
        exec(
            &tx.t,
            "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&account, &name],
        )
        .await?;
    } else {
        let n = exec(
            &tx.t,
            "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2",
            &[&account, &name],
        )
        .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("subscription {name}")).into());
        }
    }
    // NOTIFY SubscriptionChange (RFC 5465 §5.5). A subscription outlives its mailbox: the
    // event of one whose mailbox is gone carries mailbox id 0 (ids start at 1).
    tx.events.push(ChangeEvent {
        mailbox: id.unwrap_or(MailboxId::new(account, 0)),
        change: Change::SubscriptionChanged { name, subscribed },
    });
    Ok(())
}
