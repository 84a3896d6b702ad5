//! `yubin serve`: open the store, load TLS, bind every listener, serve until a signal, then
//! shut down gracefully.
//!
//! Every listener is bound before any is served, so a port that cannot be bound stops the
//! start with a clear error instead of leaving a half-running server.

use std::sync::Arc;

use anyhow::Context;
use server_kit::{PlaintextAuth, Shutdown};
use store::{Directory, Store};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::{Backend, Config};
use crate::limits::ConnLimits;
use crate::listeners::{self, Context as ListenerContext, Listener, Service};
use crate::shutdown::{self, Signals};
use crate::{rlimit, tls};

/// Who opens the store: the server, or a short-lived admin command beside a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreRole {
    Server,
    Admin,
}

/// Opens the store `[storage]` names (the only place yubin picks a backend): the embedded one
/// in `data_dir`, or the PostgreSQL database at `url`.
///
/// Embedded: only a server that is alone on the data directory sweeps crash leftovers (blob
/// files without a row): while another server runs, a blob it has written but not yet committed
/// looks exactly like such a leftover, so an admin command, or a second server sharing the
/// directory, must never sweep. Servers hold a lock on `data_dir/yubin.lock`: the first takes
/// it exclusively for the sweep, then shares it; a server that finds it held shares it and
/// skips the sweep. Several servers may so serve one data directory (its leases, `\Recent`
/// marks and secrets live in the database, see the `store` crate).
///
/// PostgreSQL: several nodes share the database, so nothing is locked; the schema is created
/// or upgraded by whichever node starts first (the others wait for it).
pub async fn open_store(config: &Config, role: StoreRole) -> anyhow::Result<OpenedStore> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    if config.storage.backend == Backend::Postgres {
        return open_postgres(config, role).await;
    }
    let lock = match role {
        StoreRole::Server => Some(lock_data_dir(dir)?),
        StoreRole::Admin => None,
    };
    let alone = lock.as_ref().is_some_and(|l| l.exclusive);
    if role == StoreRole::Server && !alone {
        tracing::info!(data_dir = %dir.display(), "another yubin server uses this data directory; the crash sweep is left to a server that starts alone");
    }
    let options = store_sqlite::OpenOptions {
        sweep: alone,
        facts_cache_bytes: config.limits.message_cache_mb.saturating_mul(1024 * 1024),
        ..Default::default()
    };
    // Opening migrates the schema and (`sweep`) walks the whole blob directory: blocking work,
    // kept off the async workers.
    let open_dir = dir.clone();
    let sqlite = tokio::task::spawn_blocking(move || store_sqlite::open_with(&open_dir, &options))
        .await
        .map_err(|e| anyhow::anyhow!("opening the store failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", dir.display()))?;
    let lock = match lock {
        Some(l) => Some(l.share()?),
        None => None,
    };
    let store: Arc<dyn Store> = sqlite.clone();
    let queue: Arc<dyn store::QueueStore> = sqlite.clone();
    let sending: Arc<dyn store::SendingLog> = sqlite.clone();
    let login_guard: Arc<dyn store::LoginGuardStore> = sqlite.clone();
    let greylist: Arc<dyn store::Greylist> = sqlite.clone();
    let directory: Arc<dyn Directory> = sqlite;
    // Every process on the store applies the same `[quota]` defaults (`store::quota`).
    store.set_quota_defaults(config.quota.defaults());
    Ok(OpenedStore {
        store,
        directory,
        queue,
        sending,
        login_guard,
        greylist,
        _lock: lock,
    })
}

async fn open_postgres(config: &Config, role: StoreRole) -> anyhow::Result<OpenedStore> {
    let url = config
        .storage
        .url
        .as_deref()
        .context("[storage] backend = \"postgres\" needs a url")?;
    let options = store_postgres::ConnectOptions {
        // An admin command makes a few calls, one at a time.
        pool_size: match role {
            StoreRole::Server => config.storage.pool_size,
            StoreRole::Admin => 2,
        },
        facts_cache_bytes: config.limits.message_cache_mb.saturating_mul(1024 * 1024),
        ..Default::default()
    };
    let pg = store_postgres::connect(url, &options)
        .await
        // The URL may hold a password: name the database without it.
        .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL store: {e}"))?;
    if role == StoreRole::Server {
        tracing::info!(
            schema = store_postgres::SCHEMA_VERSION,
            pool_size = options.pool_size,
            "store: PostgreSQL"
        );
    }
    let store: Arc<dyn Store> = pg.clone();
    let queue: Arc<dyn store::QueueStore> = pg.clone();
    let sending: Arc<dyn store::SendingLog> = pg.clone();
    let login_guard: Arc<dyn store::LoginGuardStore> = pg.clone();
    let greylist: Arc<dyn store::Greylist> = pg.clone();
    let directory: Arc<dyn Directory> = pg;
    store.set_quota_defaults(config.quota.defaults());
    Ok(OpenedStore {
        store,
        directory,
        queue,
        sending,
        login_guard,
        greylist,
        _lock: None,
    })
}

/// The store handles, and the data-directory lock the server holds while they are in use.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    /// The outbound queue (same backend).
    pub queue: Arc<dyn store::QueueStore>,
    /// The per-account sending counts (same backend).
    pub sending: Arc<dyn store::SendingLog>,
    /// Failed-login counters and bans (same backend).
    pub login_guard: Arc<dyn store::LoginGuardStore>,
    /// The greylisting triples (same backend).
    pub greylist: Arc<dyn store::Greylist>,
    _lock: Option<std::fs::File>,
}

/// `data_dir/yubin.lock` as a server holds it.
struct DirLock {
    file: std::fs::File,
    /// No other server had it: this one may sweep.
    exclusive: bool,
}

impl DirLock {
    /// After the sweep: from exclusive to shared, so other servers can join.
    fn share(self) -> anyhow::Result<std::fs::File> {
        if self.exclusive {
            self.file
                .lock_shared()
                .context("cannot share the data directory lock")?;
        }
        Ok(self.file)
    }
}

/// How long a starting server waits for another one to finish its sweep.
const SWEEP_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<DirLock> {
    let path = dir.join("yubin.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            return Ok(DirLock {
                file,
                exclusive: true,
            });
        }
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // Another server runs; it holds the lock exclusively only while it sweeps at start.
    let deadline = std::time::Instant::now() + SWEEP_WAIT;
    loop {
        match file.try_lock_shared() {
            Ok(()) => {
                return Ok(DirLock {
                    file,
                    exclusive: false,
                });
            }
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another yubin server holds the data directory {} exclusively (an older version, or one stuck in its start-up sweep)",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
}

/// `data_dir/yubin.lock` held exclusively: no server runs on the directory, and none can start
/// while the lock is held (what `yubin migrate` needs of its source and target).
pub fn lock_data_dir_exclusive(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("yubin.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "a yubin server is already using the data directory {} (stop it first)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let hostname = config.hostname();
    let limits = &config.limits;
    match rlimit::raise_nofile_limit() {
        Ok(n) if (n as u128) < limits.max_connections as u128 + 64 => tracing::warn!(
            open_files = n,
            max_connections = limits.max_connections,
            "the open-file limit is lower than [limits] max_connections; raise it (ulimit -n, LimitNOFILE=)"
        ),
        Ok(n) => tracing::debug!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    server_kit::tls_gate::set_limit(limits.tls_handshakes_in_progress);
    // Handle signals from now on rather than dying on one that arrives during startup.
    let mut signals = Signals::new().context("cannot install signal handlers")?;
    // Before anything records a metric: handles registered earlier would be no-ops.
    let metrics_handle = crate::metrics::install(&config.metrics)?;
    // `[server] user`: bind the ports as root, then give root up before the store is opened,
    // so that every file yubin creates belongs to that user (`privdrop.rs`).
    if let Some(target) = crate::privdrop::plan(&config.server)? {
        crate::privdrop::prebind(&config)?;
        crate::privdrop::prepare_data_dir(&config.data_dir, &target)?;
        crate::privdrop::drop_to(&target)?;
    }

    let opened = open_store(&config, StoreRole::Server).await?;
    let (store, directory) = (opened.store.clone(), opened.directory.clone());
    let tls = tls::load(&config.tls, &hostname, &config.data_dir)?;
    // One decoy secret for every process on this store (created by the first).
    let decoy = auth::load_decoy_secret(store.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the SCRAM decoy secret: {e}"))?;
    // Key files of versions that kept DKIM keys in data_dir/dkim/ go into the store once (each
    // import is logged), before anything is served; the queue signs with the store's keys only.
    if let Err(e) =
        queue::dkim::import_key_files(&config.data_dir.join("dkim"), store.as_ref()).await
    {
        tracing::warn!(error = %e, "cannot import the DKIM key files");
    }
    let guard = Arc::new(auth::LoginGuard::new(
        Arc::clone(&opened.login_guard),
        config.auth.guard(config.limits.trusted_networks()),
    ));
    let mut auth = auth::Authenticator::new(directory.clone(), config.auth.failure_delay())
        .with_cache(config.auth.cache())
        .with_decoy_secret(decoy)
        .with_rehash(config.auth.rehash_imported);
    if config.auth.login_guard {
        auth = auth.with_guard(Arc::clone(&guard));
    }
    let checker =
        crate::inbound_auth_config::checker(&hostname, &config.inbound_auth, &config.dns)?;
    // The users' own POP3 retention choices (account pages), for POP3 CAPA.
    let pop3_choices = crate::retention::choices::Pop3Choices::default();
    if let Err(e) = pop3_choices.reload(directory.as_ref()).await {
        tracing::warn!(error = %e, "cannot read the users' POP3 retention choices");
    }
    let metrics = crate::metrics::endpoint(
        &config.metrics,
        config.limits.trusted_networks(),
        metrics_handle.clone(),
        Arc::clone(&opened.queue),
        Arc::clone(&opened.login_guard),
    );
    // One `\Recent` tracker for every IMAP listener of the store (RFC 3501 §2.3.2).
    let imap_recent = Arc::new(imap_server::RecentTracker::new());
    let caches = crate::memory::Caches {
        store: Arc::clone(&store),
        imap_recent: Arc::clone(&imap_recent),
    };
    let services = Services::new(
        &config,
        &hostname,
        &opened,
        &auth,
        &tls.acceptor,
        Shared {
            checker,
            imap_recent,
        },
        crate::web_config::WebParts {
            pop3_choices: &pop3_choices,
            metrics,
            certificate: Arc::clone(&tls.resolver),
        },
    );
    let bound = bind_all(&config, &services, &tls.acceptor)?;

    tracing::info!(hostname, data_dir = %config.data_dir.display(), version = env!("CARGO_PKG_VERSION"), "yubin starting");
    match tls.source {
        tls::Source::SelfSigned if config.tls.acme.is_some() => {
            tracing::info!(cert = %tls.cert_path.display(), "TLS certificate: self-signed until the ACME certificate arrives")
        }
        tls::Source::SelfSigned => {
            tracing::info!(cert = %tls.cert_path.display(), "TLS certificate: self-signed (clients will warn; set [tls] cert and key, or [tls] acme, for a real one)")
        }
        tls::Source::Files => {
            tracing::info!(cert = %tls.cert_path.display(), "TLS certificate: configured")
        }
        tls::Source::Acme => {
            tracing::info!(cert = %tls.cert_path.display(), "TLS certificate: from ACME")
        }
    }
    for l in &bound {
        let tls_mode = match (l.implicit_tls.is_some(), l.name) {
            (true, _) => "implicit TLS",
            (false, "http") => "none",
            (false, _) => "STARTTLS",
        };
        tracing::info!(listener = l.name, addr = %l.addr, tls = tls_mode, "listening");
    }
    if bound.is_empty() {
        tracing::warn!("every [listen] list is empty: nothing to serve");
    }
    match directory.user_count().await {
        Ok(0) => tracing::info!(
            "no accounts yet — add one with `yubin domain add example.com` then `yubin user add alice@example.com`"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count accounts"),
    }

    let shutdown = Shutdown::new();
    if let Some(h) = metrics_handle {
        crate::metrics::spawn_upkeep(h, shutdown.clone());
    }
    // The outbound queue: delivers what the submission listeners enqueue, until shutdown.
    let engine = queue::Engine::new(
        crate::outbound_config::engine_config(&hostname, &config.queue, &config.dns, &config.dkim),
        Arc::clone(&opened.queue),
        Arc::clone(&store),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the outbound queue: {e}"))?;
    let mut engine_task = tokio::spawn(engine.run(shutdown.clone()));
    // Retention policies, on one node at a time (the store's lease), until shutdown.
    let retention_task = config.retention.enabled.then(|| {
        tokio::spawn(crate::retention::task::run(
            Arc::clone(&store),
            config.retention.clone(),
            pop3_choices.clone(),
            shutdown.clone(),
        ))
    });
    // The expunge log stays bounded (`expunge_prune.rs`).
    tokio::spawn(crate::expunge_prune::run(
        Arc::clone(&store),
        store::ExpungeLogLimits {
            max_per_mailbox: limits.expunge_log_max_per_mailbox,
            max_age_secs: limits.expunge_log_max_age_days.saturating_mul(86_400),
        },
        std::time::Duration::from_secs(limits.expunge_log_prune_interval_secs.max(1)),
        shutdown.clone(),
    ));
    // Quota warnings into the users' INBOXes (`quota_warn.rs`).
    tokio::spawn(crate::quota_warn::run(
        Arc::clone(&store),
        config.quota.clone(),
        hostname.clone(),
        shutdown.clone(),
    ));
    let ctx = Arc::new(ListenerContext {
        hostname: hostname.clone(),
        limits: ConnLimits::with(
            limits.max_connections,
            limits.max_connections_per_ip,
            limits.trusted_networks(),
            limits.connection_rate_per_ip,
        ),
        tracker: TaskTracker::new(),
        shutdown: shutdown.clone(),
        tls_handshake_timeout: limits.tls_handshake_timeout(),
        guard: auth.guard().cloned(),
        alpn_challenges: Arc::clone(&tls.challenges),
    });
    // Verified passwords past their TTL leave the cache (and memory) within a minute, not
    // only when their account logs in again.
    tokio::spawn({
        let (auth, shutdown, caches) = (auth.clone(), shutdown.clone(), caches.clone());
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if auth.purge_expired_credentials() {
                    crate::memory::give_back(&caches).await;
                }
            }
        }
    });
    let conns = Arc::clone(&ctx.limits);
    tokio::spawn(crate::memory::trim_when_clients_leave(
        move || conns.take_peak(),
        caches,
        shutdown.clone(),
    ));
    // New certificates for every listener without a restart: SIGHUP re-reads the files, the
    // ACME task (`acme/task.rs`) renews.
    tls::spawn_sighup_reload(
        Arc::clone(&tls.resolver),
        config.tls.clone(),
        hostname.clone(),
        config.data_dir.clone(),
    )?;
    if let Some(acme) = &config.tls.acme {
        let http = match &services.web {
            Some(Service::Web(w)) if !config.listen.http.is_empty() => Some(Arc::clone(&w.acme)),
            _ => None,
        };
        tokio::spawn(crate::acme::task::run(
            crate::acme::task::Acme {
                config: acme.clone(),
                https: !config.listen.https.is_empty(),
                challenge: acme.challenge(&config.listen),
                hostname: hostname.clone(),
                data_dir: config.data_dir.clone(),
                responders: crate::acme::order::Responders {
                    http,
                    alpn: Arc::clone(&tls.challenges),
                },
                resolver: Arc::clone(&tls.resolver),
                directory: directory.clone(),
            },
            shutdown.clone(),
        ));
    }
    let mut accept_loops = JoinSet::new();
    for listener in bound {
        accept_loops.spawn(listeners::accept_loop(listener, Arc::clone(&ctx)));
    }

    let signal = signals.recv().await;
    shutdown::drain(
        signal,
        &mut signals,
        shutdown,
        accept_loops,
        ctx.tracker.clone(),
        limits.shutdown_grace(),
    )
    .await;
    // The queue stops with the shutdown signal: deliveries in flight are dropped, their
    // recipients stay pending and their leases are released, so the next start retries them
    // at once (RFC 5321 §6.1). The engine bounds its own wait; this is a backstop.
    if tokio::time::timeout(std::time::Duration::from_secs(10), &mut engine_task)
        .await
        .is_err()
    {
        engine_task.abort();
    }
    // The pass stops at the shutdown signal between two store calls; its lease is released.
    if let Some(t) = retention_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
    }
    Ok(())
}

/// What the servers of several roles share, made before them.
struct Shared {
    /// SPF/DKIM/DMARC for mail arriving on the MX listener.
    checker: Option<inbound_auth::Checker>,
    /// IMAP's `\Recent` marks, also emptied when memory is given back (`memory::Caches`).
    imap_recent: Arc<imap_server::RecentTracker>,
}

/// One shared server object per role; listeners of the same role share it.
struct Services {
    mx: Service,
    submission: Service,
    submissions: Service,
    pop3: Service,
    pop3s: Service,
    imap: Service,
    imaps: Service,
    /// HTTP(S), when a web listener is configured.
    web: Option<Service>,
}

impl Services {
    fn new(
        config: &Config,
        hostname: &str,
        opened: &OpenedStore,
        auth: &auth::Authenticator,
        acceptor: &TlsAcceptor,
        shared: Shared,
        web: crate::web_config::WebParts<'_>,
    ) -> Services {
        let Shared {
            checker,
            imap_recent,
        } = shared;
        let (store, outbound, sending) = (&opened.store, &opened.queue, &opened.sending);
        let antispam =
            crate::antispam_config::build(config, hostname, Arc::clone(&opened.greylist));
        let l = &config.limits;
        let plaintext_auth = PlaintextAuth {
            allow_loopback: config.auth.allow_plaintext_loopback,
        };
        // One budget for message data in flight, shared by every SMTP and IMAP listener.
        let transfer_budget = server_kit::MemoryBudget::new(l.inflight_message_bytes);
        // Limits the config file does not cover keep each crate's defaults.
        let smtp = |mode, starttls: bool| {
            let defaults = smtp_server::SmtpConfig::new(hostname, mode);
            Service::Smtp(Arc::new(smtp_server::SmtpServer {
                config: smtp_server::SmtpConfig {
                    hostname: hostname.to_string(),
                    mode,
                    max_message_size: l.max_message_size,
                    max_line_length: l.max_line_length.unwrap_or(defaults.max_line_length),
                    max_recipients: l.max_recipients,
                    command_timeout: l.smtp_command_timeout(),
                    data_timeout: l.smtp_data_timeout(),
                    write_timeout: l.smtp_write_timeout(),
                    tls_handshake_timeout: l.tls_handshake_timeout(),
                    plaintext_auth,
                    // [queue] sending limits per authenticated user.
                    max_messages_per_hour: config.queue.max_messages_per_hour,
                    max_recipients_per_hour: config.queue.max_recipients_per_hour,
                    over_quota_permanent: config.quota.smtp_over_quota
                        == crate::quota_config::OverQuota::Permanent,
                    transfer_budget: Arc::clone(&transfer_budget),
                    ..defaults
                },
                store: Arc::clone(store),
                auth: auth.clone(),
                tls: starttls.then(|| acceptor.clone()),
                outbound: Some(Arc::clone(outbound)),
                rate: smtp_server::RateLimiter::new(Arc::clone(sending)),
                // Port 25 only: the MX defences (the session checks its mode), and the checks
                // of arriving mail (submissions are authenticated).
                antispam: (mode == SmtpMode::Mx).then(|| Arc::clone(&antispam)),
                inbound_auth: (mode == SmtpMode::Mx).then(|| checker.clone()).flatten(),
            }))
        };
        let pop3 = |starttls: bool| {
            let defaults = pop3_server::Pop3Config::new(hostname);
            Service::Pop3(Arc::new(pop3_server::Pop3Server {
                config: pop3_server::Pop3Config {
                    hostname: hostname.to_string(),
                    max_line_length: l.max_line_length.unwrap_or(defaults.max_line_length),
                    idle_timeout: l.pop3_idle_timeout(),
                    plaintext_auth,
                    maildrop_lease: l.pop3_maildrop_lease(),
                    tls_handshake_timeout: l.tls_handshake_timeout(),
                    expire: Arc::new(crate::retention::Pop3Expire(
                        config.retention.clone(),
                        web.pop3_choices.clone(),
                    )),
                    ..defaults
                },
                store: Arc::clone(store),
                auth: auth.clone(),
                tls: starttls.then(|| acceptor.clone()),
            }))
        };
        // `..defaults` sets no field today; it keeps new imap-server settings at their defaults.
        #[allow(clippy::needless_update)]
        let imap = |starttls: bool| {
            let defaults = imap_server::ImapConfig::new(hostname);
            Service::Imap(Arc::new(imap_server::ImapServer {
                config: imap_server::ImapConfig {
                    hostname: hostname.to_string(),
                    max_line_length: l.max_line_length.unwrap_or(defaults.max_line_length),
                    idle_timeout: l.imap_idle_timeout(),
                    idle_keepalive: l.imap_idle_keepalive(),
                    tls_handshake_timeout: l.tls_handshake_timeout(),
                    max_preauth_literal: l.imap_max_preauth_literal,
                    plaintext_auth,
                    // One message-size limit for SMTP and IMAP APPEND (RFC 7889 APPENDLIMIT).
                    max_message_size: l.max_message_size as u64,
                    max_command_size: (l.max_message_size as u64)
                        .saturating_add(defaults.max_command_size - defaults.max_message_size),
                    quota_admins: config.quota.admins.clone(),
                    transfer_budget: Arc::clone(&transfer_budget),
                    max_keywords: l.imap_max_keywords_per_mailbox,
                    ..defaults
                },
                store: Arc::clone(store),
                auth: auth.clone(),
                tls: starttls.then(|| acceptor.clone()),
                recent: Arc::clone(&imap_recent),
            }))
        };
        use smtp_server::SmtpMode;
        Services {
            // STARTTLS listeners get the acceptor in their server; implicit-TLS ones do the
            // handshake in the accept loop and must not offer STARTTLS again (RFC 8314 §3.3).
            mx: smtp(SmtpMode::Mx, true),
            submission: smtp(SmtpMode::Submission, true),
            submissions: smtp(SmtpMode::Submission, false),
            pop3: pop3(true),
            pop3s: pop3(false),
            imap: imap(true),
            imaps: imap(false),
            web: crate::web_config::server(config, hostname, opened, auth, web).map(Service::Web),
        }
    }
}

/// Binds every configured address; the first failure aborts the start.
fn bind_all(
    config: &Config,
    s: &Services,
    acceptor: &TlsAcceptor,
) -> anyhow::Result<Vec<Listener>> {
    let l = &config.listen;
    let table: [(&'static str, &Vec<std::net::SocketAddr>, &Service, bool); 7] = [
        ("smtp", &l.smtp, &s.mx, false),
        ("submission", &l.submission, &s.submission, false),
        ("submissions", &l.submissions, &s.submissions, true),
        ("pop3", &l.pop3, &s.pop3, false),
        ("pop3s", &l.pop3s, &s.pop3s, true),
        ("imap", &l.imap, &s.imap, false),
        ("imaps", &l.imaps, &s.imaps, true),
    ];
    let mut bound = Vec::new();
    for (name, addrs, service, implicit) in table {
        for &addr in addrs {
            let acceptor = implicit.then(|| acceptor.clone());
            bound.push(listeners::bind(name, addr, acceptor, service.clone())?);
        }
    }
    if let Some(web) = &s.web {
        for &addr in &l.https {
            let acceptor = Some(acceptor.clone());
            bound.push(listeners::bind("https", addr, acceptor, web.clone())?);
        }
        for &addr in &l.http {
            bound.push(listeners::bind("http", addr, None, web.clone())?);
        }
    }
    Ok(bound)
}
