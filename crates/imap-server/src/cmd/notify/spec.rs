//! NOTIFY's per-session state (RFC 5465): the active `NOTIFY SET` as filters and events, the
//! account's mailboxes and subscriptions as the change feed tells them, and the notifications
//! of other mailboxes waiting to be sent. The command and the sending are in `mod.rs`.

use std::collections::{HashMap, VecDeque};

use imap_proto::{FetchAttribute, ListExtended, ListItem, MailboxAttribute};
use store::TryRecvError;
use store::{Change, ChangeEvent, MailboxId, Uid};

/// Notifications waiting to be sent before NOTIFY gives up with NOTIFICATIONOVERFLOW.
pub(super) const MAX_PENDING: usize = 1000;
/// Selected-mailbox events kept for the next command before the view is reread instead.
pub(super) const MAX_HELD: usize = 10_000;
/// Mailbox names a NOTIFY SET may list (SUBTREE and MAILBOXES together).
pub(super) const MAX_NAMES: usize = 1000;
/// What `BADEVENT` lists: the events supported here (RFC 5465 §3.1).
pub(super) const SUPPORTED: [&str; 5] = [
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
    pub(super) spec: Option<Box<Spec>>,
    /// Events of the selected mailbox read between commands that the client did not ask to
    /// hear then; the next sync takes them first.
    pub(super) held: VecDeque<ChangeEvent>,
    /// `held` overflowed: the next sync must reread the mailbox.
    pub(super) held_lost: bool,
    /// Notifications for other mailboxes, in order, waiting to be sent.
    pub(super) pending: Vec<Pending>,
    /// The change feed lagged (or `pending` grew too long): NOTIFY ends with an overflow.
    pub(super) overflowed: bool,
}

pub(super) enum Pending {
    /// `* STATUS` of a mailbox; `modseq`: with HIGHESTMODSEQ.
    Status(MailboxId, bool),
    List(ListItem),
}

pub(super) struct Spec {
    /// Events for the selected mailbox (§6.1); `None` for none.
    pub(super) selected: Option<SelectedEvents>,
    pub(super) groups: Vec<Group>,
    /// The account's mailboxes (name, subscribed), kept current from the change feed.
    pub(super) mailboxes: HashMap<MailboxId, (String, bool)>,
    /// The subscribed names, kept current from the change feed. Subscriptions are names
    /// (RFC 9051 §6.3.7): they stay when their mailbox is deleted or renamed, and a mailbox
    /// created under a subscribed name is subscribed.
    pub(super) subscriptions: std::collections::HashSet<String>,
    /// The selected mailbox and the highest UID whose MessageNew FETCH is done (or that was
    /// there when the mailbox or NOTIFY was set).
    pub(super) fetched: Option<(MailboxId, Uid)>,
    /// The last rename reported: the renames of its inferiors are not (§5.4).
    pub(super) last_rename: Option<(String, String)>,
}

#[derive(Clone)]
pub(super) struct SelectedEvents {
    /// SELECTED-DELAYED: expunges wait for a command that allows them (§6.1.2).
    pub(super) delayed: bool,
    /// `MessageNew (fetch-att ...)`: what to FETCH for each new message (§5.2).
    pub(super) fetch: Vec<FetchAttribute>,
}

pub(super) struct Group {
    pub(super) filter: Filter,
    pub(super) events: Events,
}

#[derive(Clone, Copy, Default)]
pub(super) struct Events {
    pub(super) new: bool,
    pub(super) expunge: bool,
    pub(super) flags: bool,
    pub(super) names: bool,
    pub(super) subscriptions: bool,
}

impl Events {
    pub(super) fn or(self, o: Events) -> Events {
        Events {
            new: self.new || o.new,
            expunge: self.expunge || o.expunge,
            flags: self.flags || o.flags,
            names: self.names || o.names,
            subscriptions: self.subscriptions || o.subscriptions,
        }
    }

    pub(super) fn messages(self) -> bool {
        self.new || self.expunge || self.flags
    }
}

/// `filter-mailboxes-other` — RFC 5465 §6.2 to §6.6, names decoded to UTF-8.
pub(super) enum Filter {
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

impl Filter {
    pub(super) fn matches(&self, name: &str, subscribed: bool) -> bool {
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
    pub(super) fn events_for(&self, name: &str, subscribed: bool) -> Events {
        self.groups
            .iter()
            .filter(|g| g.filter.matches(name, subscribed))
            .fold(Events::default(), |acc, g| acc.or(g.events))
    }

    pub(super) fn events_of(&self, id: MailboxId) -> Option<(&str, Events)> {
        let (name, subscribed) = self.mailboxes.get(&id)?;
        Some((name, self.events_for(name, *subscribed)))
    }

    /// `* LIST` attributes of `name` as the map knows it: `\Subscribed`, children.
    pub(super) fn list_item(&self, name: &str, mut attributes: Vec<MailboxAttribute>) -> ListItem {
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

pub(super) fn is_message_change(c: &Change) -> bool {
    matches!(
        c,
        Change::NewMessage(_) | Change::FlagsChanged { .. } | Change::Expunged { .. }
    )
}

pub(super) fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(p, _)| p)
}

impl NotifyState {
    pub(crate) fn active(&self) -> bool {
        self.spec.is_some()
    }

    /// The next event the selected mailbox's sync must see before the feed's: those held
    /// back between commands. `Err(Resync)` once if some were dropped.
    pub(crate) fn take_held(&mut self) -> Option<Result<ChangeEvent, TryRecvError>> {
        if std::mem::take(&mut self.held_lost) {
            return Some(Err(TryRecvError::Resync));
        }
        self.held.pop_front().map(Ok)
    }

    pub(super) fn hold(&mut self, ev: ChangeEvent) {
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

    pub(super) fn push(&mut self, p: Pending) {
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
            // The session ends (`state::ACCOUNT_GONE`); nothing to notify.
            Change::AccountDeleted => {}
        }
        for p in out {
            self.push(p);
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
                .map(|i| (mb(i), (format!("box{i}"), false)))
                .chain([(mb(0), ("INBOX".to_string(), true))])
                .collect(),
            subscriptions: ["INBOX".to_string()].into_iter().collect(),
            fetched: None,
            last_rename: None,
        })
    }

    fn mb(number: i64) -> MailboxId {
        MailboxId::new(store::AccountId(1), number)
    }

    fn new_message(number: i64) -> ChangeEvent {
        ChangeEvent {
            mailbox: mb(number),
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
        assert!(matches!(n.take_held(), Some(Err(TryRecvError::Resync))));
        assert!(n.take_held().is_none());
    }
}
