//! NOTIFY — RFC 5465 §8. Only the syntax is checked here; which events go with which
//! mailbox filter (RFC 5465 §5, §6.1) is the session's decision, answered BAD or
//! NO [BADEVENT].

use super::fetch::{FetchAttribute, fetch_att};
use super::{CommandBody, Cursor, PResult};
use crate::types::{Atom, Mailbox};

/// `notify-set = "SET" [status-indicator] SP event-groups` — RFC 5465 §8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `status-indicator = SP "STATUS"`: send STATUS for the watched mailboxes now.
    pub status: bool,
    pub groups: Vec<EventGroup>,
}

/// `event-group = "(" filter-mailboxes SP events ")"` — RFC 5465 §8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    pub filter: NotifyFilter,
    /// `events = ( "(" event *(SP event) ")" ) / "NONE"`; empty for NONE.
    pub events: Vec<NotifyEvent>,
}

/// `filter-mailboxes` — RFC 5465 §6, §8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// `"subtree" SP one-or-more-mailbox`.
    Subtree(Vec<Mailbox>),
    /// `"mailboxes" SP one-or-more-mailbox`.
    Mailboxes(Vec<Mailbox>),
}

/// `event = message-event / mailbox-event / user-event / event-ext` — RFC 5465 §8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// `"MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]`.
    MessageNew(Vec<FetchAttribute>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
    /// `event-ext = atom`.
    Other(Atom),
}

impl NotifyEvent {
    /// The event's name as RFC 5465 §8 spells it (for `BADEVENT`).
    pub fn name(&self) -> &str {
        match self {
            NotifyEvent::MessageNew(_) => "MessageNew",
            NotifyEvent::MessageExpunge => "MessageExpunge",
            NotifyEvent::FlagChange => "FlagChange",
            NotifyEvent::AnnotationChange => "AnnotationChange",
            NotifyEvent::MailboxName => "MailboxName",
            NotifyEvent::SubscriptionChange => "SubscriptionChange",
            NotifyEvent::MailboxMetadataChange => "MailboxMetadataChange",
            NotifyEvent::ServerMetadataChange => "ServerMetadataChange",
            NotifyEvent::Other(a) => a.as_str(),
        }
    }

    /// `message-event` — RFC 5465 §8.
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            NotifyEvent::MessageNew(_)
                | NotifyEvent::MessageExpunge
                | NotifyEvent::FlagChange
                | NotifyEvent::AnnotationChange
        )
    }
}

/// `notify = "NOTIFY" SP (notify-set / notify-none)`; `notify-none = "NONE"` — RFC 5465 §8.
pub(crate) fn notify(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    if c.eat_keyword("NONE") {
        return Ok(CommandBody::Notify(None));
    }
    c.keyword("SET", "expected SET or NONE")?;
    c.sp()?;
    let status = c.eat_keyword("STATUS");
    if status {
        c.sp()?;
    }
    let mut groups = vec![event_group(c)?];
    while c.eat(b' ') {
        groups.push(event_group(c)?);
    }
    Ok(CommandBody::Notify(Some(NotifySet { status, groups })))
}

/// `event-group = "(" filter-mailboxes SP events ")"` — RFC 5465 §8.
fn event_group(c: &mut Cursor<'_>) -> PResult<EventGroup> {
    c.expect(b'(', "expected an event group")?;
    let name = c
        .take_while(|b| b.is_ascii_alphabetic() || b == b'-')
        .to_ascii_uppercase();
    let filter = match name.as_slice() {
        b"SELECTED" => NotifyFilter::Selected,
        b"SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
        b"INBOXES" => NotifyFilter::Inboxes,
        b"PERSONAL" => NotifyFilter::Personal,
        b"SUBSCRIBED" => NotifyFilter::Subscribed,
        b"SUBTREE" => {
            c.sp()?;
            NotifyFilter::Subtree(one_or_more_mailbox(c)?)
        }
        b"MAILBOXES" => {
            c.sp()?;
            NotifyFilter::Mailboxes(one_or_more_mailbox(c)?)
        }
        _ => return Err("unknown mailbox filter"),
    };
    c.sp()?;
    let events = if c.eat_keyword("NONE") {
        Vec::new()
    } else {
        c.paren_list(event)?
    };
    c.expect(b')', "expected ')' after the events")?;
    Ok(EventGroup { filter, events })
}

/// `one-or-more-mailbox = mailbox / many-mailboxes`;
/// `many-mailboxes = "(" mailbox *(SP mailbox) ")"` — RFC 5465 §8.
fn one_or_more_mailbox(c: &mut Cursor<'_>) -> PResult<Vec<Mailbox>> {
    if c.peek() == Some(b'(') {
        c.paren_list(|c| c.mailbox())
    } else {
        Ok(vec![c.mailbox()?])
    }
}

/// `event` — RFC 5465 §8.
fn event(c: &mut Cursor<'_>) -> PResult<NotifyEvent> {
    let name = c.atom()?;
    let is = |s: &str| name.eq_ignore_case(s);
    Ok(if is("MessageNew") {
        let mut atts = Vec::new();
        if c.rest().starts_with(b" (") {
            c.sp()?;
            atts = c.paren_list(fetch_att)?;
        }
        NotifyEvent::MessageNew(atts)
    } else if is("MessageExpunge") {
        NotifyEvent::MessageExpunge
    } else if is("FlagChange") {
        NotifyEvent::FlagChange
    } else if is("AnnotationChange") {
        NotifyEvent::AnnotationChange
    } else if is("MailboxName") {
        NotifyEvent::MailboxName
    } else if is("SubscriptionChange") {
        NotifyEvent::SubscriptionChange
    } else if is("MailboxMetadataChange") {
        NotifyEvent::MailboxMetadataChange
    } else if is("ServerMetadataChange") {
        NotifyEvent::ServerMetadataChange
    } else {
        NotifyEvent::Other(name)
    })
}
