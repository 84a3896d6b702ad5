//! yubin's metrics: every metric name in one place (`docs/metrics.md` lists them with their
//! labels), and handle tables that make recording cheap on hot paths.
//!
//! The protocol crates record through the `metrics` facade; the binary installs the
//! Prometheus recorder at start (`yubin serve`) and renders it at `GET /metrics`. Without a
//! recorder (unit tests, CLI commands) every call is a no-op.
//!
//! Cost: a `metrics` macro with a dynamic label value builds a `Vec` of labels and hashes the
//! key on every call. On the per-command and per-connection paths the handles are therefore
//! registered once ([`CommandTable`], [`ConnMetrics`]) and recording is an atomic operation.
//! Label values are always from fixed sets (never an address, a user or a host name), so the
//! number of series stays small and bounded.

use std::sync::OnceLock;
use std::time::Duration;

mod activity;
pub use activity::{ActivitySink, auth_failure_from, set_activity_sink};

use metrics::{Counter, Gauge, Histogram};

/// Connections accepted, by `protocol` and `listener` (counter).
pub const CONNECTIONS_ACCEPTED: &str = "yubin_connections_accepted_total";
/// Connections open now, by `protocol` and `listener` (gauge).
pub const CONNECTIONS_OPEN: &str = "yubin_connections_open";
/// Connections refused at accept, by `protocol`, `listener` and `reason` (counter).
pub const CONNECTIONS_REFUSED: &str = "yubin_connections_refused_total";
/// Command latency, by `protocol` and `command` (histogram, seconds; its `_count` is the
/// number of commands).
pub const COMMAND_DURATION: &str = "yubin_command_duration_seconds";
/// Authentication attempts, by `protocol`, `mechanism` and `result` (counter).
pub const AUTH_ATTEMPTS: &str = "yubin_auth_attempts_total";
/// Messages accepted by SMTP (250 after DATA/BDAT), by `listener` kind (counter).
pub const SMTP_MESSAGES_ACCEPTED: &str = "yubin_smtp_messages_accepted_total";
/// SMTP refusals (4xx/5xx to MAIL, RCPT, DATA or the connection), by `reason` (counter).
pub const SMTP_REJECTIONS: &str = "yubin_smtp_rejections_total";
/// Messages waiting in the outbound queue (gauge, at scrape time).
pub const QUEUE_MESSAGES: &str = "yubin_queue_messages";
/// Age of the oldest message in the outbound queue (gauge, seconds, at scrape time).
pub const QUEUE_OLDEST_AGE: &str = "yubin_queue_oldest_message_age_seconds";
/// Outbound delivery attempts per recipient, by `result` (counter).
pub const QUEUE_DELIVERY_ATTEMPTS: &str = "yubin_queue_delivery_attempts_total";
/// Store latency, by `operation` (histogram, seconds).
pub const STORE_DURATION: &str = "yubin_store_operation_duration_seconds";
/// Bans in force now (gauge, at scrape time).
pub const BANS_ACTIVE: &str = "yubin_bans_active";
/// Bans issued by the login guard, by `reason` (counter).
pub const BANS_ISSUED: &str = "yubin_bans_issued_total";
/// Start time of the process, Unix seconds (gauge).
pub const START_TIME: &str = "yubin_start_time_seconds";
/// Tokio tasks alive now (gauge, at scrape time): a count that keeps growing under a steady
/// load is a task leak (the soak run, docs/soak.md, watches it).
pub const TOKIO_TASKS_ALIVE: &str = "yubin_tokio_tasks_alive";

/// The histogram buckets of every `*_seconds` histogram: 0.5 ms to 30 s. SMTP DATA with an
/// fsync takes a few milliseconds, an argon2 login ~20 ms, a slow client minutes (+Inf).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One latency histogram per command of a protocol, registered on first use (after the
/// recorder is installed: sessions start only after that).
pub struct CommandTable {
    protocol: &'static str,
    /// The command names; the last one is the catch-all ("other").
    names: &'static [&'static str],
    handles: OnceLock<Box<[Histogram]>>,
}

impl CommandTable {
    /// `names` must end with the catch-all name; an index beyond it records as the catch-all.
    pub const fn new(protocol: &'static str, names: &'static [&'static str]) -> CommandTable {
        CommandTable {
            protocol,
            names,
            handles: OnceLock::new(),
        }
    }

    /// The index of `name` (an exact, upper-case command name), else the catch-all.
    pub fn index_of(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| *n == name)
            .unwrap_or(self.names.len() - 1)
    }

    /// Records one command of `self.names[index]` that took `elapsed`.
    pub fn record(&self, index: usize, elapsed: Duration) {
        let handles = self.handles.get_or_init(|| {
            self.names
                .iter()
                .map(|name| {
                    metrics::histogram!(COMMAND_DURATION, "protocol" => self.protocol, "command" => *name)
                })
                .collect()
        });
        let i = index.min(handles.len() - 1);
        handles[i].record(elapsed.as_secs_f64());
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    /// `[limits] max_connections` or `max_connections_per_ip`.
    TooMany,
    /// `[limits] connection_rate_per_ip`.
    Rate,
    /// The address is banned by the login guard.
    Banned,
}

/// The connection metrics of one listener, registered when its accept loop starts.
#[derive(Clone)]
pub struct ConnMetrics {
    accepted: Counter,
    open: Gauge,
    refused: [Counter; 3],
}

impl ConnMetrics {
    pub fn new(protocol: &'static str, listener: &'static str) -> ConnMetrics {
        let refused = |reason: &'static str| metrics::counter!(CONNECTIONS_REFUSED, "protocol" => protocol, "listener" => listener, "reason" => reason);
        ConnMetrics {
            accepted: metrics::counter!(CONNECTIONS_ACCEPTED, "protocol" => protocol, "listener" => listener),
            open: metrics::gauge!(CONNECTIONS_OPEN, "protocol" => protocol, "listener" => listener),
            refused: [refused("limit"), refused("rate"), refused("banned")],
        }
    }

    /// A connection was accepted; it counts as open until the returned guard is dropped.
    pub fn accepted(&self) -> OpenConnection {
        self.accepted.increment(1);
        self.open.increment(1.0);
        OpenConnection(self.open.clone())
    }

    pub fn refused(&self, why: ConnRefusal) {
        let i = match why {
            ConnRefusal::TooMany => 0,
            ConnRefusal::Rate => 1,
            ConnRefusal::Banned => 2,
        };
        self.refused[i].increment(1);
    }
}

/// Decrements the open-connections gauge when dropped.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The result of an authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Success,
    /// Wrong user or password.
    Failure,
    /// Refused without checking: the address is banned.
    Banned,
    /// The directory could not be read.
    Error,
}

impl AuthResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Success => "success",
            AuthResult::Failure => "failure",
            AuthResult::Banned => "banned",
            AuthResult::Error => "error",
        }
    }
}

/// Counts one authentication attempt. `mechanism` is from a fixed set per protocol ("PLAIN",
/// "LOGIN", "SCRAM-SHA-256", "USER" for POP3 USER/PASS, "LOGIN" for IMAP LOGIN). Not a hot
/// path (each attempt checks an argon2 hash), so the labels are built per call.
pub fn auth_attempt(protocol: &'static str, mechanism: &'static str, result: AuthResult) {
    metrics::counter!(AUTH_ATTEMPTS, "protocol" => protocol, "mechanism" => mechanism, "result" => result.as_str())
        .increment(1);
}

/// Why SMTP refused a client, a transaction or a recipient (a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// RCPT to another domain without authentication (550 5.7.1).
    RelayDenied,
    /// RCPT to a local address that does not exist (550 5.1.1).
    UnknownUser,
    /// The recipient's mailbox is full (452/552).
    OverQuota,
    /// SPF/DKIM/DMARC checks refused the message (`[inbound_auth]`).
    InboundAuth,
    /// Greylisting asked the client to come back later (451 4.7.1).
    Greylisted,
    /// The client is listed in a DNS blocklist (554 5.7.1 greeting).
    Dnsbl,
    /// A sending or message rate limit (450/451 4.7.1).
    RateLimit,
    /// The message is larger than `max_message_size` (552).
    Size,
    /// Submission without authentication (530).
    AuthRequired,
    /// The sender address is not the authenticated user's (553 5.7.1).
    SenderNotOwned,
    /// Too many recipients in one transaction (452 4.5.3).
    TooManyRecipients,
    /// An invalid or spoofed HELO/EHLO name.
    Helo,
    /// Talked before the greeting or pipelined without PIPELINING (554 5.5.0).
    EarlyTalker,
    /// The store failed; the client retries (451).
    Temporary,
    /// Any other refusal.
    Other,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::RelayDenied => "relay_denied",
            Rejection::UnknownUser => "unknown_user",
            Rejection::OverQuota => "over_quota",
            Rejection::InboundAuth => "inbound_auth",
            Rejection::Greylisted => "greylisted",
            Rejection::Dnsbl => "dnsbl",
            Rejection::RateLimit => "rate_limit",
            Rejection::Size => "size",
            Rejection::AuthRequired => "auth_required",
            Rejection::SenderNotOwned => "sender_not_owned",
            Rejection::TooManyRecipients => "too_many_recipients",
            Rejection::Helo => "helo",
            Rejection::EarlyTalker => "early_talker",
            Rejection::Temporary => "temporary",
            Rejection::Other => "other",
        }
    }

    pub const ALL: [Rejection; 15] = [
        Rejection::RelayDenied,
        Rejection::UnknownUser,
        Rejection::OverQuota,
        Rejection::InboundAuth,
        Rejection::Greylisted,
        Rejection::Dnsbl,
        Rejection::RateLimit,
        Rejection::Size,
        Rejection::AuthRequired,
        Rejection::SenderNotOwned,
        Rejection::TooManyRecipients,
        Rejection::Helo,
        Rejection::EarlyTalker,
        Rejection::Temporary,
        Rejection::Other,
    ];
}

static REJECTIONS: OnceLock<Box<[Counter]>> = OnceLock::new();

/// Counts one SMTP refusal.
pub fn smtp_rejected(why: Rejection) {
    let handles = REJECTIONS.get_or_init(|| {
        Rejection::ALL
            .iter()
            .map(|r| metrics::counter!(SMTP_REJECTIONS, "reason" => r.as_str()))
            .collect()
    });
    if let Some(i) = Rejection::ALL.iter().position(|r| *r == why) {
        handles[i].increment(1);
    }
    activity::refused();
}

static ACCEPTED: OnceLock<Counter> = OnceLock::new();

/// Counts one message accepted by SMTP (its 250 after the data).
pub fn smtp_message_accepted() {
    ACCEPTED
        .get_or_init(|| metrics::counter!(SMTP_MESSAGES_ACCEPTED))
        .increment(1);
    activity::accepted();
}

/// The result of one outbound delivery attempt to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    Delivered,
    /// A temporary failure: retried later.
    Deferred,
    /// A permanent failure (or the retries ran out): a bounce is sent.
    Bounced,
}

/// Counts one outbound delivery attempt.
pub fn delivery_attempt(result: DeliveryResult) {
    let c = match result {
        DeliveryResult::Delivered => {
            metrics::counter!(QUEUE_DELIVERY_ATTEMPTS, "result" => "delivered")
        }
        DeliveryResult::Deferred => {
            metrics::counter!(QUEUE_DELIVERY_ATTEMPTS, "result" => "deferred")
        }
        DeliveryResult::Bounced => {
            metrics::counter!(QUEUE_DELIVERY_ATTEMPTS, "result" => "bounced")
        }
    };
    c.increment(1);
}

/// A store operation whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Delivering an arriving message to its recipients' INBOXes (SMTP, `yubin deliver`).
    Deliver,
    /// IMAP APPEND.
    Append,
    /// Putting a submitted message into the outbound queue.
    Enqueue,
}

static STORE_OPS: OnceLock<[Histogram; 3]> = OnceLock::new();

/// Records how long a store operation took.
pub fn store_latency(op: StoreOp, elapsed: Duration) {
    let h = STORE_OPS.get_or_init(|| {
        [
            metrics::histogram!(STORE_DURATION, "operation" => "deliver"),
            metrics::histogram!(STORE_DURATION, "operation" => "append"),
            metrics::histogram!(STORE_DURATION, "operation" => "enqueue"),
        ]
    });
    let i = match op {
        StoreOp::Deliver => 0,
        StoreOp::Append => 1,
        StoreOp::Enqueue => 2,
    };
    h[i].record(elapsed.as_secs_f64());
}

/// Counts one ban issued by the login guard; `reason` is the guard's fixed reason name.
pub fn ban_issued(reason: &'static str) {
    metrics::counter!(BANS_ISSUED, "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_fall_into_the_catch_all() {
        static T: CommandTable = CommandTable::new("x", &["A", "B", "other"]);
        assert_eq!(T.index_of("B"), 1);
        assert_eq!(T.index_of("ZZZ"), 2);
        // Without a recorder, recording is a no-op and an out-of-range index is clamped.
        T.record(99, Duration::from_millis(1));
    }
}
