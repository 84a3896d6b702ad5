//! APPEND — RFC 9051 §6.3.12, APPENDUID (RFC 4315 §3), MULTIAPPEND (RFC 3502).
//!
//! MULTIAPPEND is all-or-nothing (RFC 3502 §6.3.11): every message is checked before the
//! first is stored; they are then stored one by one, and if the store fails part-way the
//! messages already stored are expunged again before the NO. (Other sessions may briefly
//! see them come and go; the store has no multi-message transaction.)

use std::sync::Arc;

use imap_proto::{AppendMessage, Code, Mailbox, SequenceSet, Status, Tag};

use crate::cmd::copy::target;
use crate::session::{Ctx, store_error};
use crate::state::to_store_flags;

pub(crate) async fn append(
    ctx: &mut Ctx,
    tag: Tag,
    account: store::AccountId,
    mailbox: &Mailbox,
    messages: Vec<AppendMessage>,
) -> Status {
    let mb = match target(ctx, &tag, account, mailbox).await {
        Ok(mb) => mb,
        Err(s) => return s,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut uids = Vec::new();
    let mut validity = mb.uid_validity;
    if messages.iter().any(|m| m.data.is_empty()) {
        return Status::no(Some(tag), "empty message").with_code(Code::Cannot);
    }
    for m in messages {
        let date = m.date_time.map(|d| d.unix_timestamp()).unwrap_or(now);
        let flags = to_store_flags(&m.flags);
        // RFC 3516 §4.4: binary content is stored base64-encoded, so FETCH BODY can send it.
        let data = if m.binary {
            crate::mime::binary_to_base64(m.data)
        } else {
            m.data
        };
        // The success reply goes out only after the store committed (and fsynced).
        match ctx
            .server
            .store
            .append(mb.id, Arc::new(data), &flags, date)
            .await
        {
            Ok(stored) => {
                validity = stored.uid_validity;
                uids.push(stored.uid);
            }
            Err(e) => {
                if !uids.is_empty()
                    && let Err(undo) = ctx.server.store.expunge(mb.id, &uids).await
                {
                    tracing::warn!(error = %undo, "imap: MULTIAPPEND rollback failed");
                }
                return store_error(&tag, &e);
            }
        }
    }
    let s = Status::ok(Some(tag), "APPEND completed");
    match SequenceSet::from_ids(uids) {
        Some(set) => s.with_code(Code::AppendUid {
            uid_validity: validity,
            uids: set,
        }),
        None => s,
    }
}
