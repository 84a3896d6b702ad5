//! RFC 9208 QUOTA: GETQUOTA, GETQUOTAROOT, SETQUOTA.
//!
//! Each account has one quota root, named `""` (RFC 9208 §3.2 leaves names to the server),
//! covering every mailbox of the account, with the resources STORAGE (§5.1, in units of 1024
//! octets) and MESSAGE (§5.2). A root is reported only while at least one of its resources
//! has a limit (the `quota-list` grammar needs one resource at least): an account without any
//! limit has no quota root.
//!
//! Quota administrators (`ImapConfig::quota_admins`, yubin's `[quota] admins`) get
//! `QUOTASET` (§3.1.2): they may SETQUOTA, and may name any account's root by its address in
//! GETQUOTA and SETQUOTA. Everyone else sees and names only their own root `""`.

use imap_proto::{Atom, Code, Data, Mailbox, Status, Tag};
use mail_types::Address;
use store::{AccountId, Quota, QuotaLimits};

use crate::cmd::mailbox::{find, name};
use crate::ctx::{Ctx, store_error};
use crate::state::User;

/// RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
const KIB: u64 = 1024;

/// Whether `user` is a quota administrator (gets QUOTASET).
pub(crate) fn is_admin(ctx: &Ctx, user: &User) -> bool {
    ctx.server
        .config
        .quota_admins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&user.address))
}

/// The (resource, usage, limit) triples of the resources with a limit. STORAGE usage is
/// rounded up, so a mailbox with a single byte does not show as empty.
fn resources(q: &Quota) -> Vec<(Atom, u64, u64)> {
    let mut out = Vec::new();
    if let Some(limit) = q.limit {
        let atom = Atom::new("STORAGE").expect("atom");
        out.push((atom, q.used.div_ceil(KIB), limit / KIB));
    }
    if let Some(limit) = q.message_limit {
        out.push((Atom::new("MESSAGE").expect("atom"), q.messages, limit));
    }
    out
}

/// The account a quota root names: `""` is the user's own; an address names that account,
/// for administrators only (RFC 9208 §4.2: a root the user may not see does not exist).
async fn root_account(
    ctx: &Ctx,
    tag: &Tag,
    user: &User,
    root: &[u8],
) -> Result<(AccountId, Option<Address>), Status> {
    let missing =
        || Status::no(Some(tag.clone()), "no such quota root").with_code(Code::NonExistent);
    if root.is_empty() {
        return Ok((user.account, None));
    }
    if !is_admin(ctx, user) {
        return Err(missing());
    }
    let address = std::str::from_utf8(root)
        .ok()
        .and_then(|s| Address::parse(s).ok())
        .ok_or_else(missing)?;
    match ctx.server.store.find_user(&address).await {
        Ok(Some(u)) => Ok((u.id, Some(address))),
        Ok(None) => Err(missing()),
        Err(e) => Err(store_error(tag, &e)),
    }
}

/// The untagged QUOTA response of `root` for `account`; `false` when it has no limit.
async fn quota_response(
    ctx: &mut Ctx,
    tag: &Tag,
    account: AccountId,
    root: &[u8],
) -> Result<bool, Status> {
    let q = ctx
        .server
        .store
        .quota(account)
        .await
        .map_err(|e| store_error(tag, &e))?;
    let resources = resources(&q);
    if resources.is_empty() {
        return Ok(false);
    }
    ctx.data(Data::Quota {
        root: String::from_utf8_lossy(root).into_owned(),
        resources,
    });
    Ok(true)
}

/// RFC 9208 §4.2 GETQUOTA.
pub(crate) async fn getquota(ctx: &mut Ctx, tag: Tag, user: &User, root: &[u8]) -> Status {
    let (account, _) = match root_account(ctx, &tag, user, root).await {
        Ok(a) => a,
        Err(s) => return s,
    };
    match quota_response(ctx, &tag, account, root).await {
        Ok(true) => Status::ok(Some(tag), "GETQUOTA completed"),
        Ok(false) => {
            Status::no(Some(tag), "no such quota root (no limit)").with_code(Code::NonExistent)
        }
        Err(s) => s,
    }
}

/// RFC 9208 §4.3 GETQUOTAROOT: the mailbox must exist; its one root is `""`, listed (with
/// its QUOTA response) only when the account has a limit.
pub(crate) async fn getquotaroot(
    ctx: &mut Ctx,
    tag: Tag,
    user: &User,
    mailbox: &Mailbox,
) -> Status {
    let mb = match name(ctx, &tag, mailbox) {
        Ok(n) => match find(ctx, &tag, user.account, &n).await {
            Ok(mb) => mb,
            Err(s) => return s,
        },
        Err(s) => return s,
    };
    let q = match ctx.server.store.quota(user.account).await {
        Ok(q) => q,
        Err(e) => return store_error(&tag, &e),
    };
    let has_root = !resources(&q).is_empty();
    ctx.data(Data::QuotaRoot {
        mailbox: mb.name,
        roots: if has_root {
            vec![String::new()]
        } else {
            vec![]
        },
    });
    if has_root {
        ctx.data(Data::Quota {
            root: String::new(),
            resources: resources(&q),
        });
    }
    Status::ok(Some(tag), "GETQUOTAROOT completed")
}

/// RFC 9208 §4.1.3 SETQUOTA, for quota administrators: the listed resources get the given
/// limits, the others lose the root's own limit (the configured default applies again). An
/// unknown resource changes nothing (§4.1.3: "NO" if the server does not support it).
pub(crate) async fn setquota(
    ctx: &mut Ctx,
    tag: Tag,
    user: &User,
    root: &[u8],
    limits: &[(Atom, u64)],
) -> Status {
    if !is_admin(ctx, user) {
        // RFC 9208 §4.1.3: "NO" when the user may not change the limits.
        return Status::no(Some(tag), "permission denied").with_code(Code::NoPerm);
    }
    let (account, address) = match root_account(ctx, &tag, user, root).await {
        Ok(a) => a,
        Err(s) => return s,
    };
    let mut new = QuotaLimits::default();
    for (res, limit) in limits {
        if res.eq_ignore_case("STORAGE") {
            new.storage = Some(limit.saturating_mul(KIB));
        } else if res.eq_ignore_case("MESSAGE") {
            new.messages = Some(*limit);
        } else {
            return Status::no(Some(tag), format!("unsupported resource {}", res.as_str()))
                .with_code(Code::Cannot);
        }
    }
    let address = match address {
        Some(a) => a,
        None => match Address::parse(&user.address) {
            Ok(a) => a,
            Err(_) => return Status::no(Some(tag), "no such quota root"),
        },
    };
    if let Err(e) = ctx.server.store.set_quota_limits(&address, new).await {
        return store_error(&tag, &e);
    }
    tracing::info!(
        conn = ctx.info.id,
        admin = %user.address,
        account = %address,
        storage = ?new.storage,
        messages = ?new.messages,
        event = %"quota_set",
        "imap: SETQUOTA"
    );
    // RFC 9208 §4.1.3: the untagged QUOTA response shows the new limits.
    match quota_response(ctx, &tag, account, root).await {
        Ok(_) => Status::ok(Some(tag), "SETQUOTA completed"),
        Err(s) => s,
    }
}
