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

use std::collections::{HashMap, VecDeque};
use std::io;

use imap_proto::{
    Code, Data, FetchAttribute, FetchAttributes, ListExtended, ListItem, MailboxAttribute,
    NotifyEvent, NotifyFilter, NotifySet, SequenceSet, Status, StatusItem, Tag,
};
use store::{Change, ChangeEvent, MailboxId, Uid};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::ctx::Ctx;
use crate::state::{self, Selected, State, User};
use crate::wire::{Io, Stop, fill};

/// Notifications waiting to be sent before NOTIFY gives up with NOTIFICATIONOVERFLOW.
const MAX_PENDING: usize = 1000;
/// Selected-mailbox events kept for the next command before the view is reread instead.
const MAX_HELD: usize = 10_000;
/// Mailbox names a NOTIFY SET may list (SUBTREE and MAILBOXES together).
const MAX_NAMES: usize = 1000;
/// What `BADEVENT` lists: the events supported here (RFC 5465 §3.1).
const SUPPORTED: [&str; 5] = [
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
];

/// The session's NOTIFY state; lives in [`User`] (NOTIFY is a command of the authenticated
/// state and lasts until the next NOTIFY or the end of the connection, §3.1).
#[derive(Default)]
pub(crate) struct NotifyState {
    /// The active `NOTIFY SET`; `None` before NOTIFY, after NOTIFY NONE or an overflow.
    spec: Option<Box<Spec>>,
    /// Events of the selected mailbox read between commands that the client did not ask to
    /// hear then; the next sync takes them first.
    held: VecDeque<ChangeEvent>,
    /// `held` overflowed: the next sync must reread the mailbox.
    held_lost: bool,
    /// Notifications for other mailboxes, in order, waiting to be sent.
    pending: Vec<Pending>,
    /// The change feed lagged (or `pending` grew too long): NOTIFY ends with an overflow.
    overflowed: bool,
}

enum Pending {
    /// `* STATUS` of a mailbox; `modseq`: with HIGHESTMODSEQ.
    Status(MailboxId, bool),
    List(ListItem),
}

struct Spec {
    /// Events for the selected mailbox (§6.1); `None` for none.
    selected: Option<SelectedEvents>,
    groups: Vec<Group>,
    /// The account's mailboxes (name, subscribed), kept current from the change feed.
    mailboxes: HashMap<MailboxId, (String, bool)>,
    /// The subscribed names, kept current from the change feed. Subscriptions are names
    /// (RFC 9051 §6.3.7): they stay when their mailbox is deleted or renamed, and a mailbox
    /// created under a subscribed name is subscribed.
    subscriptions: std::collections::HashSet<String>,
    /// The selected mailbox and the highest UID whose MessageNew FETCH is done (or that was
    /// there when the mailbox or NOTIFY was set).
    fetched: Option<(MailboxId, Uid)>,
    /// The last rename reported: the renames of its inferiors are not (§5.4).
    last_rename: Option<(String, String)>,
}

#[derive(Clone)]
struct SelectedEvents {
    /// SELECTED-DELAYED: expunges wait for a command that allows them (§6.1.2).
    delayed: bool,
    /// `MessageNew (fetch-att ...)`: what to FETCH for each new message (§5.2).
    fetch: Vec<FetchAttribute>,
}

struct Group {
    filter: Filter,
    events: Events,
}

#[derive(Clone, Copy, Default)]
struct Events {
    new: bool,
    expunge: bool,
    flags: bool,
    names: bool,
    subscriptions: bool,
}

impl Events {
    fn or(self, o: Events) -> Events {
        Events {
            new: self.new || o.new,
            expunge: self.expunge || o.expunge,
            flags: self.flags || o.flags,
            names: self.names || o.names,
            subscriptions: self.subscriptions || o.subscriptions,
        }
    }

    fn messages(self) -> bool {
        self.new || self.expunge || self.flags
    }
}

/// `filter-mailboxes-other` — RFC 5465 §6.2 to §6.6, names decoded to UTF-8.
enum Filter {
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

impl Filter {
    fn matches(&self, name: &str, subscribed: bool) -> bool {
        match self {
            // §6.3: mail is delivered to INBOX only here.
            Filter::Inboxes => name == store::INBOX,
            Filter::Personal => true,
            Filter::Subscribed => subscribed,
            Filter::Subtree(roots) => roots.iter().any(|r| {
                name == r
                    || name
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }),
            // §6.6: no wildcard expansion.
            Filter::Mailboxes(names) => names.iter().any(|n| n == name),
        }
    }
}

impl Spec {
    /// The events the client wants for the mailbox `name` (§6: several groups may apply).
    fn events_for(&self, name: &str, subscribed: bool) -> Events {
        self.groups
            .iter()
            .filter(|g| g.filter.matches(name, subscribed))
            .fold(Events::default(), |acc, g| acc.or(g.events))
    }

    fn events_of(&self, id: MailboxId) -> Option<(&str, Events)> {
        let (name, subscribed) = self.mailboxes.get(&id)?;
        Some((name, self.events_for(name, *subscribed)))
    }

    /// `* LIST` attributes of `name` as the map knows it: `\Subscribed`, children.
    fn list_item(&self, name: &str, mut attributes: Vec<MailboxAttribute>) -> ListItem {
        if !attributes.contains(&MailboxAttribute::NonExistent)
            && !self.mailboxes.values().any(|(n, _)| n == name)
        {
            // A subscription whose mailbox is gone (RFC 5258 §3.4 `\NonExistent`).
            attributes.push(MailboxAttribute::NonExistent);
            if self.subscriptions.contains(name) {
                attributes.push(MailboxAttribute::Subscribed);
            }
        } else if !attributes.contains(&MailboxAttribute::NonExistent) {
            if self.subscriptions.contains(name) {
                attributes.push(MailboxAttribute::Subscribed);
            }
            let prefix = format!("{name}/");
            attributes.push(
                if self.mailboxes.values().any(|(n, _)| n.starts_with(&prefix)) {
                    MailboxAttribute::HasChildren
                } else {
                    MailboxAttribute::HasNoChildren
                },
            );
        }
        ListItem {
            attributes,
            delimiter: Some('/'),
            name: name.to_string(),
            extended: vec![],
        }
    }
}

fn is_message_change(c: &Change) -> bool {
    matches!(
        c,
        Change::NewMessage(_) | Change::FlagsChanged { .. } | Change::Expunged { .. }
    )
}

fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(p, _)| p)
}

impl NotifyState {
    pub(crate) fn active(&self) -> bool {
        self.spec.is_some()
    }

    /// The next event the selected mailbox's sync must see before the feed's: those held
    /// back between commands. `Err(Lagged)` once if some were dropped.
    pub(crate) fn take_held(&mut self) -> Option<Result<ChangeEvent, TryRecvError>> {
        if std::mem::take(&mut self.held_lost) {
            return Some(Err(TryRecvError::Lagged(0)));
        }
        self.held.pop_front().map(Ok)
    }

    fn hold(&mut self, ev: ChangeEvent) {
        if self.held.len() >= MAX_HELD {
            self.held.clear();
            self.held_lost = true;
        } else {
            self.held.push_back(ev);
        }
    }

    /// The change feed lagged: events were lost.
    pub(crate) fn lost(&mut self) {
        if self.spec.is_some() {
            self.overflowed = true;
        }
    }

    fn push(&mut self, p: Pending) {
        if let Pending::Status(id, modseq) = &p
            && let Some(Pending::Status(_, m)) = self
                .pending
                .iter_mut()
                .find(|q| matches!(q, Pending::Status(i, _) if i == id))
        {
            *m |= *modseq;
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.overflowed = true;
        } else {
            self.pending.push(p);
        }
    }

    /// An event of a mailbox other than the selected one (or a mailbox-level event of the
    /// selected one), read by a sync or between commands: turned into the notifications the
    /// client asked for, or dropped.
    pub(crate) fn note(&mut self, ev: ChangeEvent) {
        let Some(spec) = self.spec.as_deref_mut() else {
            return;
        };
        let mut out = Vec::new();
        match ev.change {
            Change::NewMessage(_) | Change::Expunged { .. } | Change::FlagsChanged { .. } => {
                if let Some((_, e)) = spec.events_of(ev.mailbox) {
                    let wanted = match ev.change {
                        Change::NewMessage(_) => e.new,
                        Change::Expunged { .. } => e.expunge,
                        _ => e.flags,
                    };
                    if wanted {
                        out.push(Pending::Status(ev.mailbox, e.flags));
                    }
                }
            }
            Change::MailboxCreated { name } => {
                let subscribed = spec.subscriptions.contains(&name);
                spec.mailboxes
                    .insert(ev.mailbox, (name.clone(), subscribed));
                if spec.events_for(&name, subscribed).names {
                    out.push(Pending::List(spec.list_item(&name, vec![])));
                    if let Some(p) =
                        parent(&name).filter(|p| spec.mailboxes.values().any(|(n, _)| n == p))
                    {
                        out.push(Pending::List(spec.list_item(p, vec![])));
                    }
                }
            }
            Change::MailboxDeleted { name } => {
                let subscribed = spec.mailboxes.remove(&ev.mailbox).is_some_and(|(_, s)| s);
                if spec.events_for(&name, subscribed).names {
                    out.push(Pending::List(
                        spec.list_item(&name, vec![MailboxAttribute::NonExistent]),
                    ));
                    if let Some(p) =
                        parent(&name).filter(|p| spec.mailboxes.values().any(|(n, _)| n == p))
                    {
                        out.push(Pending::List(spec.list_item(p, vec![])));
                    }
                }
            }
            Change::MailboxRenamed { old_name, new_name } => {
                // The subscription stays with the old name; the new one is subscribed only if
                // that name was.
                let was = spec.subscriptions.contains(&old_name);
                let now = spec.subscriptions.contains(&new_name);
                if let Some(entry) = spec.mailboxes.get_mut(&ev.mailbox) {
                    *entry = (new_name.clone(), now);
                }
                let subscribed = was || now;
                // The inferiors move with it (their own events follow): rename them now so
                // the LIST below sees the children where they are going.
                let (old_prefix, new_prefix) = (format!("{old_name}/"), format!("{new_name}/"));
                for (name, sub) in spec.mailboxes.values_mut() {
                    if let Some(rest) = name.strip_prefix(&old_prefix) {
                        *name = format!("{new_prefix}{rest}");
                        *sub = spec.subscriptions.contains(name.as_str());
                    }
                }
                // §5.4: "When a mailbox is renamed, its children are renamed too. No
                // additional MailboxName events are sent for children in this case."
                let inferior = spec.last_rename.as_ref().is_some_and(|(o, n)| {
                    old_name.starts_with(&format!("{o}/")) && new_name.starts_with(&format!("{n}/"))
                });
                if !inferior {
                    spec.last_rename = Some((old_name.clone(), new_name.clone()));
                    let e = spec
                        .events_for(&old_name, subscribed)
                        .or(spec.events_for(&new_name, subscribed));
                    if e.names {
                        let mut item = spec.list_item(&new_name, vec![]);
                        item.extended.push(ListExtended::OldName(old_name));
                        out.push(Pending::List(item));
                    }
                }
            }
            Change::SubscriptionChanged { name, subscribed } => {
                if subscribed {
                    spec.subscriptions.insert(name.clone());
                } else {
                    spec.subscriptions.remove(&name);
                }
                for entry in spec.mailboxes.values_mut().filter(|(n, _)| *n == name) {
                    entry.1 = subscribed;
                }
                // The filter is evaluated both before and after (SUBSCRIBED, §6.4).
                let e = spec
                    .events_for(&name, subscribed)
                    .or(spec.events_for(&name, !subscribed));
                if e.subscriptions {
                    out.push(Pending::List(spec.list_item(&name, vec![])));
                }
            }
        }
        for p in out {
            self.push(p);
        }
    }
}

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
                    Err(TryRecvError::Lagged(_)) => user.notify.lost(),
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
            // The store dropped the feed: nothing more will come.
            Ev::Change(Err(RecvError::Closed)) => return io.read_more(ctx).await,
            Ev::Change(c) => received(ctx, user, sel, c, false).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(groups: Vec<Group>) -> Box<Spec> {
        Box::new(Spec {
            selected: None,
            groups,
            mailboxes: (1..=MAX_PENDING as i64 + 1)
                .map(|i| (i, (format!("box{i}"), false)))
                .chain([(0, ("INBOX".to_string(), true))])
                .collect(),
            subscriptions: ["INBOX".to_string()].into_iter().collect(),
            fetched: None,
            last_rename: None,
        })
    }

    fn new_message(mailbox: MailboxId) -> ChangeEvent {
        ChangeEvent {
            account: 1,
            mailbox,
            change: Change::NewMessage(store::MessageSummary {
                uid: 1,
                size: 1,
                internal_date: 0,
                flags: Default::default(),
                modseq: 1,
            }),
        }
    }

    #[test]
    fn filters() {
        let sub = Filter::Subtree(vec!["Lists".into()]);
        assert!(sub.matches("Lists", false) && sub.matches("Lists/a/b", false));
        assert!(!sub.matches("Listsx", false) && !sub.matches("INBOX", false));
        let exact = Filter::Mailboxes(vec!["a*".into()]);
        assert!(exact.matches("a*", false) && !exact.matches("ab", false));
        assert!(Filter::Inboxes.matches("INBOX", false) && !Filter::Inboxes.matches("Sent", true));
        assert!(Filter::Subscribed.matches("x", true) && !Filter::Subscribed.matches("x", false));
    }

    #[test]
    fn statuses_coalesce_and_overflow() {
        let mut n = NotifyState {
            spec: Some(spec(vec![Group {
                filter: Filter::Personal,
                events: Events {
                    new: true,
                    ..Default::default()
                },
            }])),
            ..Default::default()
        };
        for _ in 0..5 {
            n.note(new_message(0));
        }
        assert_eq!(n.pending.len(), 1, "one STATUS per mailbox and wake-up");
        assert!(!n.overflowed);
        for i in 1..=MAX_PENDING as i64 {
            n.note(new_message(i));
        }
        // §5.8: past the bound, NOTIFY overflows instead of growing without end.
        assert!(n.overflowed);
        assert_eq!(n.pending.len(), MAX_PENDING);
        // Events of mailboxes nobody watches are dropped.
        let mut quiet = NotifyState {
            spec: Some(spec(vec![Group {
                filter: Filter::Inboxes,
                events: Events {
                    new: true,
                    ..Default::default()
                },
            }])),
            ..Default::default()
        };
        quiet.note(new_message(3));
        assert!(quiet.pending.is_empty());
    }

    #[test]
    fn held_events_bounded() {
        let mut n = NotifyState::default();
        for _ in 0..MAX_HELD {
            n.hold(new_message(0));
        }
        assert!(matches!(n.take_held(), Some(Ok(_))));
        n.hold(new_message(0));
        n.hold(new_message(0));
        // Too many: dropped, and the sync is told to reread the mailbox.
        assert!(matches!(n.take_held(), Some(Err(TryRecvError::Lagged(_)))));
        assert!(n.take_held().is_none());
    }
}
