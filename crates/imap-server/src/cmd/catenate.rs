//! CATENATE — RFC 4469: APPEND of a message put together from literals and the octets of
//! messages or parts already stored, named by IMAP URLs (RFC 5092).
//!
//! URLs are read as RFC 4469 §3 says: relative ones against `imap://user@server/` (and the
//! selected mailbox in the selected state); absolute ones are accepted when they name the
//! logged-in user's mailboxes, or carry a valid URLAUTH (RFC 4467) as URLFETCH would accept
//! it. A URL naming nothing fails the APPEND with `NO [BADURL url]` (§4.1); a message over
//! the APPEND limit with `NO [TOOBIG]` (§4.2). `TEXT` parts may be literal8: they are stored
//! as sent, since the store keeps binary content (RFC 3516 §4.4 asks for `UNKNOWN-CTE` only
//! where a mailbox cannot).

use imap_proto::{CatPart, Code, ImapUrl, Status, Tag, UrlBase};
use store::MailboxId;

use crate::cmd::imapurl::{self, Budget};
use crate::cmd::urlauth;
use crate::ctx::{Ctx, store_error};
use crate::state::User;

/// Builds one CATENATE message. `budget` bounds what the whole APPEND reads and builds
/// (see [`Budget`]); over it, or over the APPEND limit, the answer is `NO [TOOBIG]`
/// (RFC 4469 §4.2).
pub(crate) async fn build(
    ctx: &Ctx,
    tag: &Tag,
    user: &User,
    selected: Option<MailboxId>,
    parts: Vec<CatPart>,
    budget: &mut Budget,
) -> Result<Vec<u8>, Status> {
    let limit = ctx.server.config.max_message_size;
    let too_big =
        || Status::no(Some(tag.clone()), "CATENATE result is too large").with_code(Code::TooBig);
    let mut base: Option<UrlBase> = None;
    let mut out = Vec::new();
    for part in parts {
        let data = match part {
            CatPart::Text { data, .. } => data,
            CatPart::Url(raw) => {
                if base.is_none() {
                    base = Some(url_base(ctx, tag, user, selected).await?);
                }
                match read_url(ctx, user, &raw, base.as_ref(), budget).await {
                    Ok(Some(d)) => d,
                    Ok(None) if budget.exhausted => return Err(too_big()),
                    Ok(None) => {
                        // RFC 4469 §4.1: the first URL that failed.
                        return Err(Status::no(Some(tag.clone()), "CATENATE URL names nothing")
                            .with_code(Code::BadUrl(raw)));
                    }
                    Err(e) => return Err(store_error(tag, &e)),
                }
            }
        };
        if (out.len() + data.len()) as u64 > limit || !budget.charge(data.len()) {
            return Err(too_big());
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// RFC 4469 §3: `imap://user@server/`, with the selected mailbox when there is one. The
/// mailbox's name is read only when a URL needs a base (the session keeps only its id).
async fn url_base(
    ctx: &Ctx,
    tag: &Tag,
    user: &User,
    selected: Option<MailboxId>,
) -> Result<UrlBase, Status> {
    let mailbox = match selected {
        Some(id) => match ctx.server.store.mailbox(id).await {
            Ok(info) => Some(info.name),
            Err(store::StoreError::NotFound(_)) => None,
            Err(e) => return Err(store_error(tag, &e)),
        },
        None => None,
    };
    Ok(UrlBase {
        user: Some(user.address.clone()),
        host: None,
        mailbox,
    })
}

/// The octets one URL names, or `None` when it is malformed, names another user's data
/// without a valid URLAUTH, or names nothing.
async fn read_url(
    ctx: &Ctx,
    user: &User,
    raw: &str,
    base: Option<&UrlBase>,
    budget: &mut Budget,
) -> store::StoreResult<Option<Vec<u8>>> {
    let Ok(url) = ImapUrl::parse_relative(raw, base) else {
        return Ok(None);
    };
    let account = if url.urlauth.is_some() {
        match urlauth::authorize(ctx, user, raw, &url).await? {
            Some(owner) => owner,
            None => return Ok(None),
        }
    } else if url.user.is_none()
        || imapurl::same_user(url.user.as_deref(), url.host.as_deref(), &user.address)
    {
        user.account
    } else {
        return Ok(None);
    };
    imapurl::read(ctx, account, &url, budget).await
}
