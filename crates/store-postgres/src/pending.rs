//! Trait methods the PostgreSQL backend does not implement yet: each answers a temporary
//! error, so a node fails the one operation, never silently. Being replaced file by file
//! (`coord.rs`, `claims.rs`, `sending.rs`, `batch.rs`).

use std::time::Duration;

use async_trait::async_trait;
use store::{Coordination, StoreError, StoreResult};

use crate::PgStore;

pub(crate) fn pending(what: &str) -> StoreError {
    StoreError::Temporary(format!("{what} is not supported on PostgreSQL yet"))
}

#[async_trait]
impl Coordination for PgStore {
    async fn acquire_lease(&self, _name: &str, _holder: &str, _ttl: Duration) -> StoreResult<()> {
        Err(pending("acquire_lease"))
    }
    async fn renew_lease(&self, _name: &str, _holder: &str, _ttl: Duration) -> StoreResult<bool> {
        Err(pending("renew_lease"))
    }
    async fn release_lease(&self, _name: &str, _holder: &str) -> StoreResult<()> {
        Err(pending("release_lease"))
    }
    async fn shared_secret(&self, _name: &str, _fresh: &[u8]) -> StoreResult<Vec<u8>> {
        Err(pending("shared_secret"))
    }
}
