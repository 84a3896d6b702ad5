//! The admin console's settings (`[admin]`) and its backend: the store for the lists, the
//! CLI's own command functions for every action (so the console does exactly what `yubin …`
//! does), `check-dns` in-process, the log tail and the activity counters of `logging.rs`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use clap::Parser;
use serde::Deserialize;
use web::admin::{Activity, AliasRow, BanRow, DkimRow, DnsRow, LogLine, QueueRow, UserRow};

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::serve::OpenedStore;

/// The `[admin]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// The accounts that may sign in to the console (they sign in with their mail password).
    /// Empty: the console is not served.
    pub accounts: Vec<String>,
    /// A console session ends after this long without a request...
    pub session_idle_secs: u64,
    /// ...and this long after the sign-in.
    pub session_absolute_secs: u64,
    /// Console sessions at most.
    pub max_sessions: usize,
    /// Lines shown on the log page at most (of the `[log] tail_lines` kept).
    pub log_page_lines: usize,
    /// How often the log page reloads itself, in seconds (0: never).
    pub log_refresh_secs: u64,
    /// How often the queue's size is sampled for the chart, in seconds.
    pub queue_sample_secs: u64,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            accounts: Vec::new(),
            session_idle_secs: 15 * 60,
            session_absolute_secs: 8 * 3600,
            max_sessions: 100,
            log_page_lines: 500,
            log_refresh_secs: 10,
            queue_sample_secs: 60,
        }
    }
}

impl AdminSection {
    pub fn validate(&self) -> anyhow::Result<()> {
        for a in &self.accounts {
            if mail_types::Address::parse(a).is_err() {
                bail!("[admin] accounts: {a:?} is not an address");
            }
        }
        for (name, v) in [
            ("session_idle_secs", self.session_idle_secs),
            ("session_absolute_secs", self.session_absolute_secs),
            ("max_sessions", self.max_sessions as u64),
            ("log_page_lines", self.log_page_lines as u64),
            ("queue_sample_secs", self.queue_sample_secs),
        ] {
            if v == 0 {
                bail!("[admin] {name} must be greater than 0");
            }
        }
        Ok(())
    }

    fn config(&self) -> web::admin::AdminConfig {
        web::admin::AdminConfig {
            accounts: self
                .accounts
                .iter()
                .filter_map(|a| mail_types::Address::parse(a).ok())
                .map(|a| a.to_string())
                .collect(),
            session_idle: Duration::from_secs(self.session_idle_secs),
            session_absolute: Duration::from_secs(self.session_absolute_secs),
            max_sessions: self.max_sessions,
            log_page_lines: self.log_page_lines,
            log_refresh_secs: self.log_refresh_secs,
        }
    }
}

/// The console, `None` when no admin account is configured or there is no HTTPS listener.
pub fn console(
    config: &Config,
    opened: &OpenedStore,
    auth: &auth::Authenticator,
) -> Option<web::admin::AdminConsole> {
    if config.admin.accounts.is_empty() || config.listen.https.is_empty() {
        return None;
    }
    let backend = Arc::new(Backend {
        config: Arc::new(config.clone()),
        store: Arc::clone(&opened.store),
        directory: Arc::clone(&opened.directory),
        queue: Arc::clone(&opened.queue),
        login_guard: Arc::clone(&opened.login_guard),
    });
    // Hourly samples of the queue for the chart (the largest seen in each hour is kept).
    let sampler = Arc::clone(&backend);
    let every = Duration::from_secs(config.admin.queue_sample_secs);
    tokio::spawn(async move {
        loop {
            if let Ok((size, oldest)) = sampler.queue_now().await {
                crate::logging::recent()
                    .activity
                    .queue_sample_at(now(), size, oldest);
            }
            tokio::time::sleep(every).await;
        }
    });
    Some(web::admin::AdminConsole::new(
        config.admin.config(),
        auth.clone(),
        backend,
    ))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Backend {
    config: Arc<Config>,
    store: Arc<dyn store::Store>,
    directory: Arc<dyn store::Directory>,
    queue: Arc<dyn store::QueueStore>,
    login_guard: Arc<dyn store::LoginGuardStore>,
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Backend {
    /// The number of queued messages and the age of the oldest, in seconds.
    async fn queue_now(&self) -> Result<(u64, u64), String> {
        let list = self.queue.list_queue().await.map_err(text)?;
        let t = now();
        let oldest = list
            .iter()
            .map(|m| m.created)
            .min()
            .map_or(0, |c| (t - c).max(0) as u64);
        Ok((list.len() as u64, oldest))
    }

    /// Runs a parsed command with the CLI's functions; its output.
    async fn command(&self, cmd: Command, stdin: String) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        match cmd {
            Command::Admin(c) => {
                let mut input = stdin.as_bytes();
                let io = crate::admin::Io {
                    input: &mut input,
                    output: &mut out,
                };
                crate::admin::run(self.directory.as_ref(), c, io).await?;
            }
            Command::Queue(c) => crate::queue_cli::run(self.queue.as_ref(), c, &mut out).await?,
            Command::Ban(c) => {
                let trusted = self.config.limits.trusted_networks();
                crate::ban_cli::run(self.login_guard.as_ref(), &trusted, c, &mut out).await?
            }
            Command::Quota(c) => crate::quota_cli::run(self.store.as_ref(), c, &mut out).await?,
            Command::Dkim(c) => {
                crate::dkim_cli::run(&self.config.data_dir, self.store.as_ref(), c, &mut out)
                    .await?
            }
            _ => bail!("this command is not available in the console"),
        }
        Ok(out)
    }
}

#[async_trait]
impl web::admin::Backend for Backend {
    async fn domains(&self) -> Result<Vec<String>, String> {
        let mut v: Vec<String> = self
            .directory
            .list_domains()
            .await
            .map_err(text)?
            .iter()
            .map(|d| d.to_string())
            .collect();
        v.sort();
        Ok(v)
    }

    async fn users(&self) -> Result<Vec<UserRow>, String> {
        let mut v: Vec<UserRow> = self
            .store
            .quota_report()
            .await
            .map_err(text)?
            .into_iter()
            .map(|a| UserRow {
                address: a.address.to_string(),
                used: a.quota.used,
                limit: a.quota.limit,
                messages: a.quota.messages,
                message_limit: a.quota.message_limit,
            })
            .collect();
        v.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(v)
    }

    async fn aliases(&self) -> Result<Vec<AliasRow>, String> {
        let mut v: Vec<AliasRow> = self
            .directory
            .list_aliases()
            .await
            .map_err(text)?
            .into_iter()
            .map(|a| AliasRow {
                source: a.source.to_string(),
                targets: a.targets.iter().map(|t| t.to_string()).collect(),
            })
            .collect();
        v.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(v)
    }

    async fn dkim_keys(&self) -> Result<Vec<DkimRow>, String> {
        let keys = self.store.dkim_keys(None).await.map_err(text)?;
        Ok(keys
            .into_iter()
            .map(|k| {
                let record = match queue::dkim::public_record(&k.private_key_pem) {
                    Ok(txt) => queue::dkim::zone_line(&k.selector, &k.domain, &txt),
                    Err(e) => format!("(the stored key cannot be read: {e})"),
                };
                DkimRow {
                    domain: k.domain,
                    selector: k.selector,
                    algorithm: k.algorithm.as_str().to_string(),
                    created: k.created_at,
                    record,
                }
            })
            .collect())
    }

    async fn check_dns(&self, domain: &str) -> Result<Vec<DnsRow>, String> {
        use crate::dns_check::Verdict;
        let findings = crate::check_dns_cli::findings(&self.config, self.store.as_ref(), domain)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(findings
            .into_iter()
            .map(|f| {
                let (status, found) = match f.verdict {
                    Verdict::Ok => ("ok", "as expected".to_string()),
                    Verdict::Missing => ("MISSING", "nothing".to_string()),
                    Verdict::Wrong(found) => ("WRONG", found),
                    Verdict::Failed(e) => ("FAILED", format!("lookup failed: {e}")),
                };
                DnsRow {
                    record: format!("{} ({})", f.record, f.what),
                    expected: f.fix,
                    found,
                    status: status.to_string(),
                }
            })
            .collect())
    }

    async fn queue(&self) -> Result<Vec<QueueRow>, String> {
        let list = self.queue.list_queue().await.map_err(text)?;
        Ok(list
            .into_iter()
            .map(|m| {
                let pending: Vec<&store::QueuedRecipient> = m
                    .recipients
                    .iter()
                    .filter(|r| r.status == store::RecipientStatus::Pending)
                    .collect();
                let last_error = m
                    .recipients
                    .iter()
                    .filter(|r| r.last_error.is_some())
                    .max_by_key(|r| r.last_attempt)
                    .and_then(|r| r.last_error.clone());
                QueueRow {
                    id: m.id.to_string(),
                    sender: m.sender.clone(),
                    recipients: pending.iter().map(|r| r.address.clone()).collect(),
                    attempts: m.recipients.iter().map(|r| r.attempts).max().unwrap_or(0),
                    next_attempt: pending.iter().map(|r| r.next_attempt).min(),
                    last_error,
                    created: m.created,
                }
            })
            .collect())
    }

    async fn bans(&self) -> Result<Vec<BanRow>, String> {
        Ok(self
            .login_guard
            .active_bans(now())
            .await
            .map_err(text)?
            .into_iter()
            .map(|b| BanRow {
                ip: b.ip,
                until: b.until,
                created: b.created,
                reason: b.reason,
            })
            .collect())
    }

    fn log_tail(&self) -> Vec<LogLine> {
        crate::logging::recent()
            .tail
            .lines()
            .into_iter()
            .map(|(level, text)| LogLine {
                level: level.to_string(),
                text,
            })
            .collect()
    }

    async fn activity(&self) -> Activity {
        let recent = crate::logging::recent();
        let mut queue = recent.activity.queue_samples();
        if let Ok((size, oldest)) = self.queue_now().await {
            queue.push((now(), size, oldest));
        }
        Activity {
            hours: recent.activity.hours(),
            queue,
            auth_failures: recent.activity.top_failures(20),
        }
    }

    async fn run(&self, args: Vec<String>, stdin: Option<String>) -> Result<String, String> {
        let cli = Cli::try_parse_from(std::iter::once("yubin".to_string()).chain(args))
            .map_err(|e| e.to_string())?;
        let stdin = stdin.map(|s| s + "\n").unwrap_or_default();
        // The CLI's functions read their input through `&mut dyn BufRead`, which is not
        // `Send`: they run on a runtime of their own on a blocking thread.
        let backend = Backend {
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            directory: Arc::clone(&self.directory),
            queue: Arc::clone(&self.queue),
            login_guard: Arc::clone(&self.login_guard),
        };
        let handle = tokio::runtime::Handle::current();
        let out = tokio::task::spawn_blocking(move || {
            handle.block_on(backend.command(cli.command, stdin))
        })
        .await
        .map_err(text)?
        .map_err(|e| format!("{e:#}"))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_table_defaults_and_bad_values() {
        let c = Config::parse("").unwrap();
        assert!(c.admin.accounts.is_empty());
        assert_eq!(c.admin.log_refresh_secs, 10);
        let example = Config::parse(include_str!("../../../yubin.example.toml")).unwrap();
        assert_eq!(
            format!("{:?}", example.admin),
            format!("{:?}", AdminSection::default()),
            "the example documents the defaults"
        );
        assert_eq!(
            format!("{:?}", example.log),
            format!("{:?}", crate::config::Log::default())
        );
        let c = Config::parse("[admin]\naccounts = [\"Postmaster@Example.COM\"]\n").unwrap();
        assert_eq!(c.admin.config().accounts, ["postmaster@example.com"]);
        for bad in ["accounts = [\"nobody\"]", "max_sessions = 0", "colour = 1"] {
            assert!(
                Config::parse(&format!("[admin]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
    }
}
