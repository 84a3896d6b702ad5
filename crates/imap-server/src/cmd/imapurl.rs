//! What an IMAP URL (RFC 5092) names, read from the store: shared by CATENATE (RFC 4469 §3)
//! and URLFETCH (RFC 4467 §7). A URL names one message or one part of one; its octets are
//! those FETCH `BODY.PEEK[section]<partial>` returns (RFC 4469 §3), never setting `\Seen`.

use imap_proto::{ImapUrl, Section};
use store::{AccountId, MailboxInfo, StoreResult};

use crate::ctx::Ctx;
use crate::mime;

/// How many octets of stored messages one command may read through URLs. A short URL can
/// name a large message (or one octet of one: the message is read whole all the same), so a
/// command of many URLs is bounded by what it could have sent itself: the command size limit.
pub(crate) struct Budget {
    left: u64,
    /// A read went over the budget: the command fails (TOOBIG, LIMIT).
    pub exhausted: bool,
}

impl Budget {
    pub(crate) fn new(octets: u64) -> Budget {
        Budget {
            left: octets,
            exhausted: false,
        }
    }

    /// Takes `n` octets; false (and `exhausted`) when there are not that many left.
    pub(crate) fn charge(&mut self, n: usize) -> bool {
        match self.left.checked_sub(n as u64) {
            Some(left) if !self.exhausted => {
                self.left = left;
                true
            }
            _ => {
                self.exhausted = true;
                false
            }
        }
    }
}

/// Whether the URL's `user` (and `host`) name the account `address`: the address itself
/// (`imap://a%40d.test@host/`, or with the `@` left unencoded) or its local part with the
/// domain as the URL's host (`imap://a@d.test/`, as clients that know the domain write it).
pub(crate) fn same_user(user: Option<&str>, host: Option<&str>, address: &str) -> bool {
    let Some(user) = user else {
        return false;
    };
    if user.eq_ignore_ascii_case(address) {
        return true;
    }
    match (address.rsplit_once('@'), host) {
        (Some((local, domain)), Some(host)) => {
            let host = host.split(':').next().unwrap_or(host);
            local.eq_ignore_ascii_case(user) && domain.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// The account the URL's user names (RFC 4467 §7: URLFETCH "executes with the access of the
/// userid in the server component of the URL"): the logged-in one, or another local user.
pub(crate) async fn owner(
    ctx: &Ctx,
    url: &ImapUrl,
    me: (AccountId, &str),
) -> StoreResult<Option<AccountId>> {
    if same_user(url.user.as_deref(), url.host.as_deref(), me.1) {
        return Ok(Some(me.0));
    }
    let Some(user) = url.user.as_deref() else {
        return Ok(None);
    };
    let mut candidates = vec![user.to_string()];
    if !user.contains('@')
        && let Some(host) = url.host.as_deref()
    {
        candidates.push(format!("{user}@{}", host.split(':').next().unwrap_or(host)));
    }
    for c in candidates {
        let Ok(address) = mail_types::Address::parse(&c) else {
            continue;
        };
        if let Some(rec) = ctx.server.store.find_user(&address).await? {
            return Ok(Some(rec.id));
        }
    }
    Ok(None)
}

/// The mailbox a URL names in `account`, if it exists and its UIDVALIDITY is the URL's
/// (RFC 5092 §6: a URL with another UIDVALIDITY names nothing).
pub(crate) async fn mailbox(
    ctx: &Ctx,
    account: AccountId,
    url: &ImapUrl,
) -> StoreResult<Option<MailboxInfo>> {
    let mb = ctx
        .server
        .store
        .lookup_mailbox(account, &url.mailbox)
        .await?;
    Ok(mb.filter(|m| url.uid_validity.is_none_or(|v| v == m.uid_validity)))
}

/// The stored message the URL names, whole; `None` also when it is over the budget.
pub(crate) async fn message(
    ctx: &Ctx,
    mb: &MailboxInfo,
    url: &ImapUrl,
    budget: &mut Budget,
) -> StoreResult<Option<Vec<u8>>> {
    match ctx.server.store.read_message(mb.id, url.uid).await {
        Ok(Some(m)) if budget.charge(m.len()) => Ok(Some(m)),
        Ok(_) => Ok(None),
        // Expunged meanwhile: the URL names nothing.
        Err(store::StoreError::Expunged) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The octets of `section` of `raw` (the whole message without one); `None` when the part
/// does not exist.
pub(crate) fn section_of(raw: &[u8], section: Option<&Section>) -> Option<Vec<u8>> {
    let Some(section) = section else {
        return Some(raw.to_vec());
    };
    mime::section(raw, section)
}

/// `;PARTIAL=offset[.length]` applied as FETCH's `<partial>` is (RFC 5092 §11, RFC 9051
/// §6.4.5): an offset past the end gives no octets.
pub(crate) fn partial(data: Vec<u8>, partial: Option<(u64, Option<u64>)>) -> Vec<u8> {
    let Some((offset, len)) = partial else {
        return data;
    };
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = match len {
        Some(l) => start
            .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
            .min(data.len()),
        None => data.len(),
    };
    data.get(start..end).unwrap_or_default().to_vec()
}

/// The octets the URL names in `account`'s mailboxes (BODY.PEEK[section]<partial>), or
/// `None` when the mailbox, message or part does not exist (or the budget is spent).
pub(crate) async fn read(
    ctx: &Ctx,
    account: AccountId,
    url: &ImapUrl,
    budget: &mut Budget,
) -> StoreResult<Option<Vec<u8>>> {
    let Some(mb) = mailbox(ctx, account, url).await? else {
        return Ok(None);
    };
    let Some(raw) = message(ctx, &mb, url, budget).await? else {
        return Ok(None);
    };
    Ok(section_of(&raw, url.section.as_ref()).map(|d| partial(d, url.partial)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert!(same_user(Some("a@d.test"), Some("mx.d.test"), "a@d.test"));
        assert!(same_user(Some("A"), Some("D.test"), "a@d.test"));
        assert!(same_user(Some("a"), Some("d.test:143"), "a@d.test"));
        assert!(!same_user(Some("a"), Some("mx.d.test"), "a@d.test"));
        assert!(!same_user(Some("b"), Some("d.test"), "a@d.test"));
        assert!(!same_user(None, Some("d.test"), "a@d.test"));
    }

    #[test]
    fn budgets() {
        let mut b = Budget::new(10);
        assert!(b.charge(4) && b.charge(6) && !b.exhausted);
        assert!(!b.charge(1) && b.exhausted);
        assert!(!b.charge(0), "spent for good");
    }

    #[test]
    fn partials() {
        let d = b"0123456789".to_vec();
        assert_eq!(partial(d.clone(), None), d);
        assert_eq!(partial(d.clone(), Some((2, Some(3)))), b"234");
        assert_eq!(partial(d.clone(), Some((8, None))), b"89");
        assert_eq!(partial(d.clone(), Some((100_000, Some(1)))), b"");
        assert_eq!(partial(d, Some((5, Some(u64::MAX)))), b"56789");
    }
}
