//! What several processes (nodes) sharing one store agree on through it: leases on exclusive
//! things (the POP3 maildrop, RFC 1939 §8) and store-wide secrets. Nothing of this lives in one
//! process's memory, so a second process on the same data directory — or another node on the
//! same database — sees the same locks and the same secrets, and a crashed holder's lease
//! simply expires.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreResult;

#[async_trait]
pub trait Coordination: Send + Sync {
    /// Takes the lease `name` for `holder` until `ttl` from now, if nobody holds it or the
    /// holder's lease has expired; `InUse` while another holder's lease runs (also when
    /// `holder` itself holds it: a lease is not re-entrant). Expiry is judged by the backend's
    /// one clock, so nodes with skewed clocks still agree. See [`crate::LeaseGuard`] for the
    /// usual way to hold one.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<()>;

    /// Extends `holder`'s lease `name` to `ttl` from now. `false` when `holder` no longer has
    /// it (released, or expired and taken by another holder); a lease that expired but was not
    /// taken is still the holder's and is renewed.
    async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool>;

    /// Gives the lease up; nothing happens when `holder` does not hold it (any more).
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;

    /// The store-wide secret `name`, created once and the same for every process and node.
    /// When none is stored yet, `fresh` (random bytes the caller drew) is stored and returned;
    /// an existing secret is never replaced, so of two processes racing, both get the first.
    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>>;
}
