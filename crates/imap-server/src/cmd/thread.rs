//! THREAD and UID THREAD — RFC 5256 §3: ORDEREDSUBJECT and REFERENCES over the messages the
//! search criteria select; `* THREAD` with sequence numbers or UIDs.

use imap_proto::{Data, SearchKey, Status, Tag, ThreadAlgorithm};
use store::Uid;

use crate::cmd::search as search_cmd;
use crate::ctx::{Ctx, store_error};
use crate::sort::load_keys;
use crate::sort::order::{casemap, sent_date};
use crate::sort::thread::{ThreadMessage, ordered_subject, references};
use crate::state::Selected;

pub(crate) async fn thread(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    algorithm: ThreadAlgorithm,
    charset: &str,
    search: &SearchKey,
) -> Status {
    if let Err(status) = search_cmd::check_charset(&tag, Some(charset)) {
        return status;
    }
    // The sent date falls back to the INTERNALDATE (RFC 5256 §2.2).
    if let Err(status) = search_cmd::prepare(ctx, &tag, sel, search, true).await {
        return status;
    }
    let found = match search_cmd::matches(ctx, &tag, sel, search).await {
        Ok(f) => f,
        Err(status) => return status,
    };
    let uids: Vec<Uid> = found.iter().map(|(_, u)| *u).collect();
    let keys = match load_keys(ctx, sel, &uids).await {
        Ok(k) => k,
        Err(e) => return store_error(&tag, &e),
    };
    // Messages expunged meanwhile are left out; the rest stay in sequence order, which the
    // algorithms use to break ties (RFC 5256 §2.2).
    let msgs: Vec<ThreadMessage> = found
        .iter()
        .zip(keys)
        .filter_map(|(&(seq, u), k)| {
            let k = k?;
            let internal = sel.view.get(u)?.internal_date;
            Some(ThreadMessage {
                id: if uid { u } else { seq },
                date: sent_date(Some(&k), internal),
                subject: casemap(&k.base_subject),
                reply: k.reply,
                message_id: k.message_id,
                references: k.references,
            })
        })
        .collect();
    // The CPU part on the blocking pool (hashing, sorting and tree walks over every message).
    let nodes = match tokio::task::spawn_blocking(move || match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(&msgs),
        ThreadAlgorithm::References => references(&msgs),
    })
    .await
    {
        Ok(n) => n,
        Err(_) => return Status::no(Some(tag), "THREAD failed"),
    };
    ctx.data(Data::Thread(nodes));
    Status::ok(Some(tag), "THREAD completed")
}
