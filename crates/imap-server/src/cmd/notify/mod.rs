//! NOTIFY — RFC 5465: which events a session hears, for which mailboxes, and when.
//!
//! Without NOTIFY a session hears about its selected mailbox only, at the end of commands
//! and during IDLE (`state::sync`). After `NOTIFY SET` it also hears, at any time (§3.1:
//! "the client listens for event notifications all the time (even when no command is in
//! progress)"):
//! - for the selected mailbox, with a SELECTED or SELECTED-DELAYED group: EXISTS and the
//!   requested FETCH of new messages, FETCH FLAGS, and EXPUNGE (SELECTED-DELAYED keeps
//!   expunges for a command that allows them, §6.1.2). Without such a group the selected
//!   mailbox's events wait for the next command, as without NOTIFY (§3.1 "this means that the
//!   client doesn't want to receive any <message-event>s for the currently selected mailbox";
//!   the end-of-command updates IMAP requires are still sent);
//! - for other mailboxes, `* STATUS` after MessageNew / MessageExpunge / FlagChange (§5.1–§5.3:
//!   MESSAGES UIDNEXT UIDVALIDITY UNSEEN, and HIGHESTMODSEQ with CONDSTORE or FlagChange),
//!   one per mailbox and wake-up; `* LIST` after MailboxName (§5.4: `\NonExistent` for a
//!   deleted name, `OLDNAME` for a rename, not for the renamed inferiors) and
//!   SubscriptionChange (§5.5).
//!
//! Events come from the store's change feed, the same one `state::sync` reads: the events of
//! the selected mailbox that must wait are kept in [`NotifyState`] and handed to the next sync
//! first (`User::next_change`); the events of other mailboxes that sync reads are passed here
//! (`NotifyState::note`). A feed that lagged, or more than [`MAX_PENDING`] notifications
//! waiting for a slow reader, ends NOTIFY with `* OK [NOTIFICATIONOVERFLOW]` (§5.8).
//!
//! Deviations, on purpose: the RFC 5465 §5 rule that MessageNew and MessageExpunge come
//! together (and FlagChange only with both) is enforced (BAD) for the selected mailbox, where
//! sequence numbers depend on it; for other mailboxes, where the events only produce STATUS,
//! a single one is accepted (imaptest's `notify` group sets them one at a time). A SELECTED
//! group without FlagChange still gets flag FETCHes (the session's view of the mailbox is
//! kept in step with what it sent). Events the session caused itself are reported too (§5
//! SHOULD NOT: the change feed does not say which session made a change).
//! AnnotationChange, MailboxMetadataChange and ServerMetadataChange (no METADATA or
//! ANNOTATE here) and unknown events are refused with `NO [BADEVENT]` listing what is
//! supported (§3.1).

use std::io;

use imap_proto::{
    Code, Data, FetchAttributes, NotifyEvent, NotifyFilter, NotifySet, SequenceSet, Status,
    StatusItem, Tag,
};
use store::ChangeEvent;
use store::{RecvError, TryRecvError};

use crate::ctx::Ctx;
use crate::state::{self, Selected, State, User};
use crate::wire::{Io, Stop, fill};

mod spec;

pub(crate) use spec::NotifyState;
use spec::*;

/// Whether the session is to hear events between commands.
pub(crate) fn active(state: &State) -> bool {
    match state {
        State::Authenticated(u) | State::Selected(u, _) => u.notify.active(),
        _ => false,
    }
}

/// RFC 5465 §3.1 NOTIFY SET / NOTIFY NONE.
pub(crate) async fn notify(
    ctx: &mut Ctx,
    tag: Tag,
    user: &mut User,
    sel: Option<&Selected>,
    set: Option<NotifySet>,
) -> Status {
    let Some(set) = set else {
        user.notify.spec = None;
        user.notify.pending.clear();
        user.notify.overflowed = false;
        return Status::ok(Some(tag), "NOTIFY completed");
    };
    let mut selected: Option<Option<SelectedEvents>> = None;
    let mut groups = Vec::new();
    let mut unsupported = false;
    let mut names = 0usize;
    for g in set.groups {
        let is_selected = matches!(
            g.filter,
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed
        );
        let mut ev = Events::default();
        let mut fetch = Vec::new();
        for e in &g.events {
            if is_selected && !e.is_message_event() {
                // §6.1: "It is an error to specify other types of events with either the
                // SELECTED or the SELECTED-DELAYED selector."
                return Status::bad(Some(tag), "only message events apply to SELECTED");
            }
            match e {
                NotifyEvent::MessageNew(atts) => {
                    ev.new = true;
                    if !atts.is_empty() {
                        // §8: "The fetch-att list may only be present for the
                        // SELECTED/SELECTED-DELAYED mailbox filter."
                        if !is_selected {
                            return Status::bad(
                                Some(tag),
                                "MessageNew attributes only apply to SELECTED",
                            );
                        }
                        fetch = atts.clone();
                    }
                }
                NotifyEvent::MessageExpunge => ev.expunge = true,
                NotifyEvent::FlagChange => ev.flags = true,
                NotifyEvent::MailboxName => ev.names = true,
                NotifyEvent::SubscriptionChange => ev.subscriptions = true,
                NotifyEvent::AnnotationChange
                | NotifyEvent::MailboxMetadataChange
                | NotifyEvent::ServerMetadataChange
                | NotifyEvent::Other(_) => unsupported = true,
            }
        }
        let subtree = matches!(g.filter, NotifyFilter::Subtree(_));
        let filter = match g.filter {
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => {
                if selected.is_some() {
                    // §6.1: "Only one of the mailbox specifiers affecting the currently
                    // selected mailbox can be specified in any NOTIFY command."
                    return Status::bad(Some(tag), "SELECTED given twice");
                }
                // §5: MessageNew and MessageExpunge together; FlagChange only with both.
                if ev.new != ev.expunge || (ev.flags && !ev.new) {
                    return Status::bad(
                        Some(tag),
                        "MessageNew and MessageExpunge must be given together (and with FlagChange)",
                    );
                }
                selected = Some(ev.new.then(|| SelectedEvents {
                    delayed: g.filter == NotifyFilter::SelectedDelayed,
                    fetch,
                }));
                continue;
            }
            NotifyFilter::Inboxes => Filter::Inboxes,
            NotifyFilter::Personal => Filter::Personal,
            NotifyFilter::Subscribed => Filter::Subscribed,
            NotifyFilter::Subtree(m) | NotifyFilter::Mailboxes(m) => {
                names += m.len();
                // §3.1: names that do not exist (or cannot be decoded) are ignored.
                let decoded: Vec<String> = m
                    .iter()
                    .filter_map(|mb| mb.decode(ctx.utf8).ok())
                    .map(|n| n.trim_end_matches('/').to_string())
                    .collect();
                if subtree {
                    Filter::Subtree(decoded)
                } else {
                    Filter::Mailboxes(decoded)
                }
            }
        };
        groups.push(Group { filter, events: ev });
    }
    if unsupported {
        return Status::no(Some(tag), "unsupported NOTIFY event")
            .with_code(Code::BadEvent(SUPPORTED.map(String::from).to_vec()));
    }
    if names > MAX_NAMES {
        // §3.1: "If the notification would be prohibitively expensive for the server ...
        // the server MAY refuse the command with a tagged NO [NOTIFICATIONOVERFLOW]".
        return Status::no(Some(tag), "too many mailbox names")
            .with_code(Code::NotificationOverflow);
    }
    let list = match ctx.server.store.list_mailboxes(user.account).await {
        Ok(l) => l,
        Err(e) => return crate::ctx::store_error(&tag, &e),
    };
    let subscriptions = match ctx.server.store.list_subscriptions(user.account).await {
        Ok(l) => l.into_iter().collect(),
        Err(e) => return crate::ctx::store_error(&tag, &e),
    };
    let spec = Spec {
        selected: selected.flatten(),
        groups,
        mailboxes: list
            .iter()
            .map(|m| (m.id, (m.name.clone(), m.subscribed)))
            .collect(),
        subscriptions,
        fetched: sel.map(|s| (s.id, s.max_uid())),
        last_rename: None,
    };
    if set.status {
        // §3.1: a STATUS for every watched mailbox but the selected one, before the OK.
        for m in &list {
            let e = spec.events_for(&m.name, m.subscribed);
            if e.messages() && sel.is_none_or(|s| s.id != m.id) {
                ctx.data(Data::Status {
                    mailbox: m.name.clone(),
                    items: status_items(m, ctx.condstore || e.flags),
                });
            }
        }
    }
    user.notify.spec = Some(Box::new(spec));
    user.notify.pending.clear();
    user.notify.overflowed = false;
    Status::ok(Some(tag), "NOTIFY completed")
}

/// The STATUS items of a notification: §5.2/§5.3 ask for MESSAGES and UIDNEXT (and
/// UIDVALIDITY at NOTIFY SET STATUS), §5.1 for UIDVALIDITY and HIGHESTMODSEQ or UNSEEN.
fn status_items(m: &store::MailboxInfo, modseq: bool) -> Vec<StatusItem> {
    let mut items = vec![
        StatusItem::Messages(m.messages),
        StatusItem::UidNext(m.uid_next),
        StatusItem::UidValidity(m.uid_validity),
        StatusItem::Unseen(m.unseen),
    ];
    if modseq {
        items.push(StatusItem::HighestModSeq(m.highest_modseq));
    }
    items
}

/// Sends what is pending: the MessageNew FETCH of new messages of the selected mailbox, the
/// STATUS and LIST notifications of other mailboxes, or the overflow.
async fn flush(ctx: &mut Ctx, user: &mut User, sel: Option<&mut Selected>) {
    if std::mem::take(&mut user.notify.overflowed) {
        // §5.8: "... and behave as if a NOTIFY NONE command had just been received."
        user.notify.spec = None;
        user.notify.pending.clear();
        ctx.status(
            Status::ok(None, "NOTIFY ended: too many events").with_code(Code::NotificationOverflow),
        );
        return;
    }
    let sel_id = sel.as_ref().map(|s| s.id);
    if let Some(sel) = sel {
        fetch_new(ctx, user, sel).await;
    }
    for p in std::mem::take(&mut user.notify.pending) {
        match p {
            // The selected mailbox's changes are told by EXISTS/EXPUNGE/FETCH instead.
            Pending::Status(id, _) if Some(id) == sel_id => {}
            Pending::Status(id, modseq) => match ctx.server.store.mailbox(id).await {
                Ok(m) => ctx.data(Data::Status {
                    items: status_items(&m, modseq || ctx.condstore),
                    mailbox: m.name,
                }),
                // Deleted meanwhile: its LIST (if asked for) says so.
                Err(store::StoreError::NotFound(_)) => {}
                Err(e) => tracing::warn!(error = %e, "imap: NOTIFY status read failed"),
            },
            Pending::List(item) => ctx.data(Data::List(item)),
        }
    }
}

/// §5.2: "an unsolicited EXISTS response, followed by an unsolicited FETCH response
/// containing the information requested by the client".
async fn fetch_new(ctx: &mut Ctx, user: &mut User, sel: &mut Selected) {
    let Some(spec) = user.notify.spec.as_deref_mut() else {
        return;
    };
    let max = sel.max_uid();
    let from = match spec.fetched {
        Some((id, uid)) if id == sel.id => uid,
        // A mailbox selected since: SELECT told the client what it has.
        _ => {
            spec.fetched = Some((sel.id, max));
            return;
        }
    };
    spec.fetched = Some((sel.id, max));
    let Some(atts) = spec.selected.as_ref().map(|s| s.fetch.clone()) else {
        return;
    };
    if atts.is_empty() || max <= from {
        return;
    }
    let Some(set) = SequenceSet::from_ids(sel.uids().iter().copied().filter(|&u| u > from)) else {
        return;
    };
    let Some(tag) = Tag::new("notify") else {
        return;
    };
    // The FETCH responses are what matters; the tagged status is not sent.
    let _ = crate::cmd::fetch::fetch(
        None,
        ctx,
        tag,
        sel,
        true,
        &set,
        &FetchAttributes::List(atts),
        &[],
    )
    .await;
}

/// At the end of every command: the notifications of other mailboxes (and the MessageNew
/// FETCH of the selected one) go out before the tagged reply, after the command's sync.
pub(crate) async fn after_command(ctx: &mut Ctx, state: &mut State) {
    match state {
        State::Authenticated(user) if user.notify.active() => {
            // Nothing syncs in the authenticated state: read the feed here.
            loop {
                match user.changes.try_recv() {
                    Ok(ev) => user.notify.note(ev),
                    Err(TryRecvError::Resync) => user.notify.lost(),
                    Err(_) => break,
                }
            }
            flush(ctx, user, None).await;
        }
        State::Selected(user, sel) if user.notify.active() => flush(ctx, user, Some(sel)).await,
        _ => {}
    }
}

/// One event received while no command runs (between commands, or in IDLE when `idle`).
async fn received(
    ctx: &mut Ctx,
    user: &mut User,
    sel: Option<&mut Selected>,
    ev: Result<ChangeEvent, RecvError>,
    idle: bool,
) {
    let wants_selected = user.notify.spec.as_ref().and_then(|s| s.selected.clone());
    match (ev, sel) {
        (Ok(ev), Some(sel)) if ev.mailbox == sel.id && is_message_change(&ev.change) => {
            match wants_selected {
                // §6.1.1 SELECTED: at once; §6.1.2 SELECTED-DELAYED: expunges wait for a
                // command that allows them (IDLE does).
                Some(s) => state::sync_with(ctx, user, sel, idle || !s.delayed, Some(ev)).await,
                None => user.notify.hold(ev),
            }
            flush(ctx, user, Some(sel)).await;
        }
        (Ok(ev), sel) => {
            user.notify.note(ev);
            flush(ctx, user, sel).await;
        }
        (Err(_), sel) => {
            // Lagged: the selected mailbox is reread at its next sync; NOTIFY overflows.
            if let Some(sel) = sel {
                sel.resync = true;
                if wants_selected.is_some() {
                    state::sync(ctx, user, sel, idle).await;
                }
                user.notify.lost();
                flush(ctx, user, Some(sel)).await;
            } else {
                user.notify.lost();
                flush(ctx, user, None).await;
            }
        }
    }
}

/// IDLE with NOTIFY: RFC 5465 §4 — "while processing any IDLE command, the server MUST send
/// exactly the same events as instructed by the client using the NOTIFY command".
pub(crate) async fn idle_event(
    ctx: &mut Ctx,
    user: &mut User,
    sel: Option<&mut Selected>,
    ev: Result<ChangeEvent, RecvError>,
) {
    received(ctx, user, sel, ev, true).await
}

/// Waits for the next command while sending the notifications that come meanwhile — RFC
/// 5465 §3.1. Like `Io::read_more` (flush, autologout timer, shutdown), plus the change
/// feed. The autologout timer runs from the last input, not from the last notification.
pub(crate) async fn wait(
    io: &mut Io,
    ctx: &mut Ctx,
    state: &mut State,
) -> io::Result<Result<(), Stop>> {
    let deadline = tokio::time::Instant::now() + ctx.server.config.idle_timeout;
    loop {
        let (user, sel) = match state {
            State::Authenticated(u) => (u, None),
            State::Selected(u, s) => (u, Some(&mut **s)),
            _ => return io.read_more(ctx).await,
        };
        if !user.notify.active() {
            return io.read_more(ctx).await;
        }
        io.flush(ctx).await?;
        if io.inbuf.is_empty() {
            // A session waiting for events holds no buffers meanwhile.
            io.inbuf = Vec::new();
            io.conn.shrink();
            ctx.release_buffers();
        }
        enum Ev {
            Input(Result<(), server_kit::LineError>),
            Change(Result<ChangeEvent, RecvError>),
            Bye(&'static str),
        }
        let Io {
            conn,
            inbuf,
            shutdown,
            ..
        } = &mut *io;
        let ev = tokio::select! {
            _ = shutdown.cancelled() => Ev::Bye("server shutting down"),
            _ = tokio::time::sleep_until(deadline) => Ev::Bye("autologout; idle for too long"),
            r = fill(conn, inbuf) => Ev::Input(r),
            c = user.changes.recv() => Ev::Change(c),
        };
        match ev {
            Ev::Bye(text) => {
                ctx.status(Status::bye(text));
                io.flush(ctx).await?;
                return Ok(Err(Stop::Bye));
            }
            Ev::Input(Ok(())) => return Ok(Ok(())),
            Ev::Input(Err(server_kit::LineError::Io(e))) => return Err(e),
            Ev::Input(Err(_)) => return Ok(Err(Stop::Eof)),
            // The account was deleted: the session ends.
            Ev::Change(Err(RecvError::Closed)) => {
                ctx.status(Status::bye(crate::state::ACCOUNT_GONE));
                io.flush(ctx).await?;
                return Ok(Err(Stop::Bye));
            }
            Ev::Change(c) => received(ctx, user, sel, c, false).await,
        }
    }
}
