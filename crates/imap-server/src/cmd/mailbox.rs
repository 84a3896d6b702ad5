//! Mailbox management — RFC 9051 §6.3.4 to §6.3.11: CREATE, DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE, STATUS. Name rules (`..`, control characters, length) are the store's
//! (store-sqlite `names.rs`); its `Invalid` becomes `NO [CANNOT]`.

use imap_proto::{Atom, Code, Data, Mailbox, Status, StatusAttribute, StatusItem, Tag};
use store::{AccountId, MailboxInfo, SystemFlags};

use crate::ctx::{Ctx, store_error};

/// The UTF-8 name of a mailbox argument: modified UTF-7 for rev1 clients, UTF-8 once
/// IMAP4rev2 or UTF8=ACCEPT is enabled (RFC 9051 §5.1, RFC 3501 §5.1.3, RFC 6855 §3).
pub(crate) fn name(ctx: &Ctx, tag: &Tag, mailbox: &Mailbox) -> Result<String, Status> {
    let bad = || Status::no(Some(tag.clone()), "invalid mailbox name").with_code(Code::Cannot);
    let name = mailbox.decode(ctx.utf8).map_err(|_| bad())?;
    if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(name)
}

/// Looks a mailbox up; `NO [NONEXISTENT]` when missing — RFC 5530 §3. The message counts
/// are not read (0): only STATUS needs them, through [`find_counted`].
pub(crate) async fn find(
    ctx: &Ctx,
    tag: &Tag,
    account: AccountId,
    name: &str,
) -> Result<MailboxInfo, Status> {
    found(tag, ctx.server.store.lookup_mailbox(account, name).await)
}

/// [`find`] with `messages`, `unseen` and `size` counted.
async fn find_counted(
    ctx: &Ctx,
    tag: &Tag,
    account: AccountId,
    name: &str,
) -> Result<MailboxInfo, Status> {
    found(tag, ctx.server.store.find_mailbox(account, name).await)
}

fn found(tag: &Tag, r: store::StoreResult<Option<MailboxInfo>>) -> Result<MailboxInfo, Status> {
    match r {
        Ok(Some(mb)) => Ok(mb),
        Ok(None) => {
            Err(Status::no(Some(tag.clone()), "no such mailbox").with_code(Code::NonExistent))
        }
        Err(e) => Err(store_error(tag, &e)),
    }
}

/// RFC 9051 §6.3.4: a trailing delimiter only says the name will have inferiors.
pub(crate) async fn create(
    ctx: &Ctx,
    tag: Tag,
    account: AccountId,
    mailbox: &Mailbox,
    special_use: &[Atom],
) -> Status {
    let name = match name(ctx, &tag, mailbox) {
        Ok(n) => n,
        Err(s) => return s,
    };
    let name = name.strip_suffix('/').unwrap_or(&name);
    if !special_use.is_empty() {
        // RFC 6154 §3: the store cannot assign special uses to new mailboxes.
        return Status::no(Some(tag), "special-use attributes cannot be set")
            .with_code(Code::UseAttr);
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Status::no(Some(tag), "INBOX exists").with_code(Code::AlreadyExists);
    }
    match ctx.server.store.create_mailbox(account, name).await {
        Ok(_) => Status::ok(Some(tag), "CREATE completed"),
        Err(e) => store_error(&tag, &e),
    }
}

/// RFC 9051 §6.3.5: INBOX cannot be deleted; DELETE never removes inferiors. A mailbox
/// with inferiors is refused with `NO [HASCHILDREN]` — the choice RFC 9051 §6.3.5 offers
/// beside turning it into a `\Noselect` name, which the store cannot represent. Names that
/// exist only as parents of others (shown `\Noselect`) are not mailboxes: NO [NONEXISTENT].
pub(crate) async fn delete(ctx: &Ctx, tag: Tag, account: AccountId, mailbox: &Mailbox) -> Status {
    let mb = match name(ctx, &tag, mailbox) {
        Ok(n) => match find(ctx, &tag, account, &n).await {
            Ok(mb) => mb,
            Err(s) => return s,
        },
        Err(s) => return s,
    };
    if mb.name == store::INBOX {
        return Status::no(Some(tag), "INBOX cannot be deleted").with_code(Code::Cannot);
    }
    let prefix = format!("{}/", mb.name);
    match ctx.server.store.lookup_mailboxes(account).await {
        Ok(all) if all.iter().any(|m| m.name.starts_with(&prefix)) => {
            return Status::no(Some(tag), "mailbox has inferiors; delete them first")
                .with_code(Code::HasChildren);
        }
        Ok(_) => {}
        Err(e) => return store_error(&tag, &e),
    }
    match ctx.server.store.delete_mailbox(mb.id).await {
        Ok(()) => Status::ok(Some(tag), "DELETE completed"),
        Err(e) => store_error(&tag, &e),
    }
}

/// RFC 9051 §6.3.6: inferiors move with the mailbox (the store does it); renaming INBOX
/// moves its messages to a new mailbox. Subscriptions stay with the old names (§6.3.6 does not
/// move them and §6.3.7 forbids dropping them unasked; Dovecot does the same): clients that
/// want the new name subscribed say so, as they do after a RENAME.
pub(crate) async fn rename(
    ctx: &Ctx,
    tag: Tag,
    account: AccountId,
    from: &Mailbox,
    to: &Mailbox,
) -> Status {
    let (from, to) = match (name(ctx, &tag, from), name(ctx, &tag, to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(s), _) | (_, Err(s)) => return s,
    };
    let mb = match find(ctx, &tag, account, &from).await {
        Ok(mb) => mb,
        Err(s) => return s,
    };
    match ctx.server.store.find_mailbox(account, &to).await {
        Ok(Some(_)) => {
            return Status::no(Some(tag), "target exists").with_code(Code::AlreadyExists);
        }
        Ok(None) => {}
        Err(e) => return store_error(&tag, &e),
    }
    match ctx.server.store.rename_mailbox(mb.id, &to).await {
        Ok(()) => Status::ok(Some(tag), "RENAME completed"),
        Err(e) => store_error(&tag, &e),
    }
}

/// RFC 9051 §6.3.7 / §6.3.8. Subscribing to a missing name is refused; unsubscribing is not.
pub(crate) async fn subscribe(
    ctx: &Ctx,
    tag: Tag,
    account: AccountId,
    mailbox: &Mailbox,
    on: bool,
) -> Status {
    let name = match name(ctx, &tag, mailbox) {
        Ok(n) => n,
        Err(s) => return s,
    };
    if on && let Err(s) = find(ctx, &tag, account, &name).await {
        return s;
    }
    match ctx.server.store.set_subscribed(account, &name, on).await {
        Ok(()) => Status::ok(
            Some(tag),
            if on {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            },
        ),
        Err(store::StoreError::NotFound(_)) if !on => {
            Status::ok(Some(tag), "UNSUBSCRIBE completed")
        }
        Err(e) => store_error(&tag, &e),
    }
}

/// The STATUS items of one mailbox (shared with LIST RETURN (STATUS), RFC 5819).
pub(crate) async fn status_items(
    ctx: &Ctx,
    mb: &MailboxInfo,
    attributes: &[StatusAttribute],
) -> Result<Vec<StatusItem>, store::StoreError> {
    let mut items = Vec::new();
    for a in attributes {
        items.push(match a {
            StatusAttribute::Messages => StatusItem::Messages(mb.messages),
            StatusAttribute::UidNext => StatusItem::UidNext(mb.uid_next),
            StatusAttribute::UidValidity => StatusItem::UidValidity(mb.uid_validity),
            StatusAttribute::Unseen => StatusItem::Unseen(mb.unseen),
            StatusAttribute::Size => StatusItem::Size(mb.size),
            // RFC 3501 §6.3.10: the messages no session (of any process) has claimed as
            // recent yet.
            StatusAttribute::Recent => {
                let mark = if mb.messages == 0 {
                    0
                } else {
                    ctx.server.store.recent_mark(mb.id).await?
                };
                let n = if mark == 0 || mb.messages == 0 {
                    mb.messages
                } else {
                    ctx.server.store.count_messages(mb.id, mark, None).await?
                };
                StatusItem::Recent(n)
            }
            StatusAttribute::HighestModSeq => StatusItem::HighestModSeq(mb.highest_modseq),
            StatusAttribute::Deleted => StatusItem::Deleted(
                ctx.server
                    .store
                    .count_messages(mb.id, 0, Some(SystemFlags::DELETED))
                    .await?,
            ),
        });
    }
    Ok(items)
}

/// RFC 9051 §6.3.11
pub(crate) async fn status(
    ctx: &mut Ctx,
    tag: Tag,
    account: AccountId,
    mailbox: &Mailbox,
    attributes: &[StatusAttribute],
) -> Status {
    let mb = match name(ctx, &tag, mailbox) {
        Ok(n) => match find_counted(ctx, &tag, account, &n).await {
            Ok(mb) => mb,
            Err(s) => return s,
        },
        Err(s) => return s,
    };
    match status_items(ctx, &mb, attributes).await {
        Ok(items) => {
            ctx.data(Data::Status {
                mailbox: mb.name,
                items,
            });
            Status::ok(Some(tag), "STATUS completed")
        }
        Err(e) => store_error(&tag, &e),
    }
}
