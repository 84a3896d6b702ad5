//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (§6.4.9, RFC 4315 §2.1).

use imap_proto::{Code, SequenceSet, Status, Tag};
use store::Uid;

use crate::cmd::seq;
use crate::ctx::{Ctx, store_error};
use crate::state::Selected;

pub(crate) async fn expunge(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    only: Option<&SequenceSet>,
) -> Status {
    if sel.read_only {
        return Status::no(Some(tag), "mailbox is read-only").with_code(Code::Cannot);
    }
    // UID EXPUNGE: only the named messages (RFC 4315 §2.1); EXPUNGE: every one of the
    // mailbox. The store tests \Deleted as it removes: its flags, not the view's, decide (a
    // \Deleted another session took away a moment ago is not expunged).
    let candidates: Option<Vec<Uid>> = match only {
        Some(set) => match seq::resolve(sel, set, true) {
            Ok(t) => Some(t.into_iter().map(|(_, u)| u).collect()),
            Err(why) => return Status::bad(Some(tag), why),
        },
        None => None,
    };
    if candidates.as_ref().is_some_and(Vec::is_empty) {
        return Status::ok(Some(tag), "EXPUNGE completed");
    }
    match ctx
        .server
        .store
        .expunge_deleted(sel.id, candidates.as_deref())
        .await
    {
        Ok(removed) => {
            sel.expunge(ctx, &removed);
            Status::ok(Some(tag), "EXPUNGE completed")
        }
        Err(e) => store_error(&tag, &e),
    }
}
