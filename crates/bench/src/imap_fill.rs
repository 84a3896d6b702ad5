//! `imap-fill`: loads mailboxes with realistic messages (an mbox from gen_mbox.py), either
//! straight into a yubin data directory through the store (fast; no server may be running on
//! it) or over IMAP APPEND into any server (e.g. Dovecot).
//!
//! When more messages are asked for than the mbox holds, the mbox is cycled. Through the
//! store, repeated bodies are then stored once (the blob store is content-addressed) unless
//! `unique` is set, which prepends an `X-Bench-Copy:` header so every message is its own blob.
//! Flags are set like a lived-in mailbox: 4 in 5 messages `\Seen`, 1 in 13 `\Flagged`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use store::{Directory, Flags, MailStore, SystemFlags};
use tokio::task::JoinSet;

use crate::imap_client::{ImapClient, tls_connector};

/// Expands a `{n}` pattern into `count` names (1-based); a name without `{n}` is used as is.
pub fn users(pattern: &str, count: usize) -> Vec<String> {
    if pattern.contains("{n}") {
        (1..=count.max(1))
            .map(|n| pattern.replace("{n}", &n.to_string()))
            .collect()
    } else {
        vec![pattern.to_owned()]
    }
}

/// The flags message number `i` (0-based) gets.
pub fn flags_for(i: u64) -> Flags {
    let mut system = SystemFlags::empty();
    if !i.is_multiple_of(5) {
        system.insert(SystemFlags::SEEN);
    }
    if i.is_multiple_of(13) {
        system.insert(SystemFlags::FLAGGED);
    }
    Flags {
        system,
        keywords: vec![],
    }
}

fn imap_flags(f: &Flags) -> &'static str {
    match (
        f.system.contains(SystemFlags::SEEN),
        f.system.contains(SystemFlags::FLAGGED),
    ) {
        (true, true) => "\\Seen \\Flagged",
        (true, false) => "\\Seen",
        (false, true) => "\\Flagged",
        (false, false) => "",
    }
}

/// Message `i`: the mbox cycled, with a distinguishing header on repeats when `unique`.
fn message(msgs: &[Vec<u8>], i: u64, unique: bool) -> Arc<Vec<u8>> {
    let base = &msgs[(i % msgs.len() as u64) as usize];
    if unique && i >= msgs.len() as u64 {
        let mut m = format!("X-Bench-Copy: {i}\r\n").into_bytes();
        m.extend_from_slice(base);
        Arc::new(m)
    } else {
        Arc::new(base.clone())
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    /// Open this data directory with the store (no server running on it).
    DataDir(PathBuf),
    /// APPEND over IMAP.
    Imap {
        addr: String,
        tls: bool,
        password: String,
    },
}

#[derive(Debug, Clone)]
pub struct FillConfig {
    pub target: Target,
    pub users: Vec<String>,
    pub messages: u64,
    pub mbox: PathBuf,
    pub unique: bool,
    /// The mailbox to fill (it must exist, e.g. INBOX or Archive).
    pub mailbox: String,
    /// Messages in flight at once (store), or connections per run (IMAP: one per user).
    pub parallel: usize,
}

/// Internal dates spread over the last year, oldest first.
fn internal_date(i: u64, n: u64) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let year = 365 * 86400;
    now - year + (i as i64 * year / n.max(1) as i64)
}

pub async fn run(cfg: FillConfig) -> anyhow::Result<String> {
    let msgs = Arc::new(crate::mbox::load(&cfg.mbox)?);
    let start = Instant::now();
    let total = match &cfg.target {
        Target::DataDir(dir) => fill_store(&cfg, dir, &msgs).await?,
        Target::Imap {
            addr,
            tls,
            password,
        } => fill_imap(&cfg, addr, *tls, password, &msgs).await?,
    };
    let s = start.elapsed().as_secs_f64();
    Ok(format!(
        "{{\"mode\":\"imap-fill\",\"users\":{},\"messages_per_user\":{},\"stored\":{total},\
         \"elapsed_s\":{s:.3},\"msgs_per_s\":{:.1}}}",
        cfg.users.len(),
        cfg.messages,
        total as f64 / s.max(1e-9)
    ))
}

/// Opens the data directory's store beside (before) the server, without its crash sweep.
pub async fn open_store(dir: std::path::PathBuf) -> anyhow::Result<Arc<store_sqlite::SqliteStore>> {
    tokio::task::spawn_blocking(move || {
        store_sqlite::open_with(
            &dir,
            &store_sqlite::OpenOptions {
                sweep: false,
                ..Default::default()
            },
        )
    })
    .await?
    .map_err(|e| anyhow!("opening the store: {e}"))
}

async fn fill_store(
    cfg: &FillConfig,
    dir: &std::path::Path,
    msgs: &Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<u64> {
    let dir = dir.to_path_buf();
    let store = crate::imap_fill::open_store(dir).await?;
    let mut mailboxes = Vec::with_capacity(cfg.users.len());
    for user in &cfg.users {
        let addr = mail_types::Address::parse(user).map_err(|e| anyhow!("{user}: {e}"))?;
        let rec = store
            .find_user(&addr)
            .await
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("no such user {user} (create it first)"))?;
        let mailbox = store
            .find_mailbox(rec.id, &cfg.mailbox)
            .await
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("{user} has no mailbox {}", cfg.mailbox))?;
        mailboxes.push(mailbox.id);
    }
    // Appends are independent transactions; the store's writer commits them in groups, so
    // many in flight make the fill fast — across users too, so that thousands of small
    // mailboxes fill as fast as one big one. UIDs follow commit order, which is fine here.
    let mailboxes = Arc::new(mailboxes);
    let stored = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let per_user = cfg.messages;
    let total = per_user.saturating_mul(mailboxes.len() as u64);
    let mut set = JoinSet::new();
    for _ in 0..cfg.parallel.max(1) {
        let (store, next, msgs, stored, mailboxes) = (
            Arc::clone(&store),
            Arc::clone(&next),
            Arc::clone(msgs),
            Arc::clone(&stored),
            Arc::clone(&mailboxes),
        );
        let unique = cfg.unique;
        set.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                // User by user, so each mailbox's messages keep their order mostly.
                let (mb, i) = (mailboxes[(k / per_user) as usize], k % per_user);
                let m = message(&msgs, i, unique);
                store
                    .append(mb, m, &flags_for(i), internal_date(i, per_user))
                    .await
                    .map_err(|e| anyhow!("append: {e}"))?;
                stored.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    eprintln!(
        "filled {} users' {}: {per_user} messages each",
        cfg.users.len(),
        cfg.mailbox
    );
    drop(store);
    Ok(stored.load(Ordering::Relaxed))
}

async fn fill_imap(
    cfg: &FillConfig,
    addr: &str,
    tls: bool,
    password: &str,
    msgs: &Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<u64> {
    let connector = if tls { Some(tls_connector()?) } else { None };
    let gate = Arc::new(tokio::sync::Semaphore::new(cfg.parallel.max(1)));
    let stored = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for user in cfg.users.clone() {
        let (gate, msgs, stored, connector) = (
            Arc::clone(&gate),
            Arc::clone(msgs),
            Arc::clone(&stored),
            connector.clone(),
        );
        let (addr, password, n) = (addr.to_owned(), password.to_owned(), cfg.messages);
        let mailbox = cfg.mailbox.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut c = ImapClient::connect(&addr, connector.as_ref(), Duration::from_secs(60))
                .await
                .with_context(|| user.clone())?;
            c.login(&user, &password).await.context(user.clone())?;
            for i in 0..n {
                let m = message(&msgs, i, false);
                let d = c.append(&mailbox, imap_flags(&flags_for(i)), &m).await?;
                if d.status != crate::imap_client::Status::Ok {
                    anyhow::bail!("{user}: APPEND refused: {:?}", d.status);
                }
                stored.fetch_add(1, Ordering::Relaxed);
            }
            let _ = c.command("LOGOUT").await;
            eprintln!("filled {user}: {n} messages");
            Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(stored.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_patterns() {
        assert_eq!(
            users("u{n}@x.test", 3),
            ["u1@x.test", "u2@x.test", "u3@x.test"]
        );
        assert_eq!(users("solo@x.test", 3), ["solo@x.test"]);
    }

    #[test]
    fn flag_mix_and_unique_copies() {
        assert_eq!(imap_flags(&flags_for(0)), "\\Flagged");
        assert_eq!(imap_flags(&flags_for(1)), "\\Seen");
        assert_eq!(imap_flags(&flags_for(5)), "");
        let msgs = vec![b"A: b\r\n\r\nx\r\n".to_vec()];
        assert_eq!(*message(&msgs, 0, true), msgs[0]);
        assert!(message(&msgs, 1, true).starts_with(b"X-Bench-Copy: 1\r\n"));
        assert_eq!(*message(&msgs, 1, false), msgs[0]);
    }
}
