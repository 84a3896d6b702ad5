//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (§6.4.9, RFC 4315 §2.1).

use imap_proto::{Code, SequenceSet, Status, Tag};
use store::{SystemFlags, Uid};

use crate::cmd::seq;
use crate::session::{Ctx, store_error};
use crate::state::Selected;

/// Removes `uids` from the store and the view, sending `* n EXPUNGE` for each with the
/// number it has at that moment (RFC 9051 §7.5.1: later numbers shift down by one).
pub(crate) async fn expunge_uids(
    ctx: &mut Ctx,
    sel: &mut Selected,
    uids: &[Uid],
) -> Result<(), store::StoreError> {
    if uids.is_empty() {
        return Ok(());
    }
    let mut removed = ctx.server.store.expunge(sel.id, uids).await?;
    removed.sort_unstable();
    sel.expunge(ctx, &removed);
    Ok(())
}

pub(crate) async fn expunge(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    only: Option<&SequenceSet>,
) -> Status {
    if sel.read_only {
        return Status::no(Some(tag), "mailbox is read-only").with_code(Code::Cannot);
    }
    let mut candidates: Vec<Uid> = match only {
        Some(set) => match seq::resolve(sel, set, true) {
            Ok(t) => t.into_iter().map(|(_, u)| u).collect(),
            Err(why) => return Status::bad(Some(tag), why),
        },
        None => sel.uids().to_vec(),
    };
    candidates.retain(|u| !sel.gone.contains(u));
    let metas = match ctx.server.store.get_messages(sel.id, &candidates).await {
        Ok(m) => m,
        Err(e) => return store_error(&tag, &e),
    };
    let deleted: Vec<Uid> = metas
        .iter()
        .filter(|m| m.flags.system.contains(SystemFlags::DELETED))
        .map(|m| m.uid)
        .collect();
    match expunge_uids(ctx, sel, &deleted).await {
        Ok(()) => Status::ok(Some(tag), "EXPUNGE completed"),
        Err(e) => store_error(&tag, &e),
    }
}
