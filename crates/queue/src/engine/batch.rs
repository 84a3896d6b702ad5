//! One lease's batch: the messages for one destination, over as few connections as possible,
//! host after host until every message has an outcome.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use store::LeaseId;

use super::outcome::{self, Outcome};
use super::{Engine, Work};
use crate::dns::DnsError;

/// Outcomes per recipient id, for one message.
pub(super) type Outcomes = HashMap<i64, Outcome>;

impl Engine {
    /// Delivers `work` (one lease's messages for `dest`, a domain or "" for the smarthost)
    /// and records the results. Stops early once `lost` is set (the lease expired: another
    /// process may be delivering the rest).
    pub(super) async fn deliver_batch(
        &self,
        lease: LeaseId,
        dest: &str,
        work: Vec<Work>,
        lost: &AtomicBool,
    ) {
        let mut results: Vec<Outcomes> = work.iter().map(|_| HashMap::new()).collect();
        match self.hosts(dest).await {
            Err(e) => {
                let o = outcome::from_dns(&e);
                for (w, res) in work.iter().zip(results.iter_mut()) {
                    for &r in &w.rcpts {
                        res.insert(r, o.clone());
                    }
                }
            }
            Ok(hosts) => {
                self.try_hosts(lease, dest, &hosts, &work, &mut results, lost)
                    .await
            }
        }
        // Messages already recorded by `try_hosts` have empty results here.
        for (w, res) in work.iter().zip(results) {
            self.finish(lease, w, res).await;
        }
    }

    /// Tries the hosts in order until every message has an outcome, recording each message's
    /// results as soon as they are known; messages still open after the last host get its
    /// error as a temporary failure (recorded by the caller). Messages left when the lease is
    /// lost get no outcome at all: they are no longer ours to record.
    async fn try_hosts(
        &self,
        lease: LeaseId,
        dest: &str,
        hosts: &[(String, u16)],
        work: &[Work],
        results: &mut [Outcomes],
        lost: &AtomicBool,
    ) {
        let mut last_error = String::from("no mail host to try");
        let mut next = 0usize; // the first message without an outcome
        'hosts: for (host, port) in hosts {
            let addrs = match self.dns.addresses(host).await {
                Ok(a) => a,
                Err(DnsError::Permanent(e) | DnsError::Temporary(e)) => {
                    last_error = e;
                    continue;
                }
            };
            for ip in addrs {
                if next >= work.len() || lost.load(Ordering::Acquire) {
                    break 'hosts;
                }
                let addr = SocketAddr::new(ip, *port);
                let mut client = match self.open(dest, host, addr).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::info!(host, %addr, error = %e, "mail host unavailable");
                        last_error = format!("{host} [{ip}]: {e}");
                        continue;
                    }
                };
                while next < work.len() && !lost.load(Ordering::Acquire) {
                    let (w, res) = (&work[next], &mut results[next]);
                    match self.send_one(&mut client, host, w, res).await {
                        Ok(()) => {
                            // Recorded now, not after the batch (see the invariants).
                            self.finish(lease, w, std::mem::take(res)).await;
                            next += 1;
                        }
                        Err(e) => {
                            // The connection broke mid-transaction: the outcome is unknown, so
                            // this message is tried again on the next host (RFC 5321 §6.1).
                            last_error = format!("{host} [{ip}]: {e}");
                            res.clear();
                            break;
                        }
                    }
                }
                if next >= work.len() || lost.load(Ordering::Acquire) {
                    client.quit().await;
                    break 'hosts;
                }
            }
        }
        if lost.load(Ordering::Acquire) {
            return;
        }
        for (w, res) in work.iter().zip(results.iter_mut()).skip(next) {
            for &r in &w.rcpts {
                res.entry(r).or_insert_with(|| Outcome::Temporary {
                    error: last_error.clone(),
                    remote: None,
                });
            }
        }
    }
}
