//! COPY / MOVE and their UID forms — RFC 9051 §6.4.7, §6.4.8, RFC 6851, COPYUID (RFC 4315).

use imap_proto::{Code, Mailbox, SequenceSet, Status, Tag};

use crate::cmd::{mailbox, seq};
use crate::ctx::{Ctx, store_error};
use crate::state::Selected;

/// A missing target mailbox: `NO [TRYCREATE]` — RFC 9051 §6.4.7.
pub(crate) async fn target(
    ctx: &Ctx,
    tag: &Tag,
    account: store::AccountId,
    name: &Mailbox,
) -> Result<store::MailboxInfo, Status> {
    let name = mailbox::name(ctx, tag, name)?;
    // Only the id, UIDVALIDITY and UIDNEXT are used: no message counts.
    match ctx.server.store.lookup_mailbox(account, &name).await {
        Ok(Some(mb)) => Ok(mb),
        Ok(None) => {
            Err(Status::no(Some(tag.clone()), "no such mailbox").with_code(Code::TryCreate))
        }
        Err(e) => Err(store_error(tag, &e)),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy(
    ctx: &mut Ctx,
    tag: Tag,
    account: store::AccountId,
    sel: &mut Selected,
    uid: bool,
    set: &SequenceSet,
    dest: &Mailbox,
    is_move: bool,
) -> Status {
    if is_move && sel.read_only {
        return Status::no(Some(tag), "mailbox is read-only").with_code(Code::Cannot);
    }
    let targets = match seq::resolve(sel, set, uid) {
        Ok(t) => t,
        Err(why) => return Status::bad(Some(tag), why),
    };
    let dest = match target(ctx, &tag, account, dest).await {
        Ok(mb) => mb,
        Err(s) => return s,
    };
    let uids: Vec<u32> = targets.iter().map(|(_, u)| *u).collect();
    let word = if is_move {
        "MOVE completed"
    } else {
        "COPY completed"
    };
    if uids.is_empty() {
        return Status::ok(Some(tag), word);
    }
    // RFC 6851 §3.3: MOVE is one store transaction (copy, expunge, expunge log), so a crash
    // never leaves the messages in both mailboxes.
    let store = &ctx.server.store;
    let done = if is_move {
        store.move_messages(sel.id, &uids, dest.id).await
    } else {
        store.copy_messages(sel.id, &uids, dest.id).await
    };
    let pairs = match done {
        Ok(p) => p,
        Err(e) => return store_error(&tag, &e),
    };
    let code = match (
        SequenceSet::from_ids(pairs.iter().map(|p| p.0)),
        SequenceSet::from_ids(pairs.iter().map(|p| p.1)),
    ) {
        (Some(source), Some(destination)) => Some(Code::CopyUid {
            uid_validity: dest.uid_validity,
            source,
            destination,
        }),
        _ => None,
    };
    if !is_move {
        let s = Status::ok(Some(tag), word);
        return match code {
            Some(c) => s.with_code(c),
            None => s,
        };
    }
    // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
    if let Some(c) = code {
        ctx.status(Status::ok(None, "moved").with_code(c));
    }
    // The store expunged exactly the source UIDs it moved; the view follows with EXPUNGE
    // (or VANISHED under QRESYNC) for each.
    let mut moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    moved.sort_unstable();
    sel.expunge(ctx, &moved);
    Status::ok(Some(tag), word)
}
