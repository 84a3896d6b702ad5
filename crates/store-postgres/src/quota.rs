//! [`store::QuotaStore`]: account overrides, the report `yubin quota show` prints, and the
//! queue of warnings (see `store::quota`). Usage is charged by `prim::charge_quota` in every
//! write's transaction.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use mail_types::Address;
use store::{
    AccountId, AccountQuota, Quota, QuotaDefaults, QuotaLimits, QuotaResource, QuotaStore,
    QuotaWarning, StoreError, StoreResult,
};

use crate::PgStore;
use crate::db::{corrupt, opt, rows, sql_u64};
use crate::prim::{charge_quota, quota_row};
use crate::tx::{read, write_tx};

#[async_trait]
impl QuotaStore for PgStore {
    fn set_quota_defaults(&self, defaults: QuotaDefaults) {
        *self.quota.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defaults);
    }

    async fn set_quota_limits(&self, address: &Address, limits: QuotaLimits) -> StoreResult<()> {
        let too_large = |v: Option<u64>| v.is_some_and(|l| l > i64::MAX as u64);
        if too_large(limits.storage) || too_large(limits.messages) {
            return Err(StoreError::Invalid("quota limit too large".into()));
        }
        write_tx!(self, |tx| async {
            let account: AccountId = opt(
                &tx.t,
                "UPDATE accounts SET quota_limit = $2, message_limit = $3
                 WHERE address = $1 RETURNING id",
                &[
                    &address.to_string(),
                    &limits.storage.map(sql_u64),
                    &limits.messages.map(sql_u64),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?
            .get(0);
            // The warning levels follow the new limits now (a lowered limit may cross one).
            charge_quota(tx, account, 0, 0, false).await
        })
    }

    async fn quota_report(&self) -> StoreResult<Vec<AccountQuota>> {
        let defaults = self.quota_defaults();
        read!(self, |c| async {
            let rs = rows(
                c,
                "SELECT a.quota_used, a.messages_used, a.quota_limit, a.message_limit, d.name,
                        a.storage_warned, a.messages_warned, a.id, a.address
                 FROM accounts a JOIN domains d ON d.id = a.domain_id
                 ORDER BY d.name, a.address",
                &[],
            )
            .await?;
            let mut out = Vec::with_capacity(rs.len());
            for r in &rs {
                let q = quota_row(r);
                let limits = defaults.resolve(&q.domain, q.overrides);
                let address: &str = r.get(8);
                out.push(AccountQuota {
                    account: r.get(7),
                    address: Address::parse(address).map_err(|_| corrupt("address", address))?,
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
    }

    async fn take_quota_warnings(&self, max: usize) -> StoreResult<Vec<QuotaWarning>> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        write_tx!(self, |tx| async {
            // SKIP LOCKED: nodes draining at once take different rows; each row goes once.
            let taken = rows(
                &tx.t,
                "DELETE FROM quota_warnings WHERE id IN
                   (SELECT id FROM quota_warnings ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, account_id, resource, percent, used, limit_value",
                &[&max],
            )
            .await?;
            if taken.is_empty() {
                return Ok::<_, crate::error::Error>(Vec::new());
            }
            let ids: Vec<AccountId> = taken.iter().map(|r| r.get(1)).collect();
            let raw: Vec<i64> = ids.iter().map(|a| a.0).collect();
            let addresses: HashMap<i64, String> = rows(
                &tx.t,
                "SELECT id, address FROM accounts WHERE id = ANY($1)",
                &[&raw],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            .collect();
            let mut out = Vec::with_capacity(taken.len());
            for r in &taken {
                let account: AccountId = r.get(1);
                let address = addresses
                    .get(&account.0)
                    .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
                let resource: &str = r.get(2);
                out.push((
                    r.get::<_, i64>(0),
                    QuotaWarning {
                        account,
                        address: Address::parse(address)
                            .map_err(|_| corrupt("address", address))?,
                        resource: QuotaResource::from_code(resource)
                            .ok_or_else(|| corrupt("quota warning", resource))?,
                        percent: r.get::<_, i16>(3).clamp(0, 100) as u8,
                        used: r.get::<_, i64>(4).max(0) as u64,
                        limit: r.get::<_, i64>(5).max(0) as u64,
                    },
                ));
            }
            out.sort_by_key(|(id, _)| *id);
            Ok(out.into_iter().map(|(_, w)| w).collect())
        })
    }
}
