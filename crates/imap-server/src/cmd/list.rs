//! LIST (RFC 9051 §6.3.9 with LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE
//! RFC 6154, CHILDREN RFC 3348) and LSUB (RFC 3501 §6.3.9).

use imap_proto::{
    Data, ListItem, ListReturnOption, ListSelectOption, Mailbox, MailboxAttribute, Status, Tag,
};
use store::{AccountId, MailboxInfo, SpecialUse};

use crate::session::{Ctx, store_error};

/// The hierarchy delimiter.
const DELIM: char = '/';

/// RFC 9051 §6.3.9: `*` matches anything, `%` anything but the delimiter.
pub(crate) fn matches(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => {
            (0..=name.len()).any(|i| matches(rest, name.get(i..).unwrap_or_default()))
        }
        Some(('%', rest)) => {
            let stop = name.iter().position(|&c| c == DELIM).unwrap_or(name.len());
            (0..=stop).any(|i| matches(rest, name.get(i..).unwrap_or_default()))
        }
        Some((p, rest)) => name
            .split_first()
            .is_some_and(|(n, nrest)| n == p && matches(rest, nrest)),
    }
}

/// Matching with INBOX case-insensitive (RFC 9051 §5.1).
fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let mut n: Vec<char> = name.chars().collect();
    if matches(&p, &n) {
        return true;
    }
    // `inbox` in any case matches INBOX.
    if name == store::INBOX || name.starts_with("INBOX/") {
        let upper: Vec<char> = pattern
            .chars()
            .take(5)
            .flat_map(char::to_uppercase)
            .collect();
        if upper.iter().collect::<String>() == "INBOX" {
            n.truncate(n.len());
            let p2: Vec<char> = "INBOX".chars().chain(pattern.chars().skip(5)).collect();
            return matches(&p2, &n);
        }
    }
    false
}

fn special(su: SpecialUse) -> MailboxAttribute {
    match su {
        SpecialUse::Sent => MailboxAttribute::Sent,
        SpecialUse::Drafts => MailboxAttribute::Drafts,
        SpecialUse::Trash => MailboxAttribute::Trash,
        SpecialUse::Junk => MailboxAttribute::Junk,
        SpecialUse::Archive => MailboxAttribute::Archive,
    }
}

/// The LIST attributes of `mb` among `all`.
fn attributes(mb: &MailboxInfo, all: &[MailboxInfo], subscribed: bool) -> Vec<MailboxAttribute> {
    let prefix = format!("{}{DELIM}", mb.name);
    let children = all.iter().any(|m| m.name.starts_with(&prefix));
    let mut attrs = vec![if children {
        MailboxAttribute::HasChildren
    } else {
        MailboxAttribute::HasNoChildren
    }];
    if subscribed && mb.subscribed {
        attrs.push(MailboxAttribute::Subscribed);
    }
    // RFC 6154 §2: special-use attributes may always be returned.
    if let Some(su) = mb.special_use {
        attrs.push(special(su));
    }
    attrs
}

/// `LIST [selection] reference patterns [RETURN (...)]`.
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
    let mut only_subscribed = lsub;
    let mut only_special = false;
    for s in selection {
        match s {
            ListSelectOption::Subscribed => only_subscribed = true,
            ListSelectOption::SpecialUse => only_special = true,
            // RFC 5258 §3: no remote mailboxes here; RECURSIVEMATCH changes nothing without
            // CHILDINFO answers.
            ListSelectOption::Remote | ListSelectOption::RecursiveMatch => {}
            ListSelectOption::Other(_) => {
                return Status::bad(Some(tag), "unknown LIST selection option");
            }
        }
    }
    let mut show_subscribed = only_subscribed;
    let mut status_attrs = None;
    for r in return_opts {
        match r {
            ListReturnOption::Subscribed => show_subscribed = true,
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
    let all = match ctx.server.store.list_mailboxes(account).await {
        Ok(all) => all,
        Err(e) => return store_error(&tag, &e),
    };
    let item = |attributes, name: String| ListItem {
        attributes,
        delimiter: Some(DELIM),
        name,
        extended: vec![],
    };
    for raw in patterns {
        let Ok(pattern) = Mailbox::new(raw).decode(ctx.utf8) else {
            continue;
        };
        if pattern.is_empty() && !lsub {
            // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and root.
            ctx.data(Data::List(item(
                vec![MailboxAttribute::NoSelect],
                String::new(),
            )));
            continue;
        }
        // RFC 9051 §6.3.9: the reference is prepended (our names have no leading `/`).
        let full = format!("{reference}{pattern}");
        for mb in &all {
            if !name_matches(&full, &mb.name)
                || (only_subscribed && !mb.subscribed)
                || (only_special && mb.special_use.is_none())
            {
                continue;
            }
            let attrs = attributes(mb, &all, show_subscribed);
            let li = item(attrs, mb.name.clone());
            ctx.data(if lsub { Data::Lsub(li) } else { Data::List(li) });
            if let Some(sa) = &status_attrs {
                // RFC 5819 §2: a STATUS response after the mailbox's LIST response.
                if let Ok(items) = crate::cmd::mailbox::status_items(ctx, mb, sa).await {
                    ctx.data(Data::Status {
                        mailbox: mb.name.clone(),
                        items,
                    });
                }
            }
        }
    }
    Status::ok(
        Some(tag),
        if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let m = |p: &str, n: &str| name_matches(p, n);
        assert!(m("*", "a/b/c"));
        assert!(m("%", "Sent"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a*c", "a/b/c"));
        assert!(m("inbox", "INBOX"));
        assert!(!m("Sen", "Sent"));
        assert!(m("S%t", "Sent"));
    }
}
