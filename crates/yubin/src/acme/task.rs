//! The renewal task: at start and then every `check_interval_secs`, obtain a certificate when
//! there is none, it expires within `renew_before_days`, or it lacks a wanted name; on failure
//! retry with a doubling delay. `yubin tls renew` asks for a run now through a trigger file.
//! The served certificate is replaced only by a complete new one, so a failure leaves the
//! previous (or self-signed) certificate in place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use server_kit::Shutdown;

use super::files::{self, State};
use super::order::{self, PartlyInvalid, Responders};
use super::{AcmeConfig, Challenge, wanted_names};
use crate::cert_resolver::{self, CertResolver};

/// How often the trigger file of `yubin tls renew` is looked for.
const TRIGGER_POLL: Duration = Duration::from_secs(1);

pub struct Acme {
    pub config: AcmeConfig,
    /// An HTTPS listener is configured (the PACC name is then wanted too).
    pub https: bool,
    pub challenge: Challenge,
    pub hostname: String,
    pub data_dir: PathBuf,
    pub responders: Responders,
    pub resolver: Arc<CertResolver>,
    pub directory: Arc<dyn store::Directory>,
}

pub async fn run(acme: Acme, shutdown: Shutdown) {
    let trigger = files::trigger_path(&acme.data_dir);
    let mut failures: u32 = 0;
    loop {
        let forced = std::fs::remove_file(&trigger).is_ok();
        let names = names(&acme).await;
        let wait = if forced || due(&acme, &names) {
            let mut state = files::load_state(&acme.data_dir);
            state.last_attempt = files::now_secs();
            let limit = Duration::from_secs(acme.config.attempt_timeout_secs.max(10));
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(limit, attempt(&acme, &names)) => r,
            };
            let wait = match result.unwrap_or_else(|_| Err(anyhow::anyhow!("timed out"))) {
                Ok(()) => {
                    failures = 0;
                    state.last_success = Some(state.last_attempt);
                    state.last_error = None;
                    Duration::from_secs(acme.config.check_interval_secs)
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(&acme.config, failures);
                    let error = format!("{e:#}");
                    tracing::error!(error, names = ?names, retry_in_secs = wait.as_secs(), "ACME: cannot obtain a certificate; serving the current one meanwhile");
                    state.last_error = Some(error);
                    wait
                }
            };
            save(&acme, state, wait);
            wait
        } else {
            Duration::from_secs(acme.config.check_interval_secs)
        };
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !trigger.exists() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(TRIGGER_POLL.min(deadline - Instant::now())) => {}
            }
        }
    }
}

fn save(acme: &Acme, mut state: State, wait: Duration) {
    state.next_check = Some(files::now_secs() + wait.as_secs());
    if let Err(e) = files::save_state(&acme.data_dir, &state) {
        tracing::warn!(error = %format!("{e:#}"), "ACME: cannot save the state file");
    }
}

/// `retry_secs` doubled per further failure, at most `retry_max_secs`.
fn backoff(cfg: &AcmeConfig, failures: u32) -> Duration {
    let factor = 1u64 << failures.saturating_sub(1).min(20);
    Duration::from_secs(
        cfg.retry_secs
            .saturating_mul(factor)
            .min(cfg.retry_max_secs.max(cfg.retry_secs)),
    )
}

async fn names(acme: &Acme) -> Vec<String> {
    let domains = match acme.directory.list_domains().await {
        Ok(d) => d.iter().map(|d| d.as_str().to_string()).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "ACME: cannot list the domains; asking for the hostname only");
            Vec::new()
        }
    };
    wanted_names(
        acme.config.names.as_deref(),
        &acme.hostname,
        &domains,
        acme.https,
    )
}

fn due(acme: &Acme, names: &[String]) -> bool {
    let (cert, _) = files::cert_paths(&acme.data_dir);
    match files::cert_info_file(&cert) {
        Ok(info) => {
            let before = Duration::from_secs(u64::from(acme.config.renew_before_days) * 86400);
            info.needs_renewal(names, before, files::now_secs() as i64)
        }
        Err(_) => true,
    }
}

/// Obtains a certificate for `names` and serves it. When the CA validated the hostname but
/// not some other names (say `autoconfig.<domain>` does not point here yet), one more order
/// for the validated names follows, so the mail ports get a good certificate anyway.
async fn attempt(acme: &Acme, names: &[String]) -> anyhow::Result<()> {
    tracing::info!(names = ?names, directory = acme.config.directory, challenge = acme.challenge.as_str(), "ACME: requesting a certificate");
    let cfg = &acme.config;
    let issued = match order::obtain(cfg, acme.challenge, names, &acme.data_dir, &acme.responders)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            let Some(partly) = e.downcast_ref::<PartlyInvalid>() else {
                return Err(e);
            };
            let host = acme.hostname.to_ascii_lowercase();
            if partly.valid.is_empty() || !partly.valid.contains(&host) {
                return Err(e);
            }
            tracing::warn!(failed = %partly, valid = ?partly.valid, "ACME: some names failed validation; requesting a certificate for the others");
            let valid = partly.valid.clone();
            order::obtain(
                cfg,
                acme.challenge,
                &valid,
                &acme.data_dir,
                &acme.responders,
            )
            .await?
        }
    };
    let key = cert_resolver::load_pem(issued.chain_pem.as_bytes(), issued.key_pem.as_bytes())?;
    files::save_cert(&acme.data_dir, &issued.chain_pem, &issued.key_pem)?;
    acme.resolver.set(key);
    let info = files::cert_info_pem(issued.chain_pem.as_bytes())?;
    tracing::info!(names = ?info.names, issuer = info.issuer, serial = info.serial, not_after = %files::format_time(info.not_after), "ACME: new certificate in use on every listener");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let cfg = AcmeConfig {
            retry_secs: 60,
            retry_max_secs: 300,
            ..AcmeConfig::default()
        };
        let secs: Vec<u64> = (1..=5).map(|n| backoff(&cfg, n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 300, 300]);
        assert_eq!(backoff(&cfg, 1000).as_secs(), 300);
    }
}
