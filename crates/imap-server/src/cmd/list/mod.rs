//! LIST (RFC 9051 §6.3.9 with LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE
//! RFC 6154, CHILDREN RFC 3348) and LSUB (RFC 3501 §6.3.9).
//!
//! The names LIST can return are the mailboxes, the subscriptions (which need not exist,
//! RFC 9051 §6.3.7) and the levels of hierarchy above both. Each is matched once against the
//! patterns (so a name matching two patterns is returned once, RFC 5258 §3), in INBOX-first
//! name order; the work is (names × patterns), each match linear in the pattern
//! ([`pattern`]), and nothing is counted unless LIST-STATUS asks.
//!
//! A level of hierarchy that is not a mailbox itself is returned when the patterns reach it
//! but not a mailbox below it (`LIST "" %` with only `foo/bar`: `foo` as `\NonExistent` or,
//! to a plain IMAP4rev1 LIST, `\Noselect` — RFC 3501 §6.3.8). The same rule over
//! subscriptions gives LSUB's `\Noselect` parents (RFC 3501 §6.3.9) and, with
//! `RECURSIVEMATCH`, `CHILDINFO ("SUBSCRIBED")` (RFC 5258 §3.5): a name that is not itself
//! subscribed is returned when it has a subscribed descendant that no pattern matches; a
//! subscribed one carries CHILDINFO when it has any subscribed descendant.

mod pattern;

use std::collections::{BTreeMap, HashSet};

use imap_proto::{
    Data, ListExtended, ListItem, ListReturnOption, ListSelectOption, Mailbox, MailboxAttribute,
    Status, Tag,
};
use store::{AccountId, MailboxInfo, SpecialUse};

use crate::ctx::{Ctx, store_error};
pub(crate) use pattern::Pattern;

/// The hierarchy delimiter.
pub(crate) const DELIM: char = '/';

fn special(su: SpecialUse) -> MailboxAttribute {
    match su {
        SpecialUse::Sent => MailboxAttribute::Sent,
        SpecialUse::Drafts => MailboxAttribute::Drafts,
        SpecialUse::Trash => MailboxAttribute::Trash,
        SpecialUse::Junk => MailboxAttribute::Junk,
        SpecialUse::Archive => MailboxAttribute::Archive,
    }
}

/// A name LIST may return.
#[derive(Default)]
struct Node<'a> {
    mailbox: Option<&'a MailboxInfo>,
    subscribed: bool,
}

/// The superior names of `name`, outermost first: `a/b/c` → `a`, `a/b`.
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIM).map(move |(i, _)| &name[..i])
}

/// What the command asks for.
struct Request {
    lsub: bool,
    only_subscribed: bool,
    only_special: bool,
    recursive: bool,
    show_subscribed: bool,
    /// `\NonExistent` (IMAP4rev2, extended LIST) rather than `\Noselect` (RFC 3501).
    nonexistent: bool,
}

/// `LIST [selection] reference patterns [RETURN (...)]`, or LSUB.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn list(
    ctx: &mut Ctx,
    tag: Tag,
    account: AccountId,
    selection: &[ListSelectOption],
    reference: &Mailbox,
    patterns: &[String],
    return_opts: &[ListReturnOption],
    lsub: bool,
) -> Status {
    let mut req = Request {
        lsub,
        only_subscribed: false,
        only_special: false,
        recursive: false,
        show_subscribed: false,
        nonexistent: ctx.rev2
            || !selection.is_empty()
            || !return_opts.is_empty()
            || patterns.len() > 1,
    };
    for s in selection {
        match s {
            ListSelectOption::Subscribed => req.only_subscribed = true,
            ListSelectOption::SpecialUse => req.only_special = true,
            ListSelectOption::RecursiveMatch => req.recursive = true,
            // RFC 5258 §3: no remote mailboxes here.
            ListSelectOption::Remote => {}
            ListSelectOption::Other(_) => {
                return Status::bad(Some(tag), "unknown LIST selection option");
            }
        }
    }
    req.show_subscribed = req.only_subscribed;
    let mut status_attrs = None;
    for r in return_opts {
        match r {
            ListReturnOption::Subscribed => req.show_subscribed = true,
            ListReturnOption::Children | ListReturnOption::SpecialUse => {}
            ListReturnOption::Status(a) => status_attrs = Some(a.clone()),
            ListReturnOption::Other(_) => {
                return Status::bad(Some(tag), "unknown LIST return option");
            }
        }
    }
    let Ok(reference) = reference.decode(ctx.utf8) else {
        return Status::bad(Some(tag), "invalid reference name");
    };
    let mailboxes = match ctx.server.store.lookup_mailboxes(account).await {
        Ok(m) => m,
        Err(e) => return store_error(&tag, &e),
    };
    let subscriptions = if req.lsub || req.show_subscribed {
        match ctx.server.store.list_subscriptions(account).await {
            Ok(s) => s,
            Err(e) => return store_error(&tag, &e),
        }
    } else {
        Vec::new()
    };
    // Every name, with its levels of hierarchy.
    let mut nodes: BTreeMap<&str, Node<'_>> = BTreeMap::new();
    for mb in &mailboxes {
        nodes.entry(&mb.name).or_default().mailbox = Some(mb);
    }
    for s in &subscriptions {
        nodes.entry(s).or_default().subscribed = true;
    }
    let named: Vec<&str> = nodes.keys().copied().collect();
    for name in named {
        for p in parents(name) {
            nodes.entry(p).or_default();
        }
    }
    let longest = nodes.keys().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut pats = Vec::new();
    for raw in patterns {
        let Ok(pattern) = Mailbox::new(raw).decode(ctx.utf8) else {
            continue;
        };
        if pattern.is_empty() && !req.lsub {
            // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and root.
            ctx.data(Data::List(item(
                vec![MailboxAttribute::NoSelect],
                String::new(),
                vec![],
            )));
            continue;
        }
        // RFC 9051 §6.3.9: the reference is prepended (our names have no leading `/`).
        pats.push(Pattern::new(&format!("{reference}{pattern}"), longest));
    }
    if pats.is_empty() {
        return done(tag, req.lsub);
    }
    let matched: HashSet<&str> = nodes
        .keys()
        .copied()
        .filter(|n| pats.iter().any(|p| p.matches(n)))
        .collect();
    // The levels of hierarchy above mailboxes; above subscriptions; above the ones of either
    // that no pattern reaches.
    let mut has_children = HashSet::new();
    let mut subscribed_below = HashSet::new();
    let mut hidden_mailbox_below = HashSet::new();
    let mut hidden_subscription_below = HashSet::new();
    for (name, node) in &nodes {
        let hidden = !matched.contains(name);
        for p in parents(name) {
            if node.mailbox.is_some() {
                has_children.insert(p);
                if hidden {
                    hidden_mailbox_below.insert(p);
                }
            }
            if node.subscribed {
                subscribed_below.insert(p);
                if hidden {
                    hidden_subscription_below.insert(p);
                }
            }
        }
    }
    let inbox = nodes.get_key_value(store::INBOX);
    let ordered = inbox
        .into_iter()
        .chain(nodes.iter().filter(|(n, _)| **n != store::INBOX));
    for (&name, node) in ordered {
        if !matched.contains(name) {
            continue;
        }
        let exists = node.mailbox.is_some();
        let below = |set: &HashSet<&str>| set.contains(name);
        let mut extended = vec![];
        let mut attrs = vec![];
        let show = if req.lsub {
            if node.subscribed {
                if !exists {
                    // A subscription whose mailbox is gone cannot be selected.
                    attrs.push(MailboxAttribute::NoSelect);
                }
                true
            } else if below(&hidden_subscription_below) {
                // RFC 3501 §6.3.9: an unsubscribed parent of subscriptions `%` stops above.
                attrs.push(MailboxAttribute::NoSelect);
                true
            } else {
                false
            }
        } else if req.only_subscribed {
            let childinfo = req.recursive
                && (node.subscribed && below(&subscribed_below)
                    || below(&hidden_subscription_below));
            if childinfo {
                extended.push(ListExtended::ChildInfo(vec!["SUBSCRIBED".into()]));
            }
            node.subscribed || childinfo
        } else {
            exists || below(&hidden_mailbox_below)
        };
        if !show || (req.only_special && node.mailbox.and_then(|m| m.special_use).is_none()) {
            continue;
        }
        if !exists && !req.lsub {
            // RFC 5258 §3: \NonExistent implies \Noselect.
            attrs.push(if req.nonexistent {
                MailboxAttribute::NonExistent
            } else {
                MailboxAttribute::NoSelect
            });
        }
        // RFC 3348 / RFC 5258 §4: whether a mailbox exists below.
        attrs.push(if below(&has_children) {
            MailboxAttribute::HasChildren
        } else {
            MailboxAttribute::HasNoChildren
        });
        if req.show_subscribed && node.subscribed && !req.lsub {
            attrs.push(MailboxAttribute::Subscribed);
        }
        // RFC 6154 §2: special-use attributes may always be returned.
        if let Some(su) = node.mailbox.and_then(|m| m.special_use) {
            attrs.push(special(su));
        }
        let li = item(attrs, name.to_string(), extended);
        ctx.data(if req.lsub {
            Data::Lsub(li)
        } else {
            Data::List(li)
        });
        if let (Some(sa), Some(mb)) = (&status_attrs, node.mailbox) {
            // RFC 5819 §2: a STATUS response after the mailbox's LIST response; the counts
            // are read for the mailboxes listed only.
            if let Ok(mb) = ctx.server.store.mailbox(mb.id).await
                && let Ok(items) = crate::cmd::mailbox::status_items(ctx, &mb, sa).await
            {
                ctx.data(Data::Status {
                    mailbox: mb.name.clone(),
                    items,
                });
            }
        }
    }
    done(tag, req.lsub)
}

fn item(attributes: Vec<MailboxAttribute>, name: String, extended: Vec<ListExtended>) -> ListItem {
    ListItem {
        attributes,
        delimiter: Some(DELIM),
        name,
        extended,
    }
}

fn done(tag: Tag, lsub: bool) -> Status {
    Status::ok(
        Some(tag),
        if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        },
    )
}
