//! yubin, an all-in-one mail server: SMTP receiving (RFC 5321) and submission (RFC 6409,
//! RFC 8314 implicit TLS), POP3 (RFC 1939) and IMAP (RFC 9051), with STARTTLS (RFC 3207,
//! RFC 2595) — this crate is the binary that ties the protocol crates together: configuration,
//! command line, TLS, listeners, connection limits, graceful shutdown and logs.
//!
//! Outbound delivery is the `queue` crate, started by `serve`; `yubin queue …` and
//! `yubin dkim …` manage it.
//!
//! Certificates are replaced without a restart (ACME renewal, `[tls] cert`/`key` on SIGHUP).
//! Not implemented here: hot reload of the configuration (restart to apply), PROXY protocol,
//! and privilege dropping after binding.

mod acme;
mod activity;
mod admin;
mod admin_console;
mod antispam_config;
mod backup_cli;
mod ban_cli;
mod cert_resolver;
mod check_cli;
mod check_dns_cli;
mod cli;
mod config;
#[cfg(test)]
mod config_fuzz;
mod deliver_cli;
mod dkim_cli;
mod dns_check;
mod dns_records;
mod dns_records_cli;
mod expunge_prune;
mod inbound_auth_config;
mod limits;
mod listeners;
mod logging;
mod mailio;
mod memory;
mod metrics;
mod migrate_cli;
mod outbound_config;
mod privdrop;
mod queue_cli;
mod quota_cli;
mod quota_config;
mod quota_warn;
mod retention;
mod rlimit;
mod serve;
mod shutdown;
mod tls;
mod user_import;
mod web_config;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::{Cli, Command, ExportCommand, ImportCommand};
use config::Config;

fn main() -> ExitCode {
    memory::tune_allocator();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole cause chain, joined by ": ".
            eprintln!("yubin: error: {}", format!("{e:#}").replace('\n', " "));
            match e.downcast_ref::<deliver_cli::DeliveryFailed>() {
                Some(d) => ExitCode::from(d.status),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (config, path) = Config::load(cli.config.as_deref())?;
    // After the configuration ([log] format); a configuration error is printed by `main`.
    logging::init(
        match cli.command {
            Command::Serve => "info",
            _ => "warn",
        },
        &config.log,
    );
    let runtime = match cli.command {
        Command::Serve => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            // Lets memory::trim_when_clients_leave empty the workers' allocator caches.
            b.on_thread_park(memory::on_worker_park);
            b
        }
        // Admin commands make a few store calls; one thread is plenty.
        Command::Admin(_)
        | Command::Queue(_)
        | Command::Ban(_)
        | Command::Quota(_)
        | Command::Dkim(_)
        | Command::DnsRecords { .. }
        | Command::CheckDns { .. }
        | Command::Deliver { .. }
        | Command::Migrate { .. }
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Retention(_)
        | Command::Check { .. }
        | Command::Tls(_) => tokio::runtime::Builder::new_current_thread(),
        // Reading the source overlaps storing it.
        Command::Import(_) | Command::Export(_) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    }
    .enable_all()
    .build()?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => {
                match &path {
                    Some(p) => tracing::info!(config = %p.display(), "configuration loaded"),
                    None => tracing::info!("no configuration file; using the built-in defaults"),
                }
                serve::run(config).await
            }
            Command::Admin(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                let directory = opened.directory.clone();
                let stdin = std::io::stdin();
                let mut input = stdin.lock();
                let mut output = std::io::stdout();
                let io = admin::Io {
                    input: &mut input,
                    output: &mut output,
                };
                admin::run(directory.as_ref(), cmd, io).await
            }
            Command::Queue(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                queue_cli::run(opened.queue.as_ref(), cmd, &mut std::io::stdout()).await
            }
            Command::Ban(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                let trusted = config.limits.trusted_networks();
                ban_cli::run(
                    opened.login_guard.as_ref(),
                    &trusted,
                    cmd,
                    &mut std::io::stdout(),
                )
                .await
            }
            Command::Quota(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                quota_cli::run(opened.store.as_ref(), cmd, &mut std::io::stdout()).await
            }
            Command::Dkim(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                dkim_cli::run(
                    &config.data_dir,
                    opened.store.as_ref(),
                    cmd,
                    &mut std::io::stdout(),
                )
                .await
            }
            Command::DnsRecords { domain } => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                dns_records_cli::run(
                    &config,
                    opened.store.as_ref(),
                    &domain,
                    &mut std::io::stdout(),
                )
                .await
            }
            Command::CheckDns { domain } => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                check_dns_cli::run(
                    &config,
                    opened.store.as_ref(),
                    &domain,
                    &mut std::io::stdout(),
                )
                .await
            }
            Command::Deliver { recipients } => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                deliver_cli::run(
                    opened.store.as_ref(),
                    &recipients,
                    &mut std::io::stdin().lock(),
                    config.limits.max_message_size,
                )
                .await
            }
            Command::Import(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                let out = &mut std::io::stdout();
                match cmd {
                    ImportCommand::Maildir { path, address } => {
                        mailio::import_maildir(opened.store.clone(), &path, &address, out).await
                    }
                    ImportCommand::Mbox {
                        file,
                        address,
                        mailbox,
                        variant,
                    } => {
                        mailio::import_mbox(
                            opened.store.clone(),
                            &file,
                            &address,
                            mailbox,
                            variant,
                            out,
                        )
                        .await
                    }
                }
            }
            Command::Export(cmd) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                let out = &mut std::io::stdout();
                match cmd {
                    ExportCommand::Maildir { address, path } => {
                        mailio::export::export_maildir(opened.store.as_ref(), &address, &path, out)
                            .await
                    }
                    ExportCommand::Mbox { address, path } => {
                        mailio::export::export_mbox(opened.store.as_ref(), &address, &path, out)
                            .await
                    }
                }
            }
            Command::Backup { path: dest } => {
                backup_cli::backup(&config, path.as_deref(), &dest, &mut std::io::stdout())
            }
            Command::Restore { path: src } => {
                backup_cli::restore(&config, path.as_deref(), &src, &mut std::io::stdout())
            }
            Command::Tls(cmd) => acme::cli::run(&config, cmd, &mut std::io::stdout()).await,
            Command::Check { grace } => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                check_cli::run(opened.store.as_ref(), grace, &mut std::io::stdout()).await
            }
            Command::Retention(cli::RetentionCommand::Run { dry_run, address }) => {
                let opened = serve::open_store(&config, serve::StoreRole::Admin).await?;
                retention::cli::run(
                    opened.store.clone(),
                    &config.retention,
                    dry_run,
                    address.as_deref(),
                    &mut std::io::stdout(),
                )
                .await
            }
            Command::Migrate { to, from } => {
                let direction = match (to, from) {
                    (Some(to), _) => migrate_cli::Direction::To(to),
                    (None, Some(from)) => migrate_cli::Direction::From(from),
                    (None, None) => anyhow::bail!("give --to or --from"),
                };
                migrate_cli::run(&config, direction, &mut std::io::stdout()).await
            }
        }
    });
    // Sessions still running after the grace period are dropped here, not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
