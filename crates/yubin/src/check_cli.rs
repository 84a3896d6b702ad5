//! `yubin check`: verifies the store's invariants without changing anything (see
//! `store::check`), beside a running server or not. Prints each problem and a summary; exit
//! status 1 if anything is wrong, so scripts and the crash harness (`tests/crash/`) can rely
//! on it.

use std::io::Write;
use std::time::Duration;

use store::Store;

pub async fn run(store: &dyn Store, grace_secs: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = store
        .check(Duration::from_secs(grace_secs))
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the store: {e}"))?;
    writeln!(out, "{report}")?;
    if !report.is_clean() {
        anyhow::bail!(
            "the store is inconsistent ({} problems)",
            report.problems.len()
        );
    }
    Ok(())
}
