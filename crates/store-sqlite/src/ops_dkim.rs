//! DKIM signing keys (`store::DkimKeyStore`, schema version 12): one row per (domain,
//! selector), shared by every process on the data directory. Lookups are searches of the
//! `UNIQUE (domain, selector)` index and of `dkim_keys_newest (domain, created_at, id)`.
//! Private keys are secrets: nothing here logs a row.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use store::{DkimAlgorithm, DkimKey, DkimKeyStore, StoreError, StoreResult};

use crate::SqliteStore;
use crate::db::Db;

const COLUMNS: &str = "domain, selector, algorithm, private_key, created_at";

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<DkimKey> {
    let algorithm: String = r.get(2)?;
    Ok(DkimKey {
        domain: r.get(0)?,
        selector: r.get(1)?,
        // The column's CHECK admits only these two names.
        algorithm: DkimAlgorithm::parse(&algorithm).unwrap_or(DkimAlgorithm::Rsa),
        private_key_pem: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Inserts `key` (already canonical); `Exists` when its selector is taken.
fn add(conn: &Connection, key: &DkimKey) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (domain, selector) DO NOTHING",
        )
        .db()?
        .execute(params![
            key.domain,
            key.selector,
            key.algorithm.as_str(),
            key.private_key_pem,
            key.created_at
        ])
        .db()?;
    if n == 0 {
        return Err(StoreError::Exists(format!(
            "DKIM key for {} selector {}",
            key.domain, key.selector
        )));
    }
    Ok(())
}

fn list(conn: &Connection, domain: Option<&str>) -> StoreResult<Vec<DkimKey>> {
    let (sql, args): (String, Vec<String>) = match domain {
        Some(d) => (
            format!("SELECT {COLUMNS} FROM dkim_keys WHERE domain = ?1 ORDER BY created_at, id"),
            vec![d.to_string()],
        ),
        None => (
            format!("SELECT {COLUMNS} FROM dkim_keys ORDER BY domain, created_at, id"),
            Vec::new(),
        ),
    };
    let mut st = conn.prepare_cached(&sql).db()?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), key_from_row)
        .db()?;
    rows.collect::<Result<Vec<_>, _>>().db()
}

fn signing(
    conn: &Connection,
    domain: &str,
    selector: Option<&str>,
) -> StoreResult<Option<DkimKey>> {
    match selector {
        Some(s) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM dkim_keys WHERE domain = ?1 AND selector = ?2"
            ))
            .db()?
            .query_row(params![domain, s], key_from_row)
            .optional()
            .db(),
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM dkim_keys WHERE domain = ?1
                 ORDER BY created_at DESC, id DESC LIMIT 1"
            ))
            .db()?
            .query_row([domain], key_from_row)
            .optional()
            .db(),
    }
}

fn remove(conn: &Connection, domain: &str, selector: &str) -> StoreResult<()> {
    let n = conn
        .prepare_cached("DELETE FROM dkim_keys WHERE domain = ?1 AND selector = ?2")
        .db()?
        .execute(params![domain, selector])
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "DKIM key for {domain} selector {selector}"
        )));
    }
    Ok(())
}

#[async_trait]
impl DkimKeyStore for SqliteStore {
    async fn add_dkim_key(&self, key: &DkimKey) -> StoreResult<()> {
        let key = key.canonical();
        self.writer.run(move |tx| add(tx.conn, &key)).await
    }

    async fn dkim_keys(&self, domain: Option<&str>) -> StoreResult<Vec<DkimKey>> {
        let domain = domain.map(DkimKey::canonical_name);
        self.readers.read(move |c| list(c, domain.as_deref())).await
    }

    async fn dkim_signing_key(
        &self,
        domain: &str,
        selector: Option<&str>,
    ) -> StoreResult<Option<DkimKey>> {
        let domain = DkimKey::canonical_name(domain);
        let selector = selector.map(DkimKey::canonical_name);
        self.readers
            .read_inline(move |c| signing(c, &domain, selector.as_deref()))
            .await
    }

    async fn remove_dkim_key(&self, domain: &str, selector: &str) -> StoreResult<()> {
        let (domain, selector) = (
            DkimKey::canonical_name(domain),
            DkimKey::canonical_name(selector),
        );
        self.writer
            .run(move |tx| remove(tx.conn, &domain, &selector))
            .await
    }
}
