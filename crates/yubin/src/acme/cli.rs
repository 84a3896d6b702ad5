//! `yubin tls status` (which certificate the server serves) and `yubin tls renew` (ask the
//! running server for an ACME run now, and wait for its outcome).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use super::files;
use crate::cli::TlsCommand;
use crate::config::Config;
use crate::tls::Source;

/// How long a running server has to notice the trigger file (it looks every second).
const PICKUP_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(config: &Config, cmd: TlsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        TlsCommand::Status => status(config, out),
        TlsCommand::Renew => renew(config, out).await,
    }
}

/// The file the server serves, without generating anything (see `tls::pick`).
fn served(config: &Config) -> (PathBuf, Source) {
    if config.tls.acme.is_some() {
        let (cert, key) = files::cert_paths(&config.data_dir);
        if cert.exists() && key.exists() {
            return (cert, Source::Acme);
        }
    }
    match &config.tls.cert {
        Some(cert) => (cert.clone(), Source::Files),
        None => (config.data_dir.join("tls/cert.pem"), Source::SelfSigned),
    }
}

fn status(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let (path, source) = served(config);
    writeln!(out, "source:      {}", source.as_str())?;
    writeln!(out, "certificate: {}", path.display())?;
    if path.exists() {
        let info = files::cert_info_file(&path)?;
        let now = files::now_secs() as i64;
        let days = (info.not_after - now).div_euclid(86400);
        writeln!(out, "subject:     {}", info.subject)?;
        writeln!(out, "issuer:      {}", info.issuer)?;
        writeln!(out, "names:       {}", info.names.join(", "))?;
        writeln!(out, "serial:      {}", info.serial)?;
        writeln!(
            out,
            "not after:   {} ({})",
            files::format_time(info.not_after),
            if days < 0 {
                "EXPIRED".to_string()
            } else {
                format!("in {days} days")
            }
        )?;
    } else {
        writeln!(
            out,
            "(not generated yet: the server makes it at its first start)"
        )?;
    }
    if let Some(acme) = &config.tls.acme {
        writeln!(
            out,
            "acme:        {} ({})",
            acme.directory,
            acme.challenge(&config.listen).as_str()
        )?;
        let state = files::load_state(&config.data_dir);
        if state.last_attempt > 0 {
            let outcome = match &state.last_error {
                Some(e) => format!("failed: {e}"),
                None => "succeeded".to_string(),
            };
            writeln!(
                out,
                "last run:    {} {outcome}",
                files::format_time(state.last_attempt as i64)
            )?;
        }
        if let Some(next) = state.next_check {
            writeln!(out, "next check:  {}", files::format_time(next as i64))?;
        }
    }
    Ok(())
}

async fn renew(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Some(acme) = &config.tls.acme else {
        bail!("no [tls] acme in the configuration: nothing to renew");
    };
    let dir = files::dir(&config.data_dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let trigger = files::trigger_path(&config.data_dir);
    let state_path = dir.join("state.json");
    let requested = SystemTime::now();
    fs::write(&trigger, b"").with_context(|| format!("cannot write {}", trigger.display()))?;

    let start = Instant::now();
    while trigger.exists() {
        if start.elapsed() > PICKUP_TIMEOUT {
            let _ = fs::remove_file(&trigger);
            bail!(
                "no running server took the request (is `yubin serve` running with this configuration?)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    writeln!(out, "renewal started; waiting for the CA…")?;
    out.flush()?;
    let limit = Duration::from_secs(acme.attempt_timeout_secs.max(10) + 30);
    loop {
        let done = fs::metadata(&state_path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= requested);
        if done {
            break;
        }
        if start.elapsed() > limit {
            bail!(
                "the server did not finish the renewal in {} s; see its log",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = files::load_state(&config.data_dir);
    if let Some(e) = state.last_error {
        bail!("renewal failed: {e}");
    }
    writeln!(out, "renewed; new connections use the new certificate")?;
    status(config, out)
}
