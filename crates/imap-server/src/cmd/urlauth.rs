//! URLAUTH — RFC 4467: GENURLAUTH, RESETKEY, URLFETCH; and URLAUTH=BINARY's extended URLFETCH
//! (RFC 5524).
//!
//! The INTERNAL mechanism (RFC 4467 §2.4.1): the token is HMAC-SHA256 of the rump URL, keyed
//! with the mailbox access key (32 random bytes per mailbox, kept by the store, made on first
//! use), written as `01` (the algorithm's version, as §2.4.1 and §10 advise) and 64 hex
//! digits. Tokens are compared in constant time. A URL whose user or mailbox does not exist
//! is checked against a random key all the same (§6: no timing difference for probing
//! names).
//!
//! Access (RFC 4467 §3): `user+name` needs the session to be logged in as `name`; `authuser`
//! and `anonymous` any logged-in user (there are no anonymous sessions here); `submit+name`
//! needs a submission role, which no account has, so those URLs never validate. URLs of the
//! session's own mailboxes are fetched without URLAUTH too (the user could FETCH them). Not
//! implemented: mechanisms other than INTERNAL; the untagged `OK [URLMECH]` that §7 sends to
//! other sessions with the mailbox selected, and at SELECT (Dovecot sends neither).

use hmac::{Hmac, Mac};
use imap_proto::{
    Atom, Code, Data, ImapUrl, Mailbox, Status, Tag, UrlAccess, UrlFetchArg, UrlFetchData,
    UrlFetchParam, UrlFetchValue, UrlMetadata,
};
use rand::RngCore;
use sha2::Sha256;
use store::{AccountId, StoreResult};
use subtle::ConstantTimeEq;

use crate::cmd::imapurl::{self, Budget};
use crate::cmd::{mailbox, urlfetch_binary};
use crate::ctx::{Ctx, store_error};
use crate::downgrade;
use crate::state::User;

/// The token's algorithm: HMAC-SHA256, version 1.
const TOKEN_VERSION: &str = "01";

fn fresh_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

fn mac(key: &[u8], rump: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any size");
    m.update(rump.as_bytes());
    m.finalize().into_bytes().into()
}

/// `enc-urlauth` for `rump` — RFC 4467 §5.
fn token(key: &[u8], rump: &str) -> String {
    format!("{TOKEN_VERSION}{}", hex::encode(mac(key, rump)))
}

/// Whether `token` authorizes `rump` under `key`, in constant time — RFC 4467 §6.
fn verify(key: &[u8], rump: &str, token: &str) -> bool {
    let expected = mac(key, rump);
    let given = token
        .get(TOKEN_VERSION.len()..)
        .filter(|_| token.starts_with(TOKEN_VERSION))
        .and_then(|h| hex::decode(h).ok())
        .unwrap_or_default();
    // Lengths are not secret; the comparison of equal-length values is constant-time.
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

fn is_internal(mech: &str) -> bool {
    mech.eq_ignore_ascii_case("INTERNAL")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The account whose data a URL with URLAUTH gives this session, or `None` when the URL does
/// not validate (RFC 4467 §6) or the session may not use it (§3). `raw` is the URL as the
/// client sent it: the rump is cut from it byte for byte.
pub(crate) async fn authorize(
    ctx: &Ctx,
    user: &User,
    raw: &str,
    url: &ImapUrl,
) -> StoreResult<Option<AccountId>> {
    let Some(auth) = &url.urlauth else {
        return Ok(None);
    };
    let Some((mech, token)) = &auth.verifier else {
        return Ok(None);
    };
    let Some((rump, _)) = ImapUrl::split_rump(raw) else {
        return Ok(None);
    };
    // RFC 4467 §3: "After that date and time, the URL has expired, and server
    // implementations MUST reject the URL."
    let fresh = url.expire.is_none_or(|e| e >= now());
    let allowed = match &auth.access {
        UrlAccess::User(name) => name.eq_ignore_ascii_case(&user.address),
        UrlAccess::Submit(_) => false,
        UrlAccess::AuthUser | UrlAccess::Anonymous => true,
    };
    let owner = imapurl::owner(ctx, url, (user.account, &user.address)).await?;
    let mut key = None;
    if let Some(account) = owner
        && let Some(mb) = ctx
            .server
            .store
            .lookup_mailbox(account, &url.mailbox)
            .await?
    {
        key = ctx.server.store.find_urlauth_key(mb.id).await?;
    }
    // §6: a token is computed whether or not the mailbox was found.
    let valid = match &key {
        Some(k) => verify(k, rump, token),
        None => {
            verify(&fresh_key(), rump, token);
            false
        }
    };
    Ok(owner.filter(|_| valid && fresh && allowed && is_internal(mech)))
}

/// RFC 4467 §7 GENURLAUTH: for each rump naming a message of the user's own mailboxes, the
/// URL with its `:INTERNAL:token`. Any invalid rump fails the whole command with BAD.
pub(crate) async fn genurlauth(
    ctx: &mut Ctx,
    tag: Tag,
    user: &User,
    pairs: &[(String, Atom)],
) -> Status {
    let mut urls = Vec::with_capacity(pairs.len());
    for (rump, mech) in pairs {
        if !is_internal(mech.as_str()) {
            return Status::bad(Some(tag), "unsupported URLAUTH mechanism");
        }
        let url = match ImapUrl::parse(rump) {
            Ok(u) => u,
            Err(e) => return Status::bad(Some(tag), e.to_string()),
        };
        match &url.urlauth {
            None => return Status::bad(Some(tag), "missing access identifier in supplied URL"),
            Some(a) if a.verifier.is_some() => {
                return Status::bad(Some(tag), "URL is already authorized");
            }
            Some(_) => {}
        }
        if url.user.is_none() {
            return Status::bad(Some(tag), "missing owner username in supplied URL");
        }
        // §7 (2): only the owner of the mailbox access key table may authorize.
        if !imapurl::same_user(url.user.as_deref(), url.host.as_deref(), &user.address) {
            return Status::bad(Some(tag), "URL names another user's mailbox");
        }
        // §7 (1): the mailbox must exist.
        let mb = match imapurl::mailbox(ctx, user.account, &url).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return Status::bad(Some(tag), "no such mailbox"),
            Err(e) => return store_error(&tag, &e),
        };
        // §7: "If there is currently no mailbox access key ... one is automatically generated."
        let key = match ctx.server.store.urlauth_key(mb.id, &fresh_key()).await {
            Ok(k) => k,
            Err(e) => return store_error(&tag, &e),
        };
        urls.push(format!("{rump}:INTERNAL:{}", token(&key, rump)));
    }
    ctx.data(Data::GenUrlAuth(urls));
    Status::ok(Some(tag), "GENURLAUTH completed")
}

/// RFC 4467 §7 RESETKEY: without a mailbox every key of the user is removed; with one, that
/// mailbox's key (a new one is made at the next GENURLAUTH).
pub(crate) async fn resetkey(
    ctx: &mut Ctx,
    tag: Tag,
    user: &User,
    target: Option<&Mailbox>,
    mechanisms: &[Atom],
) -> Status {
    let Some(target) = target else {
        return match ctx
            .server
            .store
            .reset_urlauth_keys(user.account, None)
            .await
        {
            Ok(()) => Status::ok(Some(tag), "All keys removed"),
            Err(e) => store_error(&tag, &e),
        };
    };
    if mechanisms.iter().any(|m| !is_internal(m.as_str())) {
        return Status::bad(Some(tag), "unsupported URLAUTH mechanism");
    }
    let name = match mailbox::name(ctx, &tag, target) {
        Ok(n) => n,
        Err(s) => return s,
    };
    let mb = match mailbox::find(ctx, &tag, user.account, &name).await {
        Ok(mb) => mb,
        Err(s) => return s,
    };
    match ctx
        .server
        .store
        .reset_urlauth_keys(user.account, Some(mb.id))
        .await
    {
        Ok(()) => {
            Status::ok(Some(tag), "key reset").with_code(Code::UrlMech(vec!["INTERNAL".into()]))
        }
        Err(e) => store_error(&tag, &e),
    }
}

/// The account whose data a URL names for this session: with URLAUTH as validated, without
/// it only the session's own.
async fn resolve(ctx: &Ctx, user: &User, raw: &str) -> StoreResult<Option<(ImapUrl, AccountId)>> {
    let Ok(url) = ImapUrl::parse(raw) else {
        return Ok(None);
    };
    let account = if url.urlauth.is_some() {
        authorize(ctx, user, raw, &url).await?
    } else if imapurl::same_user(url.user.as_deref(), url.host.as_deref(), &user.address) {
        Some(user.account)
    } else {
        None
    };
    Ok(account.map(|a| (url, a)))
}

/// One URL's answer; `None` inside when it names nothing the session may read.
async fn fetch_one(
    ctx: &Ctx,
    user: &User,
    arg: &UrlFetchArg,
    budget: &mut Budget,
) -> StoreResult<UrlFetchValue> {
    // RFC 5524 §3.1: "an absence of any parameters" behaves as the unextended form.
    let Some(params) = arg.params.as_ref().filter(|p| !p.is_empty()) else {
        let data = match resolve(ctx, user, &arg.url).await? {
            Some((url, account)) => imapurl::read(ctx, account, &url, budget).await?,
            None => None,
        };
        return Ok(UrlFetchValue::Simple(data));
    };
    let nil = Ok(UrlFetchValue::Extended(None));
    let Some((url, account)) = resolve(ctx, user, &arg.url).await? else {
        return nil;
    };
    let Some(mb) = imapurl::mailbox(ctx, account, &url).await? else {
        return nil;
    };
    let Some(raw) = imapurl::message(ctx, &mb, &url, budget).await? else {
        return nil;
    };
    let wants = |p: UrlFetchParam| params.contains(&p);
    let binary = wants(UrlFetchParam::Binary);
    let mut meta = UrlMetadata::default();
    if wants(UrlFetchParam::Body) {
        let Some(data) = imapurl::section_of(&raw, url.section.as_ref()) else {
            return nil;
        };
        meta.body = Some(Some(imapurl::partial(data, url.partial)));
    }
    if binary || wants(UrlFetchParam::BodyPartStructure) {
        let Some(conv) = urlfetch_binary::convert(&raw, url.section.as_ref(), binary) else {
            return nil;
        };
        if binary {
            meta.binary = Some(conv.binary.map(|d| imapurl::partial(d, url.partial)));
        }
        if wants(UrlFetchParam::BodyPartStructure) {
            let Some(mut bs) = conv.structure else {
                return nil;
            };
            if !ctx.utf8 {
                // RFC 6855 §3: no UTF-8 to clients that did not enable it.
                downgrade::body_structure(&mut bs);
            }
            meta.body_part_structure = Some(bs);
        }
    }
    Ok(UrlFetchValue::Extended(Some(Box::new(meta))))
}

/// RFC 4467 §7 URLFETCH (RFC 5524 §3 extended form): one `* URLFETCH` with every URL's data
/// or NIL. What one command reads is bounded (see [`Budget`]): past it, `NO [LIMIT]`.
pub(crate) async fn urlfetch(ctx: &mut Ctx, tag: Tag, user: &User, args: &[UrlFetchArg]) -> Status {
    for arg in args {
        let Some(params) = &arg.params else {
            continue;
        };
        for (i, p) in params.iter().enumerate() {
            if matches!(p, UrlFetchParam::Other(_)) {
                return Status::bad(Some(tag), "unknown URLFETCH parameter");
            }
            // RFC 5524 §3.1: no item twice, never BODY with BINARY.
            if params[..i].contains(p) {
                return Status::bad(Some(tag), "URLFETCH parameter given twice");
            }
        }
        if params.contains(&UrlFetchParam::Body) && params.contains(&UrlFetchParam::Binary) {
            return Status::bad(Some(tag), "BODY and BINARY cannot both be requested");
        }
    }
    let mut budget = Budget::new(ctx.server.config.max_command_size);
    let mut items = Vec::with_capacity(args.len());
    for arg in args {
        let value = match fetch_one(ctx, user, arg, &mut budget).await {
            Ok(v) => v,
            Err(e) => return store_error(&tag, &e),
        };
        if budget.exhausted {
            return Status::no(
                Some(tag),
                "URLFETCH data too large; fetch fewer URLs at once",
            )
            .with_code(Code::Limit);
        }
        items.push(UrlFetchData {
            url: arg.url.clone(),
            value,
        });
    }
    ctx.data(Data::UrlFetch(items));
    Status::ok(Some(tag), "URLFETCH completed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let key = [7u8; 32];
        let rump = "imap://a@d.test/INBOX/;uid=1;urlauth=anonymous";
        let t = token(&key, rump);
        assert_eq!(t.len(), 66);
        assert!(t.starts_with("01"));
        assert!(verify(&key, rump, &t));
        assert!(verify(&key, rump, &t.to_uppercase()));
        assert!(!verify(&[8u8; 32], rump, &t));
        assert!(!verify(
            &key,
            "imap://a@d.test/INBOX/;uid=2;urlauth=anonymous",
            &t
        ));
        assert!(!verify(&key, rump, &t[2..]));
        assert!(!verify(&key, rump, &format!("02{}", &t[2..])));
        assert!(!verify(&key, rump, "01"));
        // RFC 4231 §4.3, test case 2 of HMAC-SHA256.
        assert_eq!(
            hex::encode(mac(b"Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
