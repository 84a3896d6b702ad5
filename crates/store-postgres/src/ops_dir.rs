//! Directory reads and writes: domains, accounts, aliases. Addresses are stored and looked up by
//! their canonical (lower-case) form (`Address::to_string()`), domains by `Domain::as_str()`.

use deadpool_postgres::GenericClient;
use mail_types::{Address, Domain};
use store::{AccountId, Alias, DEFAULT_MAILBOXES, MailboxId, Pop3Expire, StoreError, UserRecord};
use tokio_postgres::Row;

use crate::db::{corrupt, exec, opt, rows, sql_u64};
use crate::error::PgResult;
use crate::prim::{MailboxRow, drop_mailbox, insert_mailbox, lock_mailbox, lock_namespace};
use crate::tx::Tx;

async fn domain_id<C: GenericClient>(c: &C, domain: &str) -> PgResult<Option<i64>> {
    Ok(opt(c, "SELECT id FROM domains WHERE name = $1", &[&domain])
        .await?
        .map(|r| r.get(0)))
}

async fn account_id<C: GenericClient>(c: &C, address: &Address) -> PgResult<Option<AccountId>> {
    Ok(opt(
        c,
        "SELECT id FROM accounts WHERE address = $1",
        &[&address.to_string()],
    )
    .await?
    .map(|r| r.get(0)))
}

fn not_found_user(address: &Address) -> StoreError {
    StoreError::NotFound(format!("user {address}"))
}

pub async fn add_domain(tx: &mut Tx<'_>, domain: &Domain) -> PgResult<()> {
    let n = exec(
        &tx.t,
        "INSERT INTO domains (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
        &[&domain.as_str()],
    )
    .await?;
    if n == 0 {
        return Err(StoreError::Exists(format!("domain {domain}")).into());
    }
    Ok(())
}

/// Refuses while users or aliases of the domain exist. The domain row is locked first, so an
/// account being added on another node either is counted here or fails its foreign key.
pub async fn delete_domain(tx: &mut Tx<'_>, domain: &Domain) -> PgResult<()> {
    let id: i64 = opt(
        &tx.t,
        "SELECT id FROM domains WHERE name = $1 FOR UPDATE",
        &[&domain.as_str()],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?
    .get(0);
    let in_use = opt(
        &tx.t,
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM accounts WHERE domain_id = $1)
                     OR EXISTS (SELECT 1 FROM aliases WHERE domain_id = $1)",
        &[&id],
    )
    .await?
    .is_some();
    if in_use {
        return Err(
            StoreError::Invalid(format!("domain {domain} still has users or aliases")).into(),
        );
    }
    exec(&tx.t, "DELETE FROM domains WHERE id = $1", &[&id]).await?;
    Ok(())
}

pub async fn list_domains<C: GenericClient>(c: &C) -> PgResult<Vec<Domain>> {
    let names = rows(c, "SELECT name FROM domains ORDER BY name", &[]).await?;
    names
        .iter()
        .map(|r| {
            let n: &str = r.get(0);
            Domain::parse(n).map_err(|_| corrupt("domain", n).into())
        })
        .collect()
}

pub async fn is_local_domain<C: GenericClient>(c: &C, domain: &Domain) -> PgResult<bool> {
    Ok(domain_id(c, domain.as_str()).await?.is_some())
}

/// Creates the account and its default mailboxes (RFC 6154 special use), all subscribed.
pub async fn add_user(
    tx: &mut Tx<'_>,
    address: &Address,
    password_hash: &str,
) -> PgResult<AccountId> {
    let domain = domain_id(&tx.t, address.domain().as_str())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("domain {}", address.domain())))?;
    let account: AccountId = opt(
        &tx.t,
        "INSERT INTO accounts (address, domain_id, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (address) DO NOTHING RETURNING id",
        &[&address.to_string(), &domain, &password_hash],
    )
    .await?
    .ok_or_else(|| StoreError::Exists(format!("user {address}")))?
    .get(0);
    for (name, special_use) in DEFAULT_MAILBOXES {
        insert_mailbox(tx, account, name, *special_use, true).await?;
    }
    Ok(account)
}

async fn update_user(tx: &Tx<'_>, sql: &str, address: &Address, value: &str) -> PgResult<()> {
    let n = exec(&tx.t, sql, &[&address.to_string(), &value]).await?;
    if n == 0 {
        return Err(not_found_user(address).into());
    }
    Ok(())
}

/// [`add_user`] for each entry, in the caller's transaction; an existing address or a
/// missing domain is reported, not an error (checked before any insert, so the transaction
/// never aborts on them).
pub async fn add_users(
    tx: &mut Tx<'_>,
    users: &[(Address, String)],
) -> PgResult<Vec<store::NewUserOutcome>> {
    let mut out = Vec::with_capacity(users.len());
    let mut domains: std::collections::HashMap<String, bool> = Default::default();
    for (address, hash) in users {
        let d = address.domain().as_str().to_string();
        let known = match domains.get(&d) {
            Some(k) => *k,
            None => {
                let k = domain_id(&tx.t, &d).await?.is_some();
                domains.insert(d, k);
                k
            }
        };
        if !known {
            out.push(store::NewUserOutcome::NoDomain);
            continue;
        }
        match add_user(tx, address, hash).await {
            Ok(id) => out.push(store::NewUserOutcome::Created(id)),
            Err(crate::error::Error::Store(StoreError::Exists(_))) => {
                out.push(store::NewUserOutcome::Exists)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

pub async fn set_password(tx: &mut Tx<'_>, address: &Address, hash: &str) -> PgResult<()> {
    update_user(
        tx,
        "UPDATE accounts SET password_hash = $2, scram = NULL WHERE address = $1",
        address,
        hash,
    )
    .await
}

pub async fn replace_password(
    tx: &mut Tx<'_>,
    address: &Address,
    expected_hash: &str,
    new_hash: &str,
    scram: Option<&str>,
) -> PgResult<bool> {
    let n = exec(
        &tx.t,
        "UPDATE accounts SET password_hash = $3, scram = $4
         WHERE address = $1 AND password_hash = $2",
        &[&address.to_string(), &expected_hash, &new_hash, &scram],
    )
    .await?;
    Ok(n == 1)
}

pub async fn set_scram(tx: &mut Tx<'_>, address: &Address, scram: &str) -> PgResult<()> {
    update_user(
        tx,
        "UPDATE accounts SET scram = $2 WHERE address = $1",
        address,
        scram,
    )
    .await
}

pub async fn pop3_expire<C: GenericClient>(
    c: &C,
    address: &Address,
) -> PgResult<Option<Pop3Expire>> {
    let row = opt(
        c,
        "SELECT pop3_expire_days FROM accounts WHERE address = $1",
        &[&address.to_string()],
    )
    .await?;
    match row {
        Some(r) => Ok(Pop3Expire::from_sql(
            r.get::<_, Option<i32>>(0).map(i64::from),
        )),
        None => Err(not_found_user(address).into()),
    }
}

pub async fn set_pop3_expire(
    tx: &mut Tx<'_>,
    address: &Address,
    choice: Option<Pop3Expire>,
) -> PgResult<()> {
    let v: Option<i32> = choice.map(|c| i32::try_from(c.to_sql()).unwrap_or(i32::MAX));
    let n = exec(
        &tx.t,
        "UPDATE accounts SET pop3_expire_days = $2 WHERE address = $1",
        &[&address.to_string(), &v],
    )
    .await?;
    if n == 0 {
        return Err(not_found_user(address).into());
    }
    Ok(())
}

pub async fn pop3_expire_choices<C: GenericClient>(c: &C) -> PgResult<Vec<(Address, Pop3Expire)>> {
    let mut out = Vec::new();
    for r in rows(
        c,
        "SELECT address, pop3_expire_days FROM accounts \
         WHERE pop3_expire_days IS NOT NULL ORDER BY address",
        &[],
    )
    .await?
    {
        let a: String = r.get(0);
        let v: i32 = r.get(1);
        let address = Address::parse(&a).map_err(|_| corrupt("address", &a))?;
        if let Some(choice) = Pop3Expire::from_sql(Some(i64::from(v))) {
            out.push((address, choice));
        }
    }
    Ok(out)
}

pub async fn set_quota(tx: &mut Tx<'_>, address: &Address, limit: Option<u64>) -> PgResult<()> {
    let n = exec(
        &tx.t,
        "UPDATE accounts SET quota_limit = $2 WHERE address = $1",
        &[&address.to_string(), &limit.map(sql_u64)],
    )
    .await?;
    if n == 0 {
        return Err(not_found_user(address).into());
    }
    Ok(())
}

/// Deletes the account with its mailboxes, messages (blob references released) and
/// subscriptions, and its place in aliases; aliases left without targets go too.
pub async fn delete_user(tx: &mut Tx<'_>, address: &Address) -> PgResult<()> {
    let account = account_id(&tx.t, address)
        .await?
        .ok_or_else(|| not_found_user(address))?;
    lock_namespace(tx, account).await?;
    let ids = rows(
        &tx.t,
        "SELECT id FROM mailboxes WHERE account_id = $1 ORDER BY id",
        &[&account],
    )
    .await?;
    for r in &ids {
        let mb: MailboxRow = lock_mailbox(tx, MailboxId::new(account, r.get(0))).await?;
        drop_mailbox(tx, &mb).await?;
    }
    exec(
        &tx.t,
        "DELETE FROM alias_targets WHERE account_id = $1",
        &[&account],
    )
    .await?;
    exec(
        &tx.t,
        "DELETE FROM aliases a WHERE NOT EXISTS
           (SELECT 1 FROM alias_targets t WHERE t.source = a.source)",
        &[],
    )
    .await?;
    // Subscriptions and URLAUTH keys go by ON DELETE CASCADE.
    exec(&tx.t, "DELETE FROM accounts WHERE id = $1", &[&account]).await?;
    // Its sessions, on this node or another, end (see `store::Change::AccountDeleted`).
    tx.events.push(store::ChangeEvent {
        mailbox: MailboxId::new(account, 0),
        change: store::Change::AccountDeleted,
    });
    Ok(())
}

const USER_COLS: &str =
    "SELECT id, address, password_hash, quota_limit, scram, message_limit FROM accounts";

fn to_record(r: &Row) -> PgResult<UserRecord> {
    let address: &str = r.get(1);
    Ok(UserRecord {
        id: r.get(0),
        address: Address::parse(address).map_err(|_| corrupt("address", address))?,
        password_hash: r.get(2),
        quota_limit: r.get::<_, Option<i64>>(3).map(|l| l.max(0) as u64),
        message_limit: r.get::<_, Option<i64>>(5).map(|l| l.max(0) as u64),
        scram: r.get(4),
    })
}

pub async fn list_users<C: GenericClient>(c: &C) -> PgResult<Vec<UserRecord>> {
    let rs = rows(c, &format!("{USER_COLS} ORDER BY address"), &[]).await?;
    rs.iter().map(to_record).collect()
}

/// A page of [`list_users`]: keyset pagination on the address's unique index.
pub async fn list_users_after<C: GenericClient>(
    c: &C,
    after: Option<&Address>,
    limit: usize,
) -> PgResult<Vec<UserRecord>> {
    let after = after.map_or(String::new(), |a| a.to_string());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rs = rows(
        c,
        &format!("{USER_COLS} WHERE address > $1 ORDER BY address LIMIT $2"),
        &[&after, &limit],
    )
    .await?;
    rs.iter().map(to_record).collect()
}

pub async fn find_user<C: GenericClient>(c: &C, address: &Address) -> PgResult<Option<UserRecord>> {
    opt(
        c,
        &format!("{USER_COLS} WHERE address = $1"),
        &[&address.to_string()],
    )
    .await?
    .as_ref()
    .map(to_record)
    .transpose()
}

pub async fn user_count<C: GenericClient>(c: &C) -> PgResult<u64> {
    let n: i64 = rows(c, "SELECT count(*) FROM accounts", &[]).await?[0].get(0);
    Ok(n.max(0) as u64)
}

/// Parses an alias source: `local@domain` or `@domain` (catch-all); returns the canonical form
/// and the domain.
fn parse_source(source: &str) -> Result<(String, Domain), StoreError> {
    let bad = || StoreError::Invalid(format!("invalid alias source {source:?}"));
    if let Some(domain) = source.strip_prefix('@') {
        let d = Domain::parse(domain).map_err(|_| bad())?;
        Ok((format!("@{d}"), d))
    } else {
        let a = Address::parse(source).map_err(|_| bad())?;
        Ok((a.to_string(), a.domain().clone()))
    }
}

/// Adds or replaces an alias; every target must be a local user.
pub async fn add_alias(tx: &mut Tx<'_>, source: &str, targets: &[Address]) -> PgResult<()> {
    let (source, domain) = parse_source(source)?;
    let domain = domain_id(&tx.t, domain.as_str())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?;
    if targets.is_empty() {
        return Err(StoreError::Invalid("an alias needs at least one target".into()).into());
    }
    let mut ids: Vec<AccountId> = Vec::with_capacity(targets.len());
    for t in targets {
        let id = account_id(&tx.t, t)
            .await?
            .ok_or_else(|| not_found_user(t))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    exec(&tx.t, "DELETE FROM aliases WHERE source = $1", &[&source]).await?;
    exec(
        &tx.t,
        "INSERT INTO aliases (source, domain_id) VALUES ($1, $2)",
        &[&source, &domain],
    )
    .await?;
    for (pos, id) in ids.iter().enumerate() {
        exec(
            &tx.t,
            "INSERT INTO alias_targets (source, account_id, position) VALUES ($1, $2, $3)",
            &[&source, id, &(pos as i32)],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_alias(tx: &mut Tx<'_>, source: &str) -> PgResult<()> {
    let (source, _) = parse_source(source)?;
    let n = exec(&tx.t, "DELETE FROM aliases WHERE source = $1", &[&source]).await?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("alias {source}")).into());
    }
    Ok(())
}

pub async fn list_aliases<C: GenericClient>(c: &C) -> PgResult<Vec<Alias>> {
    let rs = rows(
        c,
        "SELECT t.source, a.address FROM alias_targets t JOIN accounts a ON a.id = t.account_id
         ORDER BY t.source, t.position",
        &[],
    )
    .await?;
    let mut out: Vec<Alias> = Vec::new();
    for r in &rs {
        let (source, target): (String, &str) = (r.get(0), r.get(1));
        let target = Address::parse(target).map_err(|_| corrupt("address", target))?;
        match out.last_mut() {
            Some(last) if last.source == source => last.targets.push(target),
            _ => out.push(Alias {
                source,
                targets: vec![target],
            }),
        }
    }
    Ok(out)
}

async fn alias_targets<C: GenericClient>(c: &C, source: &str) -> PgResult<Vec<AccountId>> {
    let rs = rows(
        c,
        "SELECT account_id FROM alias_targets WHERE source = $1 ORDER BY position",
        &[&source],
    )
    .await?;
    Ok(rs.iter().map(|r| r.get(0)).collect())
}

/// The user itself, else the alias's targets, else the domain's catch-all (`@domain`).
pub async fn resolve_recipient<C: GenericClient>(
    c: &C,
    address: &Address,
) -> PgResult<Vec<AccountId>> {
    if let Some(id) = account_id(c, address).await? {
        return Ok(vec![id]);
    }
    let targets = alias_targets(c, &address.to_string()).await?;
    if !targets.is_empty() {
        return Ok(targets);
    }
    alias_targets(c, &format!("@{}", address.domain())).await
}
