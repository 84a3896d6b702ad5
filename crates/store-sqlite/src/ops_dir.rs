//! Directory reads and writes: domains, accounts, aliases. Addresses are stored and looked up by
//! their canonical form (`Address::to_string()`), domains by `Domain::as_str()`.

use mail_types::{Address, Domain};
use rusqlite::{Connection, OptionalExtension, params};
use store::{
    AccountId, Alias, Change, ChangeEvent, DEFAULT_MAILBOXES, MailboxId, Pop3Expire, StoreError,
    StoreResult, UserRecord,
};

use crate::db::{Db, now, sql_u64};
use crate::prim::{MailboxRow, drop_mailbox, insert_mailbox};
use crate::writer::Tx;

fn domain_id(conn: &Connection, domain: &str) -> StoreResult<Option<i64>> {
    conn.prepare_cached("SELECT id FROM domains WHERE name = ?1")
        .db()?
        .query_row([domain], |r| r.get(0))
        .optional()
        .db()
}

fn account_id(conn: &Connection, address: &Address) -> StoreResult<Option<AccountId>> {
    conn.prepare_cached("SELECT id FROM accounts WHERE address = ?1")
        .db()?
        .query_row([address.to_string()], |r| r.get(0))
        .optional()
        .db()
}

fn not_found_user(address: &Address) -> StoreError {
    StoreError::NotFound(format!("user {address}"))
}

pub fn add_domain(conn: &Connection, domain: &Domain) -> StoreResult<()> {
    if domain_id(conn, domain.as_str())?.is_some() {
        return Err(StoreError::Exists(format!("domain {domain}")));
    }
    conn.prepare_cached("INSERT INTO domains (name) VALUES (?1)")
        .db()?
        .execute([domain.as_str()])
        .db()?;
    Ok(())
}

pub fn delete_domain(conn: &Connection, domain: &Domain) -> StoreResult<()> {
    let id = domain_id(conn, domain.as_str())?
        .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?;
    let in_use: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?1)
                  + (SELECT count(*) FROM aliases WHERE domain_id = ?1)",
            [id],
            |r| r.get(0),
        )
        .db()?;
    if in_use > 0 {
        return Err(StoreError::Invalid(format!(
            "domain {domain} still has users or aliases"
        )));
    }
    conn.execute("DELETE FROM domains WHERE id = ?1", [id])
        .db()?;
    Ok(())
}

pub fn list_domains(conn: &Connection) -> StoreResult<Vec<Domain>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM domains ORDER BY name")
        .db()?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    names
        .iter()
        .map(|n| Domain::parse(n).map_err(|_| corrupt("domain", n)))
        .collect()
}

fn corrupt(what: &str, value: &str) -> StoreError {
    tracing::error!(what, value, "unparseable value in the database");
    StoreError::Temporary(format!("corrupt {what} in the database"))
}

pub fn is_local_domain(conn: &Connection, domain: &Domain) -> StoreResult<bool> {
    Ok(domain_id(conn, domain.as_str())?.is_some())
}

/// Creates the account and its default mailboxes (RFC 6154 special use), all subscribed.
pub fn add_user(tx: &mut Tx<'_>, address: &Address, password_hash: &str) -> StoreResult<AccountId> {
    let domain = domain_id(tx.conn, address.domain().as_str())?
        .ok_or_else(|| StoreError::NotFound(format!("domain {}", address.domain())))?;
    if account_id(tx.conn, address)?.is_some() {
        return Err(StoreError::Exists(format!("user {address}")));
    }
    tx.conn
        .prepare_cached(
            "INSERT INTO accounts (address, domain_id, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .db()?
        .execute(params![address.to_string(), domain, password_hash, now()])
        .db()?;
    let account = AccountId(tx.conn.last_insert_rowid());
    for (name, special_use) in DEFAULT_MAILBOXES {
        insert_mailbox(tx, account, name, *special_use, true)?;
    }
    Ok(account)
}

/// [`add_user`] for each entry, in the caller's transaction; an existing address or a
/// missing domain is reported, not an error.
pub fn add_users(
    tx: &mut Tx<'_>,
    users: &[(Address, String)],
) -> StoreResult<Vec<store::NewUserOutcome>> {
    users
        .iter()
        .map(|(address, hash)| match add_user(tx, address, hash) {
            Ok(id) => Ok(store::NewUserOutcome::Created(id)),
            Err(StoreError::Exists(_)) => Ok(store::NewUserOutcome::Exists),
            Err(StoreError::NotFound(_)) => Ok(store::NewUserOutcome::NoDomain),
            Err(e) => Err(e),
        })
        .collect()
}

pub fn set_password(conn: &Connection, address: &Address, password_hash: &str) -> StoreResult<()> {
    let n = conn
        .prepare_cached("UPDATE accounts SET password_hash = ?2, scram = NULL WHERE address = ?1")
        .db()?
        .execute(params![address.to_string(), password_hash])
        .db()?;
    if n == 0 {
        return Err(not_found_user(address));
    }
    Ok(())
}

pub fn replace_password(
    conn: &Connection,
    address: &str,
    expected_hash: &str,
    new_hash: &str,
    scram: Option<&str>,
) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE accounts SET password_hash = ?3, scram = ?4
             WHERE address = ?1 AND password_hash = ?2",
        )
        .db()?
        .execute(params![address, expected_hash, new_hash, scram])
        .db()?;
    Ok(n == 1)
}

pub fn set_scram(conn: &Connection, address: &Address, scram: &str) -> StoreResult<()> {
    let n = conn
        .prepare_cached("UPDATE accounts SET scram = ?2 WHERE address = ?1")
        .db()?
        .execute(params![address.to_string(), scram])
        .db()?;
    if n == 0 {
        return Err(not_found_user(address));
    }
    Ok(())
}

pub fn pop3_expire(conn: &Connection, address: &Address) -> StoreResult<Option<Pop3Expire>> {
    let v: Option<Option<i64>> = conn
        .prepare_cached("SELECT pop3_expire_days FROM accounts WHERE address = ?1")
        .db()?
        .query_row([address.to_string()], |r| r.get(0))
        .optional()
        .db()?;
    match v {
        Some(v) => Ok(Pop3Expire::from_sql(v)),
        None => Err(not_found_user(address)),
    }
}

pub fn set_pop3_expire(
    conn: &Connection,
    address: &Address,
    choice: Option<Pop3Expire>,
) -> StoreResult<()> {
    let n = conn
        .prepare_cached("UPDATE accounts SET pop3_expire_days = ?2 WHERE address = ?1")
        .db()?
        .execute(params![address.to_string(), choice.map(Pop3Expire::to_sql)])
        .db()?;
    if n == 0 {
        return Err(not_found_user(address));
    }
    Ok(())
}

pub fn pop3_expire_choices(conn: &Connection) -> StoreResult<Vec<(Address, Pop3Expire)>> {
    let mut st = conn
        .prepare_cached(
            "SELECT address, pop3_expire_days FROM accounts \
             WHERE pop3_expire_days IS NOT NULL ORDER BY address",
        )
        .db()?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (a, v) = row.db()?;
        let a = Address::parse(&a)
            .map_err(|_| StoreError::Temporary(format!("corrupt address {a:?} in the database")))?;
        if let Some(c) = Pop3Expire::from_sql(Some(v)) {
            out.push((a, c));
        }
    }
    Ok(out)
}

pub fn set_quota(conn: &Connection, address: &Address, limit: Option<u64>) -> StoreResult<()> {
    let n = conn
        .prepare_cached("UPDATE accounts SET quota_limit = ?2 WHERE address = ?1")
        .db()?
        .execute(params![address.to_string(), limit.map(sql_u64)])
        .db()?;
    if n == 0 {
        return Err(not_found_user(address));
    }
    Ok(())
}

/// Deletes the account with its mailboxes, messages (blob references released) and
/// subscriptions, and its place in aliases; aliases left without targets go too.
pub fn delete_user(tx: &mut Tx<'_>, address: &Address) -> StoreResult<()> {
    let account = account_id(tx.conn, address)?.ok_or_else(|| not_found_user(address))?;
    let mailboxes: Vec<MailboxRow> = {
        let mut stmt = tx
            .conn
            .prepare_cached("SELECT id, name FROM mailboxes WHERE account_id = ?1")
            .db()?;
        let rows = stmt
            .query_map([account], |r| {
                Ok(MailboxRow {
                    id: MailboxId::new(account, r.get(0)?),
                    account,
                    name: r.get(1)?,
                })
            })
            .db()?;
        rows.collect::<Result<_, _>>().db()?
    };
    for mb in &mailboxes {
        drop_mailbox(tx, mb)?;
    }
    tx.conn
        .execute("DELETE FROM subscriptions WHERE account_id = ?1", [account])
        .db()?;
    tx.conn
        .execute("DELETE FROM alias_targets WHERE account_id = ?1", [account])
        .db()?;
    tx.conn
        .execute(
            "DELETE FROM aliases WHERE source NOT IN (SELECT source FROM alias_targets)",
            [],
        )
        .db()?;
    tx.conn
        .execute("DELETE FROM accounts WHERE id = ?1", [account])
        .db()?;
    // Its sessions, in this process or another, end (see `store::Change::AccountDeleted`).
    tx.events.push(ChangeEvent {
        mailbox: MailboxId::new(account, 0),
        change: Change::AccountDeleted,
    });
    Ok(())
}

const USER_COLS: &str =
    "SELECT id, address, password_hash, quota_limit, scram, message_limit FROM accounts";

type UserRow = (
    AccountId,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_record(row: UserRow) -> StoreResult<UserRecord> {
    let (id, address, password_hash, limit, scram, messages) = row;
    Ok(UserRecord {
        id,
        address: Address::parse(&address).map_err(|_| corrupt("address", &address))?,
        password_hash,
        quota_limit: limit.map(|l| l.max(0) as u64),
        message_limit: messages.map(|l| l.max(0) as u64),
        scram,
    })
}

pub fn list_users(conn: &Connection) -> StoreResult<Vec<UserRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!("{USER_COLS} ORDER BY address"))
        .db()?;
    let rows = stmt
        .query_map([], user_row)
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    rows.into_iter().map(to_record).collect()
}

/// A page of [`list_users`]: keyset pagination on the address's unique index.
pub fn list_users_after(
    conn: &Connection,
    after: Option<&Address>,
    limit: usize,
) -> StoreResult<Vec<UserRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "{USER_COLS} WHERE address > ?1 ORDER BY address LIMIT ?2"
        ))
        .db()?;
    let after = after.map_or(String::new(), |a| a.to_string());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(rusqlite::params![after, limit], user_row)
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    rows.into_iter().map(to_record).collect()
}

pub fn find_user(conn: &Connection, address: &Address) -> StoreResult<Option<UserRecord>> {
    conn.prepare_cached(&format!("{USER_COLS} WHERE address = ?1"))
        .db()?
        .query_row([address.to_string()], user_row)
        .optional()
        .db()?
        .map(to_record)
        .transpose()
}

pub fn user_count(conn: &Connection) -> StoreResult<u64> {
    let n: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .db()?;
    Ok(n.max(0) as u64)
}

/// Parses an alias source: `local@domain` or `@domain` (catch-all); returns the canonical form
/// and the domain.
fn parse_source(source: &str) -> StoreResult<(String, Domain)> {
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
pub fn add_alias(conn: &Connection, source: &str, targets: &[Address]) -> StoreResult<()> {
    let (source, domain) = parse_source(source)?;
    let domain = domain_id(conn, domain.as_str())?
        .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?;
    if targets.is_empty() {
        return Err(StoreError::Invalid(
            "an alias needs at least one target".into(),
        ));
    }
    let mut ids: Vec<AccountId> = Vec::with_capacity(targets.len());
    for t in targets {
        let id = account_id(conn, t)?.ok_or_else(|| not_found_user(t))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    conn.execute("DELETE FROM aliases WHERE source = ?1", [&source])
        .db()?;
    conn.execute(
        "INSERT INTO aliases (source, domain_id) VALUES (?1, ?2)",
        params![source, domain],
    )
    .db()?;
    for (pos, id) in ids.iter().enumerate() {
        conn.execute(
            "INSERT INTO alias_targets (source, account_id, position) VALUES (?1, ?2, ?3)",
            params![source, id, pos as i64],
        )
        .db()?;
    }
    Ok(())
}

pub fn delete_alias(conn: &Connection, source: &str) -> StoreResult<()> {
    let (source, _) = parse_source(source)?;
    let n = conn
        .execute("DELETE FROM aliases WHERE source = ?1", [&source])
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("alias {source}")));
    }
    Ok(())
}

pub fn list_aliases(conn: &Connection) -> StoreResult<Vec<Alias>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.source, a.address FROM alias_targets t JOIN accounts a ON a.id = t.account_id
             ORDER BY t.source, t.position",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    let mut out: Vec<Alias> = Vec::new();
    for (source, target) in rows {
        let target = Address::parse(&target).map_err(|_| corrupt("address", &target))?;
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

fn alias_targets(conn: &Connection, source: &str) -> StoreResult<Vec<AccountId>> {
    let mut stmt = conn
        .prepare_cached("SELECT account_id FROM alias_targets WHERE source = ?1 ORDER BY position")
        .db()?;
    let ids = stmt
        .query_map([source], |r| r.get(0))
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    Ok(ids)
}

/// The user itself, else the alias's targets, else the domain's catch-all (`@domain`).
pub fn resolve_recipient(conn: &Connection, address: &Address) -> StoreResult<Vec<AccountId>> {
    if let Some(id) = account_id(conn, address)? {
        return Ok(vec![id]);
    }
    let targets = alias_targets(conn, &address.to_string())?;
    if !targets.is_empty() {
        return Ok(targets);
    }
    alias_targets(conn, &format!("@{}", address.domain()))
}
