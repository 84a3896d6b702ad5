//! The scheduler and delivery tasks (RFC 5321 §4.5.4 retry strategy, §5 address resolution).
//!
//! Invariants:
//! - A recipient's result is recorded only after the next hop answered for it (or the attempt
//!   failed); a crash before that leaves it pending, so it is tried again: re-delivery happens
//!   only when SMTP itself cannot tell whether the peer took the message (RFC 5321 §6.1).
//! - DSNs are sent before the results that cause them are recorded: a crash in between may
//!   repeat a DSN but never loses one.
//! - A (message, destination) pair is worked on by at most one task at a time (`inflight`).
//!   `dispatch` holds the `inflight` lock while it reads the due messages, and a task records
//!   its results before it leaves `inflight`: so a snapshot read just before a task recorded
//!   a delivery can never start a second delivery of the same message.
//! - Each message's results are recorded as soon as the peer answered for it, before the next
//!   message is sent on the connection: a crash re-sends at most the messages whose
//!   transaction was in progress (one per open connection), never a whole batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use store::{
    AttemptResult, DsnNotify, OutboundEnvelope, OutboundRecipient, QueueId, QueueStore,
    QueuedMessage, RecipientStatus, Store, UnixTime,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ConnError, Connectors, TxEnvelope, TxRecipient};
use crate::config::{QueueConfig, SmarthostTls};
use crate::dkim::Signer;
use crate::dns::{Dns, DnsError};
use crate::dsn::{self, Action, DsnRecipient};

/// Messages per destination task; more become further tasks.
const MESSAGES_PER_TASK: usize = 50;
/// How many due messages one scheduling round reads.
const DUE_BATCH: usize = 1000;

fn now() -> UnixTime {
    chrono::Utc::now().timestamp()
}

/// What happened to one recipient in one attempt.
#[derive(Debug, Clone)]
enum Outcome {
    Delivered {
        remote: String,
        dsn_passed_on: bool,
    },
    Temporary {
        error: String,
        remote: Option<String>,
    },
    Permanent {
        status: String,
        error: String,
        remote: Option<String>,
    },
}

/// The work of one delivery task: messages and, per message, the recipient ids to try.
struct Work {
    msg: QueuedMessage,
    rcpts: Vec<i64>,
}

pub struct Engine {
    config: QueueConfig,
    queue: Arc<dyn QueueStore>,
    store: Arc<dyn Store>,
    dns: Dns,
    tls: Connectors,
    signer: Option<Signer>,
    global: Arc<Semaphore>,
    per_destination: Mutex<HashMap<String, Arc<Semaphore>>>,
    inflight: tokio::sync::Mutex<HashSet<(QueueId, String)>>,
}

impl Engine {
    pub fn new(
        config: QueueConfig,
        queue: Arc<dyn QueueStore>,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Engine>, String> {
        let dns = Dns::new(config.nameservers.as_deref(), config.dns_override.clone());
        Engine::with_dns(config, queue, store, dns)
    }

    pub fn with_dns(
        config: QueueConfig,
        queue: Arc<dyn QueueStore>,
        store: Arc<dyn Store>,
        dns: Dns,
    ) -> Result<Arc<Engine>, String> {
        let tls = Connectors::new().map_err(|e| format!("TLS client setup: {e}"))?;
        let signer = config
            .dkim_dir
            .clone()
            .map(|d| Signer::new(d, config.dkim_selectors.clone()));
        Ok(Arc::new(Engine {
            global: Arc::new(Semaphore::new(config.max_concurrent_deliveries.max(1))),
            config,
            queue,
            store,
            dns,
            tls,
            signer,
            per_destination: Mutex::new(HashMap::new()),
            inflight: tokio::sync::Mutex::new(HashSet::new()),
        }))
    }

    /// Runs the scheduler until `shutdown`: wakes on enqueue, and polls so that retries that
    /// came due and changes by the admin CLI (another process) are seen.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let notify = self.queue.queue_notifier();
        let mut last_cleanup = Instant::now();
        tracing::info!("outbound queue started");
        loop {
            let notified = notify.notified();
            if let Err(e) = self.dispatch().await {
                tracing::warn!(error = %e, "reading the queue failed");
            }
            if last_cleanup.elapsed() > Duration::from_secs(30) {
                last_cleanup = Instant::now();
                match self.queue.remove_finished().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(removed = n, "finished messages removed from the queue")
                    }
                    Err(e) => tracing::warn!(error = %e, "queue cleanup failed"),
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::info!("outbound queue stopped");
    }

    /// Reads the due work and starts a task per destination (and per batch of messages).
    async fn dispatch(self: &Arc<Self>) -> Result<(), store::StoreError> {
        let mut groups: BTreeMap<String, Vec<Work>> = BTreeMap::new();
        {
            // Held across the read: see the invariants above.
            let mut inflight = self.inflight.lock().await;
            let t = now();
            let due = self.queue.due_messages(t, DUE_BATCH).await?;
            for msg in due {
                let mut by_dest: BTreeMap<String, Vec<i64>> = BTreeMap::new();
                for r in &msg.recipients {
                    if r.status == RecipientStatus::Pending && r.next_attempt <= t {
                        let dest = match &self.config.smarthost {
                            Some(_) => String::new(),
                            None => r.domain.clone(),
                        };
                        by_dest.entry(dest).or_default().push(r.id);
                    }
                }
                for (dest, rcpts) in by_dest {
                    if inflight.insert((msg.id, dest.clone())) {
                        groups.entry(dest).or_default().push(Work {
                            msg: msg.clone(),
                            rcpts,
                        });
                    }
                }
            }
        }
        for (dest, mut work) in groups {
            while !work.is_empty() {
                let rest = work.split_off(work.len().min(MESSAGES_PER_TASK));
                let batch = std::mem::replace(&mut work, rest);
                let engine = Arc::clone(self);
                let dest = dest.clone();
                tokio::spawn(async move {
                    let ids: Vec<QueueId> = batch.iter().map(|w| w.msg.id).collect();
                    engine.deliver_destination(&dest, batch).await;
                    let mut inflight = engine.inflight.lock().await;
                    for id in ids {
                        inflight.remove(&(id, dest.clone()));
                    }
                });
            }
        }
        Ok(())
    }

    fn destination_permit(&self, dest: &str) -> Arc<Semaphore> {
        let mut map = self
            .per_destination
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        Arc::clone(
            map.entry(dest.to_string()).or_insert_with(|| {
                Arc::new(Semaphore::new(self.config.max_per_destination.max(1)))
            }),
        )
    }

    /// Delivers a batch of messages for one destination (a domain, or "" for the smarthost)
    /// over as few connections as possible, then records the results.
    async fn deliver_destination(self: &Arc<Self>, dest: &str, work: Vec<Work>) {
        let dest_sem = self.destination_permit(dest);
        let Ok(_dest_permit) = dest_sem.acquire_owned().await else {
            return;
        };
        let Ok(_permit) = Arc::clone(&self.global).acquire_owned().await else {
            return;
        };

        let mut results: Vec<HashMap<i64, Outcome>> = work.iter().map(|_| HashMap::new()).collect();
        match self.hosts(dest).await {
            Err(DnsError::Permanent(e)) => {
                let status = if e.contains("null MX") {
                    "5.1.10"
                } else {
                    "5.1.2"
                };
                for (w, res) in work.iter().zip(results.iter_mut()) {
                    for &r in &w.rcpts {
                        res.insert(
                            r,
                            Outcome::Permanent {
                                status: status.into(),
                                error: e.clone(),
                                remote: None,
                            },
                        );
                    }
                }
            }
            Err(DnsError::Temporary(e)) => {
                for (w, res) in work.iter().zip(results.iter_mut()) {
                    for &r in &w.rcpts {
                        res.insert(
                            r,
                            Outcome::Temporary {
                                error: e.clone(),
                                remote: None,
                            },
                        );
                    }
                }
            }
            Ok(hosts) => self.try_hosts(dest, &hosts, &work, &mut results).await,
        }
        // Messages already recorded by `try_hosts` have empty results here.
        for (w, res) in work.iter().zip(results) {
            self.finish(w, res).await;
        }
    }

    /// The hosts (name, port) to try, best first.
    async fn hosts(&self, dest: &str) -> Result<Vec<(String, u16)>, DnsError> {
        if let Some(s) = &self.config.smarthost {
            return Ok(vec![(s.host.clone(), s.port)]);
        }
        let port = self.config.remote_port;
        Ok(self
            .dns
            .mail_hosts(dest)
            .await?
            .into_iter()
            .map(|h| (h, port))
            .collect())
    }

    /// Tries the hosts in order until every message has an outcome, recording each message's
    /// results as soon as they are known; messages still open after the last host get its
    /// error as a temporary failure (recorded by the caller).
    async fn try_hosts(
        &self,
        dest: &str,
        hosts: &[(String, u16)],
        work: &[Work],
        results: &mut [HashMap<i64, Outcome>],
    ) {
        let mut last_error = String::from("no mail host to try");
        let mut next = 0usize; // the first message without an outcome
        'hosts: for (host, port) in hosts {
            let addrs = match self.dns.addresses(host).await {
                Ok(a) => a,
                Err(DnsError::Permanent(e) | DnsError::Temporary(e)) => {
                    last_error = e;
                    continue;
                }
            };
            for ip in addrs {
                if next >= work.len() {
                    break 'hosts;
                }
                let addr = SocketAddr::new(ip, *port);
                let mut client = match self.open(dest, host, addr).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::info!(host, %addr, error = %e, "mail host unavailable");
                        last_error = format!("{host} [{ip}]: {e}");
                        continue;
                    }
                };
                while next < work.len() {
                    let (w, res) = (&work[next], &mut results[next]);
                    match self.send_one(&mut client, host, w, res).await {
                        Ok(()) => {
                            // Recorded now, not after the batch (see the invariants above).
                            self.finish(w, std::mem::take(res)).await;
                            next += 1;
                        }
                        Err(e) => {
                            // The connection broke mid-transaction: the outcome is unknown, so
                            // this message is tried again on the next host (RFC 5321 §6.1).
                            last_error = format!("{host} [{ip}]: {e}");
                            res.clear();
                            break;
                        }
                    }
                }
                if next >= work.len() {
                    client.quit().await;
                    break 'hosts;
                }
            }
        }
        for (w, res) in work.iter().zip(results.iter_mut()).skip(next) {
            for &r in &w.rcpts {
                res.entry(r).or_insert_with(|| Outcome::Temporary {
                    error: last_error.clone(),
                    remote: None,
                });
            }
        }
    }

    /// Connects, reads the greeting, EHLO, STARTTLS (opportunistic unless required), AUTH.
    async fn open(&self, dest: &str, host: &str, addr: SocketAddr) -> Result<Client, ConnError> {
        let c = &self.config;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ConnError(format!("bad host name {host}")))?;
        let smarthost = c.smarthost.as_ref();
        let implicit = smarthost.is_some_and(|s| s.tls == SmarthostTls::Implicit);
        let required = c.tls_required.iter().any(|d| d.eq_ignore_ascii_case(dest))
            || smarthost.is_some_and(|s| s.tls == SmarthostTls::StartTls);
        let verify = c.tls_required.iter().any(|d| d.eq_ignore_ascii_case(dest));
        let connector = if verify {
            &self.tls.verified
        } else {
            &self.tls.opportunistic
        };
        let (mut client, greeting) = if implicit {
            Client::connect_tls(
                addr,
                connector,
                name.clone(),
                c.connect_timeout,
                c.command_timeout,
            )
            .await?
        } else {
            Client::connect(addr, c.connect_timeout, c.command_timeout).await?
        };
        if greeting.code != 220 {
            client.quit().await;
            return Err(ConnError(format!("greeting: {}", greeting.summary())));
        }
        let reply = client.ehlo(&c.hostname).await?;
        if !reply.is_positive() {
            return Err(ConnError(format!("EHLO: {}", reply.summary())));
        }
        let plain_ok = smarthost.is_none_or(|s| s.tls == SmarthostTls::None);
        if !client.tls && client.caps.starttls && !(smarthost.is_some() && plain_ok) {
            // RFC 3207 / RFC 7435: use TLS whenever offered.
            client = client.starttls(connector, name, &c.hostname).await?;
        } else if !client.tls && required {
            client.quit().await;
            return Err(ConnError("TLS required but STARTTLS not offered".into()));
        }
        if let Some(s) = smarthost
            && let (Some(user), Some(pass)) = (&s.username, &s.password)
        {
            if !client.tls && !addr.ip().is_loopback() {
                return Err(ConnError(
                    "refusing to send the smarthost password without TLS".into(),
                ));
            }
            let reply = client.auth_plain(user, pass).await?;
            if !reply.is_positive() {
                return Err(ConnError(format!("AUTH: {}", reply.summary())));
            }
        }
        Ok(client)
    }

    /// One message over an open connection; `Err` when the connection broke.
    async fn send_one(
        &self,
        client: &mut Client,
        host: &str,
        w: &Work,
        res: &mut HashMap<i64, Outcome>,
    ) -> Result<(), ConnError> {
        let body = match self.queue.queued_body(w.msg.id).await {
            Ok(b) => b,
            // Deleted by the admin meanwhile: nothing to record.
            Err(store::StoreError::NotFound(_)) => return Ok(()),
            Err(e) => {
                for &r in &w.rcpts {
                    res.insert(
                        r,
                        Outcome::Temporary {
                            error: format!("reading the queue: {e}"),
                            remote: None,
                        },
                    );
                }
                return Ok(());
            }
        };
        let rcpts: Vec<_> = w
            .msg
            .recipients
            .iter()
            .filter(|r| w.rcpts.contains(&r.id))
            .collect();
        // RFC 6531 §3.2: a message that needs SMTPUTF8 cannot go to a server without it.
        if w.msg.smtputf8 && !client.caps.smtputf8 {
            for r in &rcpts {
                res.insert(
                    r.id,
                    Outcome::Permanent {
                        status: "5.6.7".into(),
                        error: "the receiving server does not support SMTPUTF8".into(),
                        remote: Some(host.to_string()),
                    },
                );
            }
            return Ok(());
        }
        // DKIM: signed before each attempt (with that attempt's timestamp), never stored.
        let signed;
        let body: &[u8] = match self.signer.as_ref().and_then(|s| s.sign(&body)) {
            Some(header) => {
                let mut v = header.into_bytes();
                v.extend_from_slice(&body);
                signed = v;
                &signed
            }
            None => &body,
        };
        let env = TxEnvelope {
            sender: &w.msg.sender,
            recipients: rcpts
                .iter()
                .map(|r| TxRecipient {
                    address: &r.address,
                    notify: Some(notify_param(r.notify)),
                    orcpt: r.orcpt.as_deref(),
                })
                .collect(),
            envid: w.msg.envid.as_deref(),
            ret: w.msg.ret.map(|r| match r {
                store::DsnRet::Full => "FULL",
                store::DsnRet::Headers => "HDRS",
            }),
            smtputf8: w.msg.smtputf8,
            eight_bit: body.iter().any(|&b| b >= 0x80),
        };
        let outcome = client
            .transaction(&env, body, self.config.data_timeout)
            .await?;
        for (r, reply) in rcpts.iter().zip(outcome.per_recipient) {
            let remote = Some(host.to_string());
            let o = if reply.is_positive() {
                Outcome::Delivered {
                    remote: host.to_string(),
                    dsn_passed_on: client.caps.dsn,
                }
            } else if reply.is_permanent() {
                Outcome::Permanent {
                    status: dsn::status_for(reply.code, reply.enhanced_status()),
                    error: reply.summary(),
                    remote,
                }
            } else {
                Outcome::Temporary {
                    error: reply.summary(),
                    remote,
                }
            };
            tracing::info!(
                queue_id = w.msg.id,
                host,
                code = reply.code,
                "delivery attempt"
            );
            res.insert(r.id, o);
        }
        Ok(())
    }

    /// Turns outcomes into recorded results and DSNs.
    async fn finish(&self, w: &Work, outcomes: HashMap<i64, Outcome>) {
        if outcomes.is_empty() {
            return;
        }
        let t = now();
        let msg = &w.msg;
        let expired = t.saturating_sub(msg.created) >= self.config.max_age.as_secs() as i64;
        let mut results = Vec::new();
        let mut report = Vec::new();
        for r in msg
            .recipients
            .iter()
            .filter(|r| outcomes.contains_key(&r.id))
        {
            let Some(o) = outcomes.get(&r.id) else {
                continue;
            };
            let dsn_rcpt =
                |action, status: &str, diagnostic: &str, remote: &Option<String>| DsnRecipient {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    action,
                    status: status.to_string(),
                    diagnostic: Some(diagnostic.to_string()),
                    remote_mta: remote.clone(),
                };
            let (status, next, error) = match o {
                Outcome::Delivered {
                    remote,
                    dsn_passed_on,
                } => {
                    // RFC 3461 §5.2.2.2: a peer without DSN cannot report success; we say
                    // "relayed".
                    if r.notify.success && !dsn_passed_on {
                        report.push(dsn_rcpt(
                            Action::Relayed,
                            "2.0.0",
                            "delivered to the next hop",
                            &Some(remote.clone()),
                        ));
                    }
                    (RecipientStatus::Delivered, 0, None)
                }
                Outcome::Permanent {
                    status,
                    error,
                    remote,
                } => {
                    if r.notify.failure {
                        report.push(dsn_rcpt(Action::Failed, status, error, remote));
                    }
                    (RecipientStatus::Failed, 0, Some(error.clone()))
                }
                Outcome::Temporary { error, remote } if expired => {
                    // RFC 5321 §4.5.4.1: give up after the maximum queue lifetime; RFC 3463
                    // 4.4.7 "delivery time expired".
                    if r.notify.failure {
                        report.push(dsn_rcpt(
                            Action::Failed,
                            "4.4.7",
                            &format!("delivery time expired; last error: {error}"),
                            remote,
                        ));
                    }
                    (RecipientStatus::Failed, 0, Some(error.clone()))
                }
                Outcome::Temporary { error, .. } => {
                    let delay = self.config.backoff(r.attempts).as_secs() as i64;
                    (
                        RecipientStatus::Pending,
                        t.saturating_add(delay),
                        Some(error.clone()),
                    )
                }
            };
            results.push(AttemptResult {
                recipient: r.id,
                status,
                next_attempt: next,
                error,
                at: t,
            });
        }
        if !report.is_empty() {
            self.send_dsn(msg, &report).await;
        }
        // RFC 3464 §2.3.3 "delayed": once per message, for recipients still waiting.
        let waited = t.saturating_sub(msg.created) >= self.config.delay_notice.as_secs() as i64;
        if waited && !msg.delay_notified && !msg.sender.is_empty() {
            let delayed: Vec<DsnRecipient> = results
                .iter()
                .filter(|a| a.status == RecipientStatus::Pending)
                .filter_map(|a| msg.recipients.iter().find(|r| r.id == a.recipient))
                .filter(|r| r.notify.delay)
                .map(|r| DsnRecipient {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    action: Action::Delayed,
                    status: "4.4.1".into(),
                    diagnostic: results
                        .iter()
                        .find(|a| a.recipient == r.id)
                        .and_then(|a| a.error.clone()),
                    remote_mta: None,
                })
                .collect();
            if !delayed.is_empty() {
                self.send_dsn(msg, &delayed).await;
                if let Err(e) = self.queue.set_delay_notified(msg.id).await {
                    tracing::warn!(queue_id = msg.id, error = %e, "cannot record the delay notice");
                }
            }
        }
        if let Err(e) = self.queue.record_attempts(&results).await {
            tracing::warn!(queue_id = msg.id, error = %e, "cannot record delivery results");
        }
    }

    /// Sends a DSN to the message's sender: into the INBOX when local, else through the queue
    /// with the null sender. Never for a null sender (RFC 5321 §4.5.5, RFC 3464 §4).
    async fn send_dsn(&self, msg: &QueuedMessage, rcpts: &[DsnRecipient]) {
        if msg.sender.is_empty() {
            return;
        }
        let original = match self.queue.queued_body(msg.id).await {
            Ok(b) => b,
            Err(_) => Arc::new(Vec::new()),
        };
        let arrival = chrono::DateTime::from_timestamp(msg.created, 0)
            .map(|d| d.to_rfc2822())
            .unwrap_or_default();
        let bytes = match dsn::build(&self.config.hostname, msg, rcpts, &original, &arrival) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::warn!(queue_id = msg.id, error = %e, "cannot build the DSN");
                return;
            }
        };
        let result = self.deliver_dsn(&msg.sender, bytes).await;
        match result {
            Ok(()) => tracing::info!(queue_id = msg.id, recipients = rcpts.len(), "DSN sent"),
            Err(e) => tracing::warn!(queue_id = msg.id, error = %e, "cannot send the DSN"),
        }
    }

    async fn deliver_dsn(&self, to: &str, bytes: Arc<Vec<u8>>) -> Result<(), store::StoreError> {
        if let Ok(addr) = mail_types::Address::parse(to)
            && self.store.is_local_domain(addr.domain()).await?
        {
            let accounts = self.store.resolve_recipient(&addr).await?;
            if accounts.is_empty() {
                tracing::warn!("DSN for a local sender without a mailbox dropped");
                return Ok(());
            }
            self.store.deliver(bytes, now(), &accounts).await?;
            return Ok(());
        }
        let env = OutboundEnvelope {
            sender: String::new(),
            recipients: vec![OutboundRecipient {
                address: to.to_string(),
                orcpt: None,
                notify: DsnNotify::NEVER,
            }],
            envid: None,
            ret: None,
            account: None,
            smtputf8: false,
        };
        self.queue.enqueue(bytes, &env).await.map(|_| ())
    }
}

/// RFC 3461 §4.1 `NOTIFY=NEVER` or a comma list.
fn notify_param(n: DsnNotify) -> String {
    let mut v = Vec::new();
    if n.success {
        v.push("SUCCESS");
    }
    if n.failure {
        v.push("FAILURE");
    }
    if n.delay {
        v.push("DELAY");
    }
    if v.is_empty() {
        "NEVER".into()
    } else {
        v.join(",")
    }
}
