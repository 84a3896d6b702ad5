//! Trait methods the PostgreSQL backend does not implement yet: each answers a temporary
//! error, so a node fails the one operation, never silently. Being replaced file by file
//! (`claims.rs`, `sending.rs`).

use async_trait::async_trait;
use store::{
    AccountId, SendingLimits, SendingLog, SendingUsage, StoreError, StoreResult, UnixTime,
};

use crate::PgStore;

pub(crate) fn pending(what: &str) -> StoreError {
    StoreError::Temporary(format!("{what} is not supported on PostgreSQL yet"))
}

#[async_trait]
impl SendingLog for PgStore {
    async fn sending_usage(
        &self,
        _account: AccountId,
        _since: UnixTime,
    ) -> StoreResult<SendingUsage> {
        Err(pending("sending_usage"))
    }
    async fn record_sending(
        &self,
        _account: AccountId,
        _recipients: u32,
        _now: UnixTime,
        _since: UnixTime,
        _limits: SendingLimits,
    ) -> StoreResult<Result<i64, SendingUsage>> {
        Err(pending("record_sending"))
    }
    async fn forget_sending(&self, _id: i64) -> StoreResult<()> {
        Err(pending("forget_sending"))
    }
}
