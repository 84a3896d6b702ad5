//! SELECT / EXAMINE (RFC 9051 §6.3.2, §6.3.3) with CONDSTORE and QRESYNC (RFC 7162 §3.1.8,
//! §3.2.5), CLOSE (§6.4.1), UNSELECT (§6.4.2, RFC 3691).

use std::collections::BTreeSet;

use imap_proto::{
    Code, Data, ListItem, Mailbox, MailboxAttribute, QResync, SelectParam, SequenceSet, Status, Tag,
};
use store::{MailboxInfo, SystemFlags, Uid};

use crate::cmd::mailbox::name;
use crate::ctx::{Ctx, store_error};
use crate::keywords::KnownKeywords;
use crate::recent::RecentSet;
use crate::state::{self, Selected, User};
use crate::view::View;

/// Opens `mailbox`; on success the view and the tagged OK. `previous` is the mailbox selected
/// until now, if any.
pub(crate) async fn select(
    ctx: &mut Ctx,
    tag: Tag,
    user: &mut User,
    mailbox: &Mailbox,
    params: &[SelectParam],
    read_only: bool,
    previous: Option<&mut Selected>,
) -> Result<(Box<Selected>, Status), Status> {
    let mut qresync = None;
    for p in params {
        match p {
            // RFC 7162 §3.1.8: SELECT/EXAMINE (CONDSTORE) is a CONDSTORE-enabling command.
            SelectParam::CondStore => ctx.condstore = true,
            // RFC 7162 §3.2.5: only after ENABLE QRESYNC, else BAD.
            SelectParam::QResync(q) if ctx.qresync => qresync = Some(q),
            SelectParam::QResync(_) => {
                return Err(Status::bad(Some(tag), "ENABLE QRESYNC first"));
            }
            // RFC 4466 §2.1: unknown parameters → BAD.
            SelectParam::Other { .. } => {
                return Err(Status::bad(
                    Some(tag),
                    "SELECT parameters are not supported",
                ));
            }
        }
    }
    let name = name(ctx, &tag, mailbox)?;
    // With CONDSTORE the mailbox is read afresh, so that HIGHESTMODSEQ and the view come from
    // one snapshot (RFC 7162 §3.1.2.1: every change up to it is in the view); the reused view
    // may still miss a change whose event is on its way.
    let reuse = !ctx.condstore;
    let (info, mut view) = match previous.filter(|p| reuse && !p.resync) {
        Some(prev) => reselect(ctx, &tag, user, &name, prev).await?,
        None => open(ctx, &tag, user, &name).await?,
    };
    // RFC 7162 §3.2.5: with a UIDVALIDITY that does not match, QRESYNC is ignored.
    let resync = match qresync.filter(|q| q.uid_validity == info.uid_validity) {
        Some(q) => Some(qresync_changes(ctx, &tag, &info, &mut view, q).await?),
        None => None,
    };
    let uid_next = info.uid_next.max(view.max_uid().saturating_add(1));
    // RFC 9051 §7.3.5: FLAGS lists the keywords in use too (`keywords.rs` keeps it current).
    let known = KnownKeywords::new(
        view.keywords_in_use(),
        read_only,
        ctx.server.config.max_keywords,
    );
    ctx.data(known.flags_data());
    ctx.data(Data::Exists(view.len() as u32));
    let mut sel = Box::new(Selected {
        id: info.id,
        read_only,
        view,
        gone: BTreeSet::new(),
        recent: RecentSet::default(),
        resync: false,
        saved: Vec::new(),
        contexts: Default::default(),
        save_dates: Default::default(),
    });
    if !ctx.rev2 {
        // RFC 3501 §2.3.2 / §6.3.1: this session is the first to see the messages above the
        // mark; RECENT is required for rev1 clients.
        sel.take_recent(ctx, 0).await;
        ctx.data(Data::Recent(sel.recent.count_in(sel.uids())));
        // RFC 3501 §6.3.1: the first unseen message, for rev1 clients.
        if let Some(pos) = (0..sel.view.len()).position(|i| {
            sel.view
                .at(i)
                .is_some_and(|m| !m.system.contains(SystemFlags::SEEN))
        }) {
            ctx.status(Status::ok(None, "first unseen").with_code(Code::Unseen(pos as u32 + 1)));
        }
    }
    ctx.status(Status::ok(None, "UIDs valid").with_code(Code::UidValidity(info.uid_validity)));
    ctx.status(Status::ok(None, "predicted next UID").with_code(Code::UidNext(uid_next)));
    ctx.status(known.permanent_flags_status());
    ctx.keywords = Some(known);
    if ctx.condstore {
        // RFC 7162 §3.1.2.1: the mailbox's HIGHESTMODSEQ as of the snapshot the view is.
        ctx.status(
            Status::ok(None, "highest").with_code(Code::HighestModSeq(sel.view.highest_modseq())),
        );
    }
    if let Some((vanished, changed)) = resync {
        // RFC 7162 §3.2.5.1: what the client missed — the UIDs expunged since its MODSEQ,
        // then the messages changed since, with their flags and MODSEQ.
        if let Some(uids) = vanished {
            ctx.data(Data::Vanished {
                earlier: true,
                uids,
            });
        }
        for uid in changed {
            if let Some(data) = sel.flags_response(ctx, uid) {
                ctx.data(data);
            }
        }
    }
    if ctx.rev2 {
        // RFC 9051 §6.3.2: a LIST response with the mailbox name as the server spells it.
        ctx.data(Data::List(ListItem {
            attributes: Vec::<MailboxAttribute>::new(),
            delimiter: Some('/'),
            name: info.name.clone(),
            extended: vec![],
        }));
    }
    let (code, text) = if read_only {
        (Code::ReadOnly, "EXAMINE completed")
    } else {
        (Code::ReadWrite, "SELECT completed")
    };
    Ok((sel, Status::ok(Some(tag), text).with_code(code)))
}

/// RFC 7162 §3.2.5: the UIDs expunged since the client's MODSEQ (from the store's expunge log)
/// and the UIDs of the messages changed since, both limited to the client's known UIDs when it
/// sent them. Reads the view's details, for each message's own MODSEQ. The sequence match data
/// is not needed: the expunge log is exact as far back as it reaches. When it was pruned past
/// the client's MODSEQ, the client gets a full resync instead (§3.2.5.2): every UID it may know
/// that is not in the mailbox is reported vanished.
async fn qresync_changes(
    ctx: &Ctx,
    tag: &Tag,
    info: &MailboxInfo,
    view: &mut View,
    q: &QResync,
) -> Result<(Option<SequenceSet>, Vec<Uid>), Status> {
    let store = &ctx.server.store;
    let mailbox = info.id;
    if !view.has_details() {
        let all = store
            .list_summaries(mailbox)
            .await
            .map_err(|e| store_error(tag, &e))?;
        view.fill_details(&all);
    }
    let expunged = store
        .vanished_since(mailbox, q.mod_seq)
        .await
        .map_err(|e| store_error(tag, &e))?;
    let known = |u: Uid| {
        q.known_uids
            .as_ref()
            .is_none_or(|k| k.contains(u, u32::MAX))
    };
    let vanished = match expunged {
        // A message expunged after the view was read is still in it: it is announced later,
        // by VANISHED, when the change feed tells this session.
        Some(expunged) => SequenceSet::from_ids(
            expunged
                .into_iter()
                .filter(|u| known(*u) && view.index_of(*u).is_none()),
        ),
        None => {
            // The client may know any UID below UIDNEXT (all of them without known-uids).
            let last = info.uid_next.max(view.max_uid().saturating_add(1)) - 1;
            let ranges: Vec<(u32, u32)> = match &q.known_uids {
                Some(k) => k
                    .resolve(last)
                    .filter(|r| *r.start() <= last)
                    .map(|r| (*r.start(), (*r.end()).min(last)))
                    .collect(),
                None => vec![(1, last)],
            };
            SequenceSet::from_ranges(view.absent(ranges))
        }
    };
    let changed = (0..view.len())
        .filter_map(|i| view.at(i))
        .filter(|m| m.modseq > q.mod_seq && known(m.uid))
        .map(|m| m.uid)
        .collect();
    Ok((vanished, changed))
}

/// The mailbox and every message without its body, from one snapshot of the store's covering
/// index (UIDNEXT and the view agree).
async fn open(
    ctx: &Ctx,
    tag: &Tag,
    user: &mut User,
    name: &str,
) -> Result<(MailboxInfo, View), Status> {
    // Events from before the snapshot below are already reflected in it.
    user.drain();
    let opened = ctx
        .server
        .store
        .open_mailbox(user.account, name)
        .await
        .map_err(|e| store_error(tag, &e))?;
    match opened {
        Some(store::OpenedMailbox { info, messages }) => {
            let view = View::with_flags(messages, info.highest_modseq);
            Ok((info, view))
        }
        None => Err(no_such_mailbox(tag)),
    }
}

/// SELECT of the mailbox already selected — clients refresh this way — keeps the session's
/// view, which the change feed has kept current, instead of reading every message again.
async fn reselect(
    ctx: &Ctx,
    tag: &Tag,
    user: &mut User,
    name: &str,
    prev: &mut Selected,
) -> Result<(MailboxInfo, View), Status> {
    let info = ctx
        .server
        .store
        .lookup_mailbox(user.account, name)
        .await
        .map_err(|e| store_error(tag, &e))?;
    match info {
        Some(info) if info.id == prev.id && state::absorb(user, prev) => {
            Ok((info, std::mem::take(&mut prev.view)))
        }
        Some(_) => open(ctx, tag, user, name).await,
        None => Err(no_such_mailbox(tag)),
    }
}

fn no_such_mailbox(tag: &Tag) -> Status {
    // RFC 5530 §3.
    Status::no(Some(tag.clone()), "no such mailbox").with_code(Code::NonExistent)
}

/// RFC 9051 §6.4.1: CLOSE removes `\Deleted` messages silently (not in EXAMINE).
pub(crate) async fn close(ctx: &Ctx, tag: Tag, sel: &Selected) -> Status {
    // The store tests \\Deleted as it removes (a \\Deleted another session removed a moment
    // ago must not be expunged); nothing is sent about it.
    if !sel.read_only
        && let Err(e) = ctx.server.store.expunge_deleted(sel.id, None).await
    {
        return store_error(&tag, &e);
    }
    Status::ok(Some(tag), "CLOSE completed")
}
