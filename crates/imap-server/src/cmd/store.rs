//! STORE and UID STORE — RFC 9051 §6.4.6; UNCHANGEDSINCE and MODSEQ in the replies — RFC 7162
//! §3.1.3.

use imap_proto::{Code, Data, FetchItem, Flag, SequenceSet, Status, StoreAction, StoreKind, Tag};
use store::FlagOp;

use crate::cmd::seq;
use crate::ctx::{Ctx, store_error};
use crate::state::{self, Selected, to_store_flags};

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
        // RFC 7162 §3.1: STORE UNCHANGEDSINCE is a CONDSTORE-enabling command.
        state::enable_condstore(ctx, Some(sel));
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
    if op != FlagOp::Remove && flags.iter().any(|f| matches!(f, Flag::Keyword(_))) {
        // RFC 9051 §2.3.2: the server may refuse new keywords; a mailbox holds at most
        // `max_keywords` (PERMANENTFLAGS then lacks `\*`).
        let in_use = sel.view.keywords_in_use();
        let new = crate::keywords::new_keywords(flags, &in_use);
        if !new.is_empty() && in_use.len() + new.len() > ctx.server.config.max_keywords {
            return Status::no(Some(tag), "too many keywords in this mailbox")
                .with_code(Code::Limit);
        }
    }
    if ctx.condstore
        && !action.silent
        && let Err(e) = sel.ensure_details(ctx).await
    {
        // The MODSEQ of the messages left unchanged is their own (RFC 7162 §3.1.3).
        return store_error(&tag, &e);
    }
    let uids: Vec<u32> = targets.iter().map(|(_, u)| *u).collect();
    let store_flags = to_store_flags(flags);
    let (changed, modified) = if uids.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let r = match unchanged_since {
            None => ctx
                .server
                .store
                .store_flags(sel.id, &uids, op, &store_flags)
                .await
                .map(|changed| store::ConditionalStore {
                    changed,
                    failed: Vec::new(),
                }),
            // RFC 7162 §3.1.3: tested and applied by the store in one transaction.
            Some(n) => {
                ctx.server
                    .store
                    .store_flags_unchanged_since(sel.id, &uids, op, &store_flags, n)
                    .await
            }
        };
        match r {
            Ok(c) => (c.changed, c.failed),
            Err(e) => return store_error(&tag, &e),
        }
    };
    for (u, f, modseq) in &changed {
        sel.view.set_flags(*u, f, *modseq);
    }
    if ctx.condstore {
        // RFC 7162 §3.1.3: with CONDSTORE on, each message whose flags changed is reported
        // with its new MODSEQ even with .SILENT; without .SILENT every message that passed
        // the UNCHANGEDSINCE test is, changed or not. Those that failed are not.
        let changed_uids: std::collections::HashSet<u32> =
            changed.iter().map(|(u, _, _)| *u).collect();
        for (seqno, u) in &targets {
            if sel.gone.contains(u) || modified.binary_search(u).is_ok() {
                continue;
            }
            if action.silent && !changed_uids.contains(u) {
                continue;
            }
            if let Some(m) = sel.view.get(*u) {
                let mut items = Vec::with_capacity(3);
                if uid {
                    items.push(FetchItem::Uid(*u));
                }
                items.push(FetchItem::ModSeq(m.modseq));
                if !action.silent {
                    items.push(FetchItem::Flags(sel.flags_of(ctx.rev2, &m)));
                }
                ctx.data(Data::Fetch { seq: *seqno, items });
            }
        }
    } else if !action.silent {
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
    if !modified.is_empty() {
        // RFC 7162 §3.1.3: the messages that failed the test, as UIDs for UID STORE and as
        // sequence numbers otherwise.
        let ids = targets
            .iter()
            .filter(|(_, u)| modified.binary_search(u).is_ok())
            .map(|(s, u)| if uid { *u } else { *s });
        let mut ids: Vec<u32> = ids.collect();
        ids.sort_unstable();
        if let Some(set) = SequenceSet::from_ids(ids) {
            return Status::ok(Some(tag), "conditional STORE failed for some messages")
                .with_code(Code::Modified(set));
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
