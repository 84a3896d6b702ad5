//! [`store::QuotaStore`]: account overrides, the report `yubin quota show` prints, and the
//! queue of warnings (RFC 9208 leaves warnings to the server; see `store::quota`). Usage is
//! charged by `prim::charge_quota` in every write's transaction.

use std::sync::Arc;

use async_trait::async_trait;
use mail_types::Address;
use rusqlite::{OptionalExtension, params};
use store::{
    AccountId, AccountQuota, Quota, QuotaDefaults, QuotaLimits, QuotaResource, QuotaStore,
    QuotaWarning, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::db::{Db, sql_u64};
use crate::prim::{charge_quota, quota_row};

fn corrupt(what: &str) -> StoreError {
    StoreError::Temporary(format!("corrupt {what} in the database"))
}

#[async_trait]
impl QuotaStore for SqliteStore {
    fn set_quota_defaults(&self, defaults: QuotaDefaults) {
        *self.quota.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defaults);
    }

    async fn set_quota_limits(&self, address: &Address, limits: QuotaLimits) -> StoreResult<()> {
        let too_large = |v: Option<u64>| v.is_some_and(|l| l > i64::MAX as u64);
        if too_large(limits.storage) || too_large(limits.messages) {
            return Err(StoreError::Invalid("quota limit too large".into()));
        }
        let address = address.clone();
        self.writer
            .run(move |tx| {
                let account: AccountId = tx
                    .conn
                    .prepare_cached(
                        "UPDATE accounts SET quota_limit = ?2, message_limit = ?3
                         WHERE address = ?1 RETURNING id",
                    )
                    .db()?
                    .query_row(
                        params![
                            address.to_string(),
                            limits.storage.map(sql_u64),
                            limits.messages.map(sql_u64)
                        ],
                        |r| r.get(0),
                    )
                    .optional()
                    .db()?
                    .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
                // The warning levels follow the new limits now (a lowered limit may cross one).
                charge_quota(tx, account, 0, 0, false)
            })
            .await
    }

    async fn quota_report(&self) -> StoreResult<Vec<AccountQuota>> {
        let defaults = self.quota_defaults();
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare(
                        "SELECT a.quota_used, a.messages_used, a.quota_limit, a.message_limit,
                                d.name, a.storage_warned, a.messages_warned, a.id, a.address
                         FROM accounts a JOIN domains d ON d.id = a.domain_id
                         ORDER BY d.name, a.address",
                    )
                    .db()?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((
                            quota_row(r)?,
                            r.get::<_, AccountId>(7)?,
                            r.get::<_, String>(8)?,
                        ))
                    })
                    .db()?;
                let mut out = Vec::new();
                for row in rows {
                    let (q, account, address) = row.db()?;
                    let limits = defaults.resolve(&q.domain, q.overrides);
                    out.push(AccountQuota {
                        account,
                        address: Address::parse(&address).map_err(|_| corrupt("address"))?,
                        quota: Quota {
                            used: q.used,
                            limit: limits.storage,
                            messages: q.messages,
                            message_limit: limits.messages,
                        },
                        overrides: q.overrides,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn take_quota_warnings(&self, max: usize) -> StoreResult<Vec<QuotaWarning>> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.writer
            .run(move |tx| {
                let taken = {
                    let mut stmt = tx
                        .conn
                        .prepare_cached(
                            "DELETE FROM quota_warnings WHERE id IN
                               (SELECT id FROM quota_warnings ORDER BY id LIMIT ?1)
                             RETURNING id, account_id, resource, percent, used, limit_value",
                        )
                        .db()?;
                    let rows = stmt
                        .query_map([max], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, AccountId>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, i64>(5)?,
                            ))
                        })
                        .db()?;
                    rows.collect::<Result<Vec<_>, _>>().db()?
                };
                let mut out = Vec::new();
                for (id, account, resource, percent, used, limit) in taken {
                    let address: String = tx
                        .conn
                        .prepare_cached("SELECT address FROM accounts WHERE id = ?1")
                        .db()?
                        .query_row([account], |r| r.get(0))
                        .db()?;
                    out.push((
                        id,
                        QuotaWarning {
                            account,
                            address: Address::parse(&address).map_err(|_| corrupt("address"))?,
                            resource: QuotaResource::from_code(&resource)
                                .ok_or_else(|| corrupt("quota warning"))?,
                            percent: percent.clamp(0, 100) as u8,
                            used: used.max(0) as u64,
                            limit: limit.max(0) as u64,
                        },
                    ));
                }
                out.sort_by_key(|(id, _)| *id);
                Ok(out.into_iter().map(|(_, w)| w).collect())
            })
            .await
    }
}
