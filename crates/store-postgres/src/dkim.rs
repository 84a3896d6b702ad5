//! [`store::DkimKeyStore`] on PostgreSQL (`dkim_keys`, schema version 5): one set of DKIM
//! signing keys for every node. A duplicate (domain, selector) is refused by the unique
//! constraint in the insert itself (`ON CONFLICT DO NOTHING`), so two nodes adding the same
//! selector at once get one `Ok` and one `Exists`. Private keys are secrets: nothing here logs
//! a row.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use store::{DkimAlgorithm, DkimKey, DkimKeyStore, StoreError, StoreResult};
use tokio_postgres::Row;

use crate::PgStore;
use crate::db::{exec, opt, rows};
use crate::error::PgResult;
use crate::tx::{Tx, read, write_tx};

fn key_from_row(r: &Row) -> DkimKey {
    let algorithm: &str = r.get(2);
    DkimKey {
        domain: r.get(0),
        selector: r.get(1),
        // The column's CHECK admits only these two names.
        algorithm: DkimAlgorithm::parse(algorithm).unwrap_or(DkimAlgorithm::Rsa),
        private_key_pem: r.get(3),
        created_at: r.get(4),
    }
}

/// Inserts `key` (already canonical); `Exists` when its selector is taken.
async fn add(tx: &Tx<'_>, key: &DkimKey) -> PgResult<()> {
    let n = exec(
        &tx.t,
        "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (domain, selector) DO NOTHING",
        &[
            &key.domain,
            &key.selector,
            &key.algorithm.as_str(),
            &key.private_key_pem,
            &key.created_at,
        ],
    )
    .await?;
    if n == 0 {
        return Err(StoreError::Exists(format!(
            "DKIM key for {} selector {}",
            key.domain, key.selector
        ))
        .into());
    }
    Ok(())
}

async fn list<C: GenericClient>(c: &C, domain: Option<&str>) -> PgResult<Vec<DkimKey>> {
    let found = match domain {
        Some(d) => {
            rows(
                c,
                "SELECT domain, selector, algorithm, private_key, created_at FROM dkim_keys
                 WHERE domain = $1 ORDER BY created_at, id",
                &[&d],
            )
            .await?
        }
        None => {
            rows(
                c,
                "SELECT domain, selector, algorithm, private_key, created_at FROM dkim_keys
                 ORDER BY domain, created_at, id",
                &[],
            )
            .await?
        }
    };
    Ok(found.iter().map(key_from_row).collect())
}

async fn signing<C: GenericClient>(
    c: &C,
    domain: &str,
    selector: Option<&str>,
) -> PgResult<Option<DkimKey>> {
    let row = match selector {
        Some(s) => {
            opt(
                c,
                "SELECT domain, selector, algorithm, private_key, created_at FROM dkim_keys
                 WHERE domain = $1 AND selector = $2",
                &[&domain, &s],
            )
            .await?
        }
        None => {
            opt(
                c,
                "SELECT domain, selector, algorithm, private_key, created_at FROM dkim_keys
                 WHERE domain = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
                &[&domain],
            )
            .await?
        }
    };
    Ok(row.as_ref().map(key_from_row))
}

async fn remove(tx: &Tx<'_>, domain: &str, selector: &str) -> PgResult<()> {
    let n = exec(
        &tx.t,
        "DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2",
        &[&domain, &selector],
    )
    .await?;
    if n == 0 {
        return Err(
            StoreError::NotFound(format!("DKIM key for {domain} selector {selector}")).into(),
        );
    }
    Ok(())
}

#[async_trait]
impl DkimKeyStore for PgStore {
    async fn add_dkim_key(&self, key: &DkimKey) -> StoreResult<()> {
        let key = key.canonical();
        write_tx!(self, |tx| add(tx, &key))
    }

    async fn dkim_keys(&self, domain: Option<&str>) -> StoreResult<Vec<DkimKey>> {
        let domain = domain.map(DkimKey::canonical_name);
        read!(self, |c| list(c, domain.as_deref()))
    }

    async fn dkim_signing_key(
        &self,
        domain: &str,
        selector: Option<&str>,
    ) -> StoreResult<Option<DkimKey>> {
        let domain = DkimKey::canonical_name(domain);
        let selector = selector.map(DkimKey::canonical_name);
        read!(self, |c| signing(c, &domain, selector.as_deref()))
    }

    async fn remove_dkim_key(&self, domain: &str, selector: &str) -> StoreResult<()> {
        let (domain, selector) = (
            DkimKey::canonical_name(domain),
            DkimKey::canonical_name(selector),
        );
        write_tx!(self, |tx| remove(tx, &domain, &selector))
    }
}
