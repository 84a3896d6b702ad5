//! `imap-idle`: K connections (TLS by default) that log in, SELECT INBOX and sit in IDLE
//! (RFC 2177), to measure what one idling IMAP session costs the server in resident memory.
//!
//! After the settle time it reads the server's VmRSS, then ends every IDLE with DONE and
//! expects the tagged OK — a connection counts as still open only if that round trip works.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::imap_client::{ImapClient, Status, tls_connector};
use crate::procfs;
use crate::report::json_string;

#[derive(Debug, Clone)]
pub struct ImapIdleConfig {
    pub addr: String,
    pub tls: bool,
    pub connections: usize,
    /// Login names, used round robin.
    pub users: Vec<String>,
    pub password: String,
    pub pid: u32,
    pub settle: Duration,
    pub open_parallel: usize,
    pub io_timeout: Duration,
}

async fn open(
    cfg: &ImapIdleConfig,
    connector: Option<&tokio_rustls::TlsConnector>,
    user: &str,
) -> anyhow::Result<(ImapClient, String)> {
    let mut c = ImapClient::connect(&cfg.addr, connector, cfg.io_timeout).await?;
    c.login(user, &cfg.password).await?;
    c.ok("SELECT INBOX").await?;
    let tag = c.idle_start().await?;
    c.shrink();
    Ok((c, tag))
}

pub async fn run(cfg: ImapIdleConfig) -> anyhow::Result<(String, String)> {
    let connector = if cfg.tls {
        Some(tls_connector()?)
    } else {
        None
    };
    let before = procfs::read_mem(cfg.pid)?.rss_kib;
    let cfg = Arc::new(cfg);
    let gate = Arc::new(Semaphore::new(cfg.open_parallel.max(1)));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..cfg.connections {
        let (cfg, gate, connector) = (Arc::clone(&cfg), Arc::clone(&gate), connector.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            let user = cfg
                .users
                .get(i % cfg.users.len().max(1))
                .cloned()
                .unwrap_or_default();
            open(&cfg, connector.as_ref(), &user).await
        });
    }
    let mut clients = Vec::with_capacity(cfg.connections);
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(c) => clients.push(c),
            Err(e) => *errors.entry(e.to_string()).or_default() += 1,
        }
        let done = clients.len() + errors.values().sum::<usize>();
        if done % 1000 == 0 {
            eprintln!(
                "imap-idle: {done}/{} opened ({:.0} s)",
                cfg.connections,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(cfg.settle).await;
    let after = procfs::read_mem(cfg.pid)?;
    let open_n = clients.len();
    // Check every connection still answers: DONE → tagged OK.
    let gate = Arc::new(Semaphore::new(256));
    let mut set = JoinSet::new();
    for (mut c, tag) in clients {
        let gate = Arc::clone(&gate);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            let ok = matches!(c.idle_done(&tag).await, Ok(d) if d.status == Status::Ok);
            let _ = c.command("LOGOUT").await;
            ok
        });
    }
    let mut still_open = 0;
    while let Some(r) = set.join_next().await {
        if r? {
            still_open += 1;
        }
    }
    let failed: usize = errors.values().sum();
    let per = if open_n > 0 {
        after.rss_kib.saturating_sub(before) as f64 * 1024.0 / open_n as f64
    } else {
        0.0
    };
    let mut human = format!(
        "IMAP IDLE connections to {} (tls: {}): {} requested over {} accounts, {open_n} idling \
         ({failed} failed) after {open_s:.1} s, {still_open} answered DONE after settling\n  \
         server VmRSS: {before} KiB before, {} KiB after (VmHWM {} KiB)\n  \
         per idling connection: {per:.0} bytes ({:.1} KiB)\n",
        cfg.addr,
        cfg.tls,
        cfg.connections,
        cfg.users.len().min(cfg.connections),
        after.rss_kib,
        after.hwm_kib,
        per / 1024.0
    );
    for (e, n) in &errors {
        human.push_str(&format!("    failure {e}: {n}\n"));
    }
    let json = format!(
        "{{\"mode\":\"imap-idle\",\"addr\":{},\"tls\":{},\"requested\":{},\"accounts\":{},\"open\":{open_n},\
         \"failed\":{failed},\"still_open\":{still_open},\"open_s\":{open_s:.1},\"rss_before_kib\":{before},\
         \"rss_after_kib\":{},\"vm_hwm_kib\":{},\"bytes_per_conn\":{per:.0}}}",
        json_string(&cfg.addr),
        cfg.tls,
        cfg.connections,
        cfg.users.len().min(cfg.connections),
        after.rss_kib,
        after.hwm_kib,
    );
    Ok((human, json))
}
