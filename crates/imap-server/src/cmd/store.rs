//! STORE and UID STORE — RFC 9051 §6.4.6.

use imap_proto::{Code, Data, FetchItem, Flag, SequenceSet, Status, StoreAction, StoreKind, Tag};
use store::FlagOp;

use crate::cmd::seq;
use crate::session::{Ctx, store_error};
use crate::state::{Selected, to_store_flags};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn store(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    set: &SequenceSet,
    unchanged_since: Option<u64>,
    action: StoreAction,
    flags: &[Flag],
) -> Status {
    if unchanged_since.is_some() {
        return Status::bad(Some(tag), "UNCHANGEDSINCE is not supported");
    }
    if sel.read_only {
        return Status::no(Some(tag), "mailbox is read-only").with_code(Code::Cannot);
    }
    let targets = match seq::resolve(sel, set, uid) {
        Ok(t) => t,
        Err(why) => return Status::bad(Some(tag), why),
    };
    let op = match action.kind {
        StoreKind::Replace => FlagOp::Replace,
        StoreKind::Add => FlagOp::Add,
        StoreKind::Remove => FlagOp::Remove,
    };
    let uids: Vec<u32> = targets.iter().map(|(_, u)| *u).collect();
    let changed = if uids.is_empty() {
        Vec::new()
    } else {
        match ctx
            .server
            .store
            .store_flags(sel.id, &uids, op, &to_store_flags(flags))
            .await
        {
            Ok(c) => c,
            Err(e) => return store_error(&tag, &e),
        }
    };
    for (u, f, modseq) in &changed {
        sel.view.set_flags(*u, f, *modseq);
    }
    if !action.silent {
        // RFC 9051 §6.4.6: the new flags of every message named, changed or not, as the view
        // now has them (the unchanged ones' flags are already what the client was told).
        for (seqno, u) in &targets {
            if sel.gone.contains(u) {
                continue;
            }
            if let Some(m) = sel.view.get(*u) {
                let mut items = Vec::with_capacity(2);
                if uid {
                    items.push(FetchItem::Uid(*u));
                }
                items.push(FetchItem::Flags(sel.flags_of(ctx.rev2, &m)));
                ctx.data(Data::Fetch { seq: *seqno, items });
            }
        }
    }
    Status::ok(
        Some(tag),
        if uid {
            "UID STORE completed"
        } else {
            "STORE completed"
        },
    )
}
