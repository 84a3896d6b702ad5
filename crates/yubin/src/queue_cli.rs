//! `yubin queue list|show|retry|delete|flush`: the outbound queue, through the same store as
//! the running server. The server re-reads the queue every few seconds, so a retry or delete
//! takes effect without signalling it.
//!
//! Recipients a server process is delivering right now (held by a live lease, see
//! `store::QueueStore::claim_due`) show as due `now`, with the process's node id and the
//! lease's expiry in an extra last column (`list`) or at the end of the line (`show`).

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, bail};
use store::{Lease, LeaseId, QueueStore, QueuedRecipient, RecipientStatus, StoreError};

use crate::cli::QueueCommand;

fn now() -> i64 {
    chrono_now()
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `3m`, `2h`, `1d`: a compact age or delay.
fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn sender(s: &str) -> &str {
    if s.is_empty() { "<>" } else { s }
}

/// The live lease holding `r`, if any.
fn holder<'a>(leases: &'a HashMap<LeaseId, Lease>, r: &QueuedRecipient) -> Option<&'a Lease> {
    r.lease.and_then(|id| leases.get(&id))
}

/// When `r` is next tried: now while a process holds it (its `next_attempt` is then the
/// lease's expiry, not a retry time).
fn next_attempt(leases: &HashMap<LeaseId, Lease>, r: &QueuedRecipient, t: i64) -> i64 {
    if holder(leases, r).is_some() {
        t
    } else {
        r.next_attempt
    }
}

/// ` sending by NODE (lease expires in 40s)`.
fn sending(lease: &Lease, t: i64) -> String {
    format!(
        "sending by {} (lease expires in {})",
        lease.holder,
        human(lease.expires - t)
    )
}

pub async fn run(
    queue: &dyn QueueStore,
    cmd: QueueCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let t = now();
    let leases: HashMap<LeaseId, Lease> = match cmd {
        QueueCommand::List | QueueCommand::Show { .. } => queue
            .leases(t)
            .await
            .map_err(|e| anyhow!("cannot read the queue: {e}"))?
            .into_iter()
            .map(|l| (l.id, l))
            .collect(),
        _ => HashMap::new(),
    };
    match cmd {
        QueueCommand::List => {
            let list = queue
                .list_queue()
                .await
                .map_err(|e| anyhow!("cannot read the queue: {e}"))?;
            if list.is_empty() {
                writeln!(out, "the queue is empty")?;
            }
            for m in list {
                let pending: Vec<_> = m
                    .recipients
                    .iter()
                    .filter(|r| r.status == RecipientStatus::Pending)
                    .collect();
                let next = pending
                    .iter()
                    .map(|r| next_attempt(&leases, r, t))
                    .min()
                    .map(|n| {
                        if n <= t {
                            "now".to_string()
                        } else {
                            format!("in {}", human(n - t))
                        }
                    })
                    .unwrap_or_else(|| "done".into());
                // Added last, so the columns before it stay where scripts expect them.
                let held = pending
                    .iter()
                    .find_map(|r| holder(&leases, r))
                    .map(|l| format!("\t{}", sending(l, t)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}\tage {}\t{} bytes\tfrom {}\t{}/{} pending\tnext {}{}",
                    m.id,
                    human(t - m.created),
                    m.size,
                    sender(&m.sender),
                    pending.len(),
                    m.recipients.len(),
                    next,
                    held
                )?;
            }
        }
        QueueCommand::Show { id } => {
            let m = queue
                .queued_message(id)
                .await
                .map_err(|e| anyhow!("cannot read the queue: {e}"))?
                .ok_or_else(|| anyhow!("no queued message {id}"))?;
            writeln!(out, "id: {}", m.id)?;
            writeln!(out, "from: {}", sender(&m.sender))?;
            writeln!(out, "size: {}", m.size)?;
            writeln!(out, "age: {}", human(t - m.created))?;
            if let Some(e) = &m.envid {
                writeln!(out, "envid: {e}")?;
            }
            for r in &m.recipients {
                let pending = r.status == RecipientStatus::Pending;
                let next = if pending {
                    let n = next_attempt(&leases, r, t);
                    if n <= t {
                        " next now".to_string()
                    } else {
                        format!(" next in {}", human(n - t))
                    }
                } else {
                    String::new()
                };
                let held = holder(&leases, r)
                    .filter(|_| pending)
                    .map(|l| format!(" {}", sending(l, t)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "rcpt: {} {} attempts {}{}{}{}",
                    r.address,
                    r.status.as_str(),
                    r.attempts,
                    next,
                    r.last_error
                        .as_deref()
                        .map(|e| format!(" last error: {e}"))
                        .unwrap_or_default(),
                    held
                )?;
            }
        }
        QueueCommand::Retry { id, all } => {
            let target = if all { None } else { id };
            match queue.retry_queued(target, t).await {
                Ok(n) => writeln!(out, "{n} recipient(s) scheduled for delivery now")?,
                Err(StoreError::NotFound(_)) => {
                    bail!("no queued message {}", id.unwrap_or_default())
                }
                Err(e) => bail!("cannot reschedule: {e}"),
            }
        }
        QueueCommand::Flush => {
            let n = queue
                .retry_queued(None, t)
                .await
                .map_err(|e| anyhow!("cannot reschedule: {e}"))?;
            writeln!(out, "{n} recipient(s) scheduled for delivery now")?;
        }
        QueueCommand::Delete { id } => match queue.delete_queued(id).await {
            Ok(()) => writeln!(out, "deleted queued message {id}")?,
            Err(StoreError::NotFound(_)) => bail!("no queued message {id}"),
            Err(e) => bail!("cannot delete: {e}"),
        },
    }
    Ok(())
}
