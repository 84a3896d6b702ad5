//! `yubin retention run [--dry-run] [ADDRESS]`: one pass by hand, printing what it removes
//! (or, with --dry-run, would remove). It takes the same lease as the server's task, so the
//! two never run at once.

use std::io::Write;
use std::sync::Arc;

use mail_types::Address;
use store::{Coordination, LeaseGuard, Store, StoreError};

use super::Retention;
use super::pass::{self, Options};

pub async fn run(
    store: Arc<dyn Store>,
    config: &Retention,
    dry_run: bool,
    address: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let only = match address {
        Some(a) => Some(Address::parse(a).map_err(|e| anyhow::anyhow!("{a}: {e}"))?),
        None => None,
    };
    let guard = if dry_run {
        None
    } else {
        let coord: Arc<dyn Coordination> = store.clone();
        match LeaseGuard::acquire(coord, super::task::LEASE, config.lease()).await {
            Ok(g) => Some(g),
            Err(StoreError::InUse) => {
                anyhow::bail!("a retention pass is running (on the server); try again later")
            }
            Err(e) => return Err(e.into()),
        }
    };
    let opts = Options {
        now: pass::now(),
        dry_run,
        batch_size: config.batch_size,
        batch_pause: config.batch_pause(),
        lease: guard.as_ref(),
    };
    let result = pass::run(store.as_ref(), config, only.as_ref(), &opts).await;
    if let Some(g) = guard {
        g.release().await;
    }
    let outcomes = result?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut total = 0;
    for o in &outcomes {
        let what = match o.rule {
            pass::Rule::Archive => "move to Archive",
            _ => "expunge",
        };
        writeln!(
            out,
            "{}\t{}\t{}\t{} {} ({})",
            o.address,
            o.mailbox,
            o.rule.name(),
            verb,
            o.count,
            what
        )?;
        total += o.count;
    }
    writeln!(out, "{verb} {total} messages in total")?;
    Ok(())
}
