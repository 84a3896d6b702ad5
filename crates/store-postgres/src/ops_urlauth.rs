//! URLAUTH mailbox access keys (RFC 4467 §2.2): one random secret per mailbox, created on
//! first use by GENURLAUTH and removed by RESETKEY (or with the mailbox or account).

use store::{AccountId, MailboxId, StoreError};

use crate::db::{exec, opt};
use crate::error::PgResult;
use crate::tx::Tx;

/// The key of `mailbox`, storing `fresh` when there is none yet. Two nodes racing to create
/// it both return the one that was stored first.
pub async fn key_or_insert(tx: &mut Tx<'_>, mailbox: MailboxId, fresh: &[u8]) -> PgResult<Vec<u8>> {
    exec(
        &tx.t,
        "INSERT INTO urlauth_keys (mailbox_id, account_id, key)
         SELECT id, account_id, $2 FROM mailboxes WHERE id = $1
         ON CONFLICT (mailbox_id) DO NOTHING",
        &[&mailbox, &fresh],
    )
    .await?;
    Ok(opt(
        &tx.t,
        "SELECT key FROM urlauth_keys WHERE mailbox_id = $1",
        &[&mailbox],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?
    .get(0))
}

/// RFC 4467 §7 RESETKEY: one mailbox's key, or all of the account's.
pub async fn reset(
    tx: &mut Tx<'_>,
    account: AccountId,
    mailbox: Option<MailboxId>,
) -> PgResult<()> {
    match mailbox {
        Some(m) => {
            exec(
                &tx.t,
                "DELETE FROM urlauth_keys WHERE account_id = $1 AND mailbox_id = $2",
                &[&account, &m],
            )
            .await?
        }
        None => {
            exec(
                &tx.t,
                "DELETE FROM urlauth_keys WHERE account_id = $1",
                &[&account],
            )
            .await?
        }
    };
    Ok(())
}
