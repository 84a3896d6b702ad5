//! APPEND — RFC 9051 §6.3.12, APPENDUID (RFC 4315 §3), MULTIAPPEND (RFC 3502), CATENATE
//! (RFC 4469, in `catenate.rs`).
//!
//! MULTIAPPEND is all-or-nothing (RFC 3502 §6.3.11): every message is checked — and every
//! CATENATE message put together — before any is stored; then all of them are stored in one
//! store transaction (`MailStore::append_many`), so a failure or a crash stores none, and no
//! other session ever sees part of the batch.

use std::sync::Arc;

use imap_proto::{AppendData, AppendMessage, Code, Mailbox, SequenceSet, Status, Tag};
use store::MailboxId;

use crate::cmd::catenate;
use crate::cmd::copy::target;
use crate::cmd::imapurl::Budget;
use crate::ctx::{Ctx, store_error};
use crate::state::{Selected, User, to_store_flags};

pub(crate) async fn append(
    ctx: &mut Ctx,
    tag: Tag,
    user: &User,
    sel: Option<&mut Selected>,
    mailbox: &Mailbox,
    messages: Vec<AppendMessage>,
) -> Status {
    let selected: Option<MailboxId> = sel.as_ref().map(|s| s.id);
    // RFC 4469 §4 (and the order imaptest's catenate group expects): a missing mailbox is
    // TRYCREATE before any URL is looked at.
    let mb = match target(ctx, &tag, user.account, mailbox).await {
        Ok(mb) => mb,
        Err(s) => return s,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // What CATENATE may read and build for this command in total: the command size limit,
    // which bounds literal data the same way.
    let mut budget = Budget::new(ctx.server.config.max_command_size);
    let mut batch = Vec::with_capacity(messages.len());
    for m in messages {
        let data = match m.data {
            // RFC 3516 §4.4: binary content is stored base64-encoded, so FETCH BODY can send it.
            AppendData::Literal { data, binary: true } => crate::mime::binary_to_base64(data),
            AppendData::Literal { data, .. } => data,
            AppendData::Catenate(parts) => {
                match catenate::build(ctx, &tag, user, selected, parts, &mut budget).await {
                    Ok(d) => d,
                    Err(s) => return s,
                }
            }
        };
        if data.is_empty() {
            return Status::no(Some(tag), "empty message").with_code(Code::Cannot);
        }
        batch.push(store::AppendMessage {
            bytes: Arc::new(data),
            flags: to_store_flags(&m.flags),
            internal_date: m.date_time.map(|d| d.unix_timestamp()).unwrap_or(now),
        });
    }
    // The success reply goes out only after the store committed (and fsynced).
    let begun = std::time::Instant::now();
    let stored = if batch.len() == 1 {
        let m = batch.remove(0);
        // RFC 3501 §2.3.2: a read-write rev1 session appending to its selected mailbox tells
        // its client of the message at the end of this command, so it is the first session
        // notified: it claims `\Recent` with the append, in the same store write.
        match sel.filter(|s| s.id == mb.id && !s.read_only && !ctx.rev2) {
            Some(s) => ctx
                .server
                .store
                .append_claiming_recent(mb.id, m.bytes, &m.flags, m.internal_date)
                .await
                .map(|(stored, before)| {
                    s.claimed_with_append(ctx, before, stored.uid);
                    vec![stored]
                }),
            None => ctx
                .server
                .store
                .append(mb.id, m.bytes, &m.flags, m.internal_date)
                .await
                .map(|s| vec![s]),
        }
    } else {
        ctx.server.store.append_many(mb.id, batch).await
    };
    telemetry::store_latency(telemetry::StoreOp::Append, begun.elapsed());
    let stored = match stored {
        Ok(s) => s,
        Err(e) => return store_error(&tag, &e),
    };
    let validity = stored.first().map_or(mb.uid_validity, |s| s.uid_validity);
    let uids = stored.iter().map(|s| s.uid);
    let s = Status::ok(Some(tag), "APPEND completed");
    match SequenceSet::from_ids(uids) {
        Some(set) => s.with_code(Code::AppendUid {
            uid_validity: validity,
            uids: set,
        }),
        None => s,
    }
}
