//! Deciding outcomes, without I/O: what a reply or an error means for one recipient, and what
//! to record and report given its attempts and the message's age (RFC 5321 §4.5.4 retries,
//! §4.5.4.1 giving up; RFC 3461/3464 which DSNs).

use std::time::Duration;

use store::{DsnNotify, RecipientStatus, UnixTime};

use crate::dns::DnsError;
use crate::dsn::{self, Action};
use crate::reply::ServerReply;

/// What happened to one recipient in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered {
        remote: String,
        /// The peer offered DSN (RFC 3461), so it reports success itself.
        dsn_passed_on: bool,
    },
    Temporary {
        error: String,
        remote: Option<String>,
    },
    Permanent {
        /// RFC 3463 status for the DSN.
        status: String,
        error: String,
        remote: Option<String>,
    },
}

/// The peer's reply to one recipient (RCPT, or the message data for it).
pub(crate) fn from_reply(reply: &ServerReply, host: &str, peer_has_dsn: bool) -> Outcome {
    let remote = Some(host.to_string());
    if reply.is_positive() {
        Outcome::Delivered {
            remote: host.to_string(),
            dsn_passed_on: peer_has_dsn,
        }
    } else if reply.is_permanent() {
        // RFC 5321 §4.2.1: 5yz is a permanent failure.
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
    }
}

/// The destination could not be resolved.
pub(crate) fn from_dns(e: &DnsError) -> Outcome {
    match e {
        DnsError::Permanent(e) => Outcome::Permanent {
            // RFC 7505 §4.3: a null MX means "does not accept mail" (X.1.10); else RFC 3463
            // X.1.2 "bad destination system address".
            status: if e.contains("null MX") {
                "5.1.10"
            } else {
                "5.1.2"
            }
            .into(),
            error: e.clone(),
            remote: None,
        },
        DnsError::Temporary(e) => Outcome::Temporary {
            error: e.clone(),
            remote: None,
        },
    }
}

/// RFC 6531 §3.2: a message that needs SMTPUTF8 cannot go to a server without it (X.6.7).
pub(crate) fn needs_smtputf8(host: &str) -> Outcome {
    Outcome::Permanent {
        status: "5.6.7".into(),
        error: "the receiving server does not support SMTPUTF8".into(),
        remote: Some(host.to_string()),
    }
}

/// The retry and expiry settings the decision depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_age: Duration,
    pub delay_notice: Duration,
}

impl Policy {
    /// The delay before attempt number `attempts + 1`: exponential from `retry_initial`,
    /// capped at `retry_max` (RFC 5321 §4.5.4.1: retry intervals grow; at least 30 minutes is
    /// suggested, the defaults start at 5).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX);
        self.retry_initial
            .saturating_mul(factor)
            .min(self.retry_max)
            .max(Duration::from_secs(1))
    }

    fn expired(&self, created: UnixTime, now: UnixTime) -> bool {
        now.saturating_sub(created) >= secs(self.max_age)
    }

    /// Whether a delay notice (RFC 3464 `Action: delayed`) is due for a message: once, after
    /// `delay_notice`, never to the null sender (RFC 3461 §6.2).
    pub fn delay_notice_due(
        &self,
        created: UnixTime,
        now: UnixTime,
        already_sent: bool,
        null_sender: bool,
    ) -> bool {
        now.saturating_sub(created) >= secs(self.delay_notice) && !already_sent && !null_sender
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A DSN block to send for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub action: Action,
    pub status: String,
    pub diagnostic: String,
    pub remote: Option<String>,
}

/// What to record for one recipient, and the DSN it calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub status: RecipientStatus,
    /// When to try again (only meaningful for `Pending`).
    pub next_attempt: UnixTime,
    pub error: Option<String>,
    pub report: Option<Report>,
}

/// Decides what an outcome means for a recipient with `attempts` earlier attempts, of a
/// message queued at `created`, at `now`.
pub(crate) fn decide(
    outcome: &Outcome,
    notify: DsnNotify,
    attempts: u32,
    created: UnixTime,
    now: UnixTime,
    policy: &Policy,
) -> Decision {
    match outcome {
        Outcome::Delivered {
            remote,
            dsn_passed_on,
        } => Decision {
            status: RecipientStatus::Delivered,
            next_attempt: 0,
            error: None,
            // RFC 3461 §5.2.2.2: a peer without DSN cannot report success; we say "relayed".
            report: (notify.success && !dsn_passed_on).then(|| Report {
                action: Action::Relayed,
                status: "2.0.0".into(),
                diagnostic: "delivered to the next hop".into(),
                remote: Some(remote.clone()),
            }),
        },
        Outcome::Permanent {
            status,
            error,
            remote,
        } => Decision {
            status: RecipientStatus::Failed,
            next_attempt: 0,
            error: Some(error.clone()),
            report: notify.failure.then(|| Report {
                action: Action::Failed,
                status: status.clone(),
                diagnostic: error.clone(),
                remote: remote.clone(),
            }),
        },
        // RFC 5321 §4.5.4.1: give up after the maximum queue lifetime; RFC 3463 4.4.7
        // "delivery time expired".
        Outcome::Temporary { error, remote } if policy.expired(created, now) => Decision {
            status: RecipientStatus::Failed,
            next_attempt: 0,
            error: Some(error.clone()),
            report: notify.failure.then(|| Report {
                action: Action::Failed,
                status: "4.4.7".into(),
                diagnostic: format!("delivery time expired; last error: {error}"),
                remote: remote.clone(),
            }),
        },
        Outcome::Temporary { error, .. } => Decision {
            status: RecipientStatus::Pending,
            next_attempt: now.saturating_add(secs(policy.backoff(attempts))),
            error: Some(error.clone()),
            report: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        retry_initial: Duration::from_secs(300),
        retry_max: Duration::from_secs(4 * 3600),
        max_age: Duration::from_secs(5 * 24 * 3600),
        delay_notice: Duration::from_secs(4 * 3600),
    };
    const ALL: DsnNotify = DsnNotify {
        success: true,
        failure: true,
        delay: true,
    };
    const T: UnixTime = 1_700_000_000;

    fn reply(code: u16, text: &str) -> ServerReply {
        ServerReply {
            code,
            lines: vec![text.to_string()],
        }
    }

    #[test]
    fn replies_classify_by_class() {
        assert_eq!(
            from_reply(&reply(250, "2.1.5 ok"), "mx.b.test", true),
            Outcome::Delivered {
                remote: "mx.b.test".into(),
                dsn_passed_on: true
            }
        );
        assert_eq!(
            from_reply(&reply(550, "5.1.1 no such user"), "mx.b.test", false),
            Outcome::Permanent {
                status: "5.1.1".into(),
                error: "550 5.1.1 no such user".into(),
                remote: Some("mx.b.test".into())
            }
        );
        // Without an enhanced code the class gives the status (RFC 3463 §3.1).
        let Outcome::Permanent { status, .. } = from_reply(&reply(554, "no"), "h", false) else {
            panic!("554 is permanent");
        };
        assert_eq!(status, "5.0.0");
        assert_eq!(
            from_reply(&reply(451, "4.3.0 later"), "h", false),
            Outcome::Temporary {
                error: "451 4.3.0 later".into(),
                remote: Some("h".into())
            }
        );
    }

    #[test]
    fn dns_errors() {
        let null = from_dns(&DnsError::Permanent("b.test has a null MX".into()));
        assert!(matches!(null, Outcome::Permanent { ref status, .. } if status == "5.1.10"));
        let gone = from_dns(&DnsError::Permanent("NXDOMAIN".into()));
        assert!(matches!(gone, Outcome::Permanent { ref status, .. } if status == "5.1.2"));
        assert!(matches!(
            from_dns(&DnsError::Temporary("SERVFAIL".into())),
            Outcome::Temporary { remote: None, .. }
        ));
    }

    #[test]
    fn delivered_reports_relayed_only_without_peer_dsn_and_when_asked() {
        let relayed = Outcome::Delivered {
            remote: "h".into(),
            dsn_passed_on: false,
        };
        let d = decide(&relayed, ALL, 0, T, T, &POLICY);
        assert_eq!(d.status, RecipientStatus::Delivered);
        let report = d.report.expect("relayed DSN");
        assert_eq!(
            (report.action, report.status.as_str()),
            (Action::Relayed, "2.0.0")
        );
        assert_eq!(
            decide(&relayed, DsnNotify::default(), 0, T, T, &POLICY).report,
            None
        );
        let passed = Outcome::Delivered {
            remote: "h".into(),
            dsn_passed_on: true,
        };
        assert_eq!(decide(&passed, ALL, 0, T, T, &POLICY).report, None);
    }

    #[test]
    fn permanent_fails_and_reports_when_asked() {
        let o = Outcome::Permanent {
            status: "5.1.1".into(),
            error: "550 5.1.1 no".into(),
            remote: Some("h".into()),
        };
        let d = decide(&o, ALL, 3, T, T, &POLICY);
        assert_eq!(d.status, RecipientStatus::Failed);
        assert_eq!(d.error.as_deref(), Some("550 5.1.1 no"));
        assert_eq!(d.report.expect("failure DSN").status, "5.1.1");
        assert_eq!(decide(&o, DsnNotify::NEVER, 3, T, T, &POLICY).report, None);
    }

    #[test]
    fn temporary_backs_off_then_expires() {
        let o = Outcome::Temporary {
            error: "451 later".into(),
            remote: None,
        };
        let d = decide(&o, ALL, 0, T, T, &POLICY);
        assert_eq!(
            (d.status, d.next_attempt, d.report),
            (RecipientStatus::Pending, T + 300, None)
        );
        // Doubling per attempt, capped at retry_max.
        assert_eq!(decide(&o, ALL, 2, T, T, &POLICY).next_attempt, T + 1200);
        assert_eq!(
            decide(&o, ALL, 30, T, T, &POLICY).next_attempt,
            T + 4 * 3600
        );
        // At max_age: failed with 4.4.7, the last error in the diagnostic.
        let old = T - 5 * 24 * 3600;
        let d = decide(&o, ALL, 9, old, T, &POLICY);
        assert_eq!(d.status, RecipientStatus::Failed);
        let report = d.report.expect("expiry DSN");
        assert_eq!(report.status, "4.4.7");
        assert!(
            report.diagnostic.ends_with("last error: 451 later"),
            "{report:?}"
        );
        assert_eq!(
            decide(&o, DsnNotify::NEVER, 9, old, T, &POLICY).report,
            None
        );
        assert_eq!(
            decide(&o, ALL, 9, old + 1, T, &POLICY).status,
            RecipientStatus::Pending
        );
    }

    #[test]
    fn delay_notice_once_after_the_delay_never_to_null_sender() {
        let after = T + 4 * 3600;
        assert!(POLICY.delay_notice_due(T, after, false, false));
        assert!(!POLICY.delay_notice_due(T, after - 1, false, false));
        assert!(!POLICY.delay_notice_due(T, after, true, false));
        assert!(!POLICY.delay_notice_due(T, after, false, true));
    }

    #[test]
    fn smtputf8_refusal_is_permanent_5_6_7() {
        assert!(
            matches!(needs_smtputf8("h"), Outcome::Permanent { ref status, .. } if status == "5.6.7")
        );
    }
}
