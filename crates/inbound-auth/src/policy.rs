//! What to do with a message once its results are known: the configured action of each check,
//! and the one decision function. Pure, so every rule is unit-tested.
//!
//! The defaults are the careful ones (record, don't reject): only a DMARC failure under the
//! domain's own `p=reject` is refused, and `p=quarantine` goes to Junk (RFC 7489 §6.3, §6.7:
//! the receiver applies the domain's policy, subject to local policy).
//!
//! A temporary DNS failure never passes silently: when a check whose action is not `none`
//! cannot be completed, the message gets `451 4.4.3` and the sender tries again later
//! (RFC 7208 §8.6, RFC 6376 §6.1.2, RFC 7489 §6.6.3 allow a temporary rejection).

use std::time::Duration;

use crate::results::{MethodResult, Res};

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Record the result in Authentication-Results only.
    #[default]
    None,
    /// Deliver into the recipient's Junk mailbox (RFC 6154 `\Junk`).
    Junk,
    /// Refuse at the end of DATA with a 550.
    Reject,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "none" => Some(Action::None),
            "junk" => Some(Action::Junk),
            "reject" => Some(Action::Reject),
            _ => None,
        }
    }
}

/// The checks' settings.
#[derive(Debug, Clone)]
pub struct InboundAuthConfig {
    /// Whether mail arriving on the MX port without AUTH is checked at all.
    pub enabled: bool,
    /// Bound on one DNS query (each attempt).
    pub dns_timeout: Duration,
    /// Bound on each check of a message (all its DNS queries together).
    pub check_timeout: Duration,
    /// How many parsed DNS answers (TXT, MX, A, AAAA, PTR each) are kept, honouring TTLs.
    pub cache_entries: usize,
    pub actions: Actions,
}

impl Default for InboundAuthConfig {
    fn default() -> Self {
        InboundAuthConfig {
            enabled: true,
            dns_timeout: Duration::from_secs(5),
            check_timeout: Duration::from_secs(20),
            cache_entries: 10_000,
            actions: Actions::default(),
        }
    }
}

/// The action of each check on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// SPF `fail` for the MAIL FROM identity (RFC 7208 §8.4).
    pub spf_fail: Action,
    /// SPF `softfail` for the MAIL FROM identity (RFC 7208 §8.5).
    pub spf_softfail: Action,
    /// SPF `fail` for the HELO identity (RFC 7208 §2.3).
    pub helo_spf_fail: Action,
    /// Signed, and no DKIM signature verifies (RFC 6376 §6.1).
    pub dkim_fail: Action,
    /// An ARC chain that does not validate (RFC 8617 §5.2).
    pub arc_fail: Action,
    /// No forward-confirmed reverse DNS name (RFC 8601 §2.7.3).
    pub iprev_fail: Action,
    /// DMARC fails and the domain publishes `p=reject` (RFC 7489 §6.3).
    pub dmarc_reject: Action,
    /// DMARC fails and the domain publishes `p=quarantine`.
    pub dmarc_quarantine: Action,
}

impl Default for Actions {
    fn default() -> Self {
        Actions {
            spf_fail: Action::None,
            spf_softfail: Action::None,
            helo_spf_fail: Action::None,
            dkim_fail: Action::None,
            arc_fail: Action::None,
            iprev_fail: Action::None,
            dmarc_reject: Action::Reject,
            dmarc_quarantine: Action::Junk,
        }
    }
}

/// A domain's DMARC policy as far as it is known (RFC 7489 §6.3 `p=`/`sp=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
    /// No record, or it could not be fetched.
    Unknown,
}

/// Every result of one message, one field per check.
#[derive(Debug, Clone)]
pub struct Results {
    pub iprev: MethodResult,
    /// Absent when the HELO name is not a domain (RFC 7208 §2.3: an address literal).
    pub spf_helo: Option<MethodResult>,
    pub spf_mailfrom: MethodResult,
    /// One per DKIM-Signature; a single `dkim=none` when there is none.
    pub dkim: Vec<MethodResult>,
    pub arc: MethodResult,
    pub dmarc: MethodResult,
    pub dmarc_policy: DmarcPolicy,
}

impl Results {
    /// In the order they are rendered.
    pub fn all(&self) -> Vec<MethodResult> {
        let mut v = vec![self.iprev.clone()];
        v.extend(self.spf_helo.clone());
        v.push(self.spf_mailfrom.clone());
        v.extend(self.dkim.iter().cloned());
        v.push(self.arc.clone());
        v.push(self.dmarc.clone());
        v
    }
}

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Deliver,
    Junk {
        because: &'static str,
    },
    Refuse {
        code: u16,
        status: &'static str,
        text: String,
    },
}

/// One check's contribution, ranked: Reject > TempFail > Junk > Deliver. A certain refusal
/// wins over an uncertain one; an uncertain result wins over Junk, which it might turn into a
/// refusal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Deliver,
    Junk(&'static str),
    TempFail(&'static str),
    Reject(&'static str, &'static str, String),
}

fn step(action: Action, check: &'static str, status: &'static str, text: String) -> Step {
    match action {
        Action::None => Step::Deliver,
        Action::Junk => Step::Junk(check),
        Action::Reject => Step::Reject(check, status, text),
    }
}

/// A temporary error matters only when the check could have acted.
fn temp(action: Action, check: &'static str) -> Step {
    if action == Action::None {
        Step::Deliver
    } else {
        Step::TempFail(check)
    }
}

/// The decision for one message.
pub fn decide(a: &Actions, r: &Results) -> Disposition {
    let mut steps = Vec::new();
    // RFC 7372 §3.2: X.7.23 SPF validation failed.
    match r.spf_mailfrom.result {
        Res::Fail => steps.push(step(
            a.spf_fail,
            "spf",
            "5.7.23",
            "SPF validation failed".into(),
        )),
        Res::SoftFail => steps.push(step(
            a.spf_softfail,
            "spf",
            "5.7.23",
            "SPF validation failed (softfail)".into(),
        )),
        Res::TempError => steps.push(temp(a.spf_fail.max_with(a.spf_softfail), "spf")),
        _ => {}
    }
    if let Some(helo) = &r.spf_helo {
        match helo.result {
            Res::Fail => steps.push(step(
                a.helo_spf_fail,
                "spf",
                "5.7.23",
                "SPF validation of the HELO name failed".into(),
            )),
            Res::TempError => steps.push(temp(a.helo_spf_fail, "spf")),
            _ => {}
        }
    }
    // RFC 6376 §6.1: a message passes if any signature verifies.
    if !r.dkim.iter().any(|d| d.result == Res::Pass) {
        if r.dkim.iter().any(|d| d.result == Res::Fail) {
            // RFC 7372 §3.1: X.7.20 No passing DKIM signature found.
            steps.push(step(
                a.dkim_fail,
                "dkim",
                "5.7.20",
                "No passing DKIM signature found".into(),
            ));
        } else if r.dkim.iter().any(|d| d.result == Res::TempError) {
            steps.push(temp(a.dkim_fail, "dkim"));
        }
    }
    // RFC 8617 §5.2.2: 5.7.29 ARC validation failure.
    match r.arc.result {
        Res::Fail => steps.push(step(
            a.arc_fail,
            "arc",
            "5.7.29",
            "ARC validation failure".into(),
        )),
        Res::TempError => steps.push(temp(a.arc_fail, "arc")),
        _ => {}
    }
    // RFC 7372 §3.3: X.7.25 Reverse DNS validation failed.
    match r.iprev.result {
        Res::Fail | Res::PermError => steps.push(step(
            a.iprev_fail,
            "iprev",
            "5.7.25",
            "Reverse DNS validation failed".into(),
        )),
        Res::TempError => steps.push(temp(a.iprev_fail, "iprev")),
        _ => {}
    }
    let domain = r
        .dmarc
        .get("header.from")
        .unwrap_or("the sender")
        .to_string();
    match (r.dmarc.result, r.dmarc_policy) {
        // RFC 7489 §6.3 p=reject; §10.1 suggests 550 5.7.1.
        (Res::Fail, DmarcPolicy::Reject) => steps.push(step(
            a.dmarc_reject,
            "dmarc",
            "5.7.1",
            format!("Rejected by the DMARC policy of {domain}"),
        )),
        (Res::Fail, DmarcPolicy::Quarantine) => steps.push(step(
            a.dmarc_quarantine,
            "dmarc",
            "5.7.1",
            format!("Rejected by the DMARC policy of {domain}"),
        )),
        // The policy, or whether the message would pass, is unknown: it may be p=reject.
        (Res::TempError, DmarcPolicy::Reject | DmarcPolicy::Unknown) => {
            steps.push(temp(a.dmarc_reject.max_with(a.dmarc_quarantine), "dmarc"))
        }
        (Res::TempError, DmarcPolicy::Quarantine) => steps.push(temp(a.dmarc_quarantine, "dmarc")),
        _ => {}
    }
    match steps.into_iter().max().unwrap_or(Step::Deliver) {
        Step::Deliver => Disposition::Deliver,
        Step::Junk(because) => Disposition::Junk { because },
        Step::TempFail(check) => Disposition::Refuse {
            // RFC 3463 X.4.3: directory server failure (DNS).
            code: 451,
            status: "4.4.3",
            text: format!("Temporary DNS failure during the {check} check, try again later"),
        },
        Step::Reject(_, status, text) => Disposition::Refuse {
            code: 550,
            status,
            text,
        },
    }
}

impl Action {
    /// The stronger of two actions (Reject > Junk > None).
    fn max_with(self, other: Action) -> Action {
        let rank = |a: Action| match a {
            Action::None => 0,
            Action::Junk => 1,
            Action::Reject => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Results {
        Results {
            iprev: MethodResult::new("iprev", Res::Pass),
            spf_helo: None,
            spf_mailfrom: MethodResult::new("spf", Res::Pass),
            dkim: vec![MethodResult::new("dkim", Res::None)],
            arc: MethodResult::new("arc", Res::None),
            dmarc: MethodResult::new("dmarc", Res::Pass).prop("header.from", "b.example"),
            dmarc_policy: DmarcPolicy::Reject,
        }
    }

    #[test]
    fn defaults_record_and_only_dmarc_acts() {
        let a = Actions::default();
        let mut r = results();
        assert_eq!(decide(&a, &r), Disposition::Deliver);
        r.spf_mailfrom.result = Res::Fail;
        r.dkim[0].result = Res::Fail;
        r.iprev.result = Res::Fail;
        r.arc.result = Res::Fail;
        assert_eq!(decide(&a, &r), Disposition::Deliver);
        // Uncertain results of checks that would not act do not delay mail.
        r.spf_mailfrom.result = Res::TempError;
        r.iprev.result = Res::TempError;
        assert_eq!(decide(&a, &r), Disposition::Deliver);
        r.dmarc.result = Res::Fail;
        assert_eq!(
            decide(&a, &r),
            Disposition::Refuse {
                code: 550,
                status: "5.7.1",
                text: "Rejected by the DMARC policy of b.example".into()
            }
        );
        r.dmarc_policy = DmarcPolicy::Quarantine;
        assert_eq!(decide(&a, &r), Disposition::Junk { because: "dmarc" });
        r.dmarc_policy = DmarcPolicy::None;
        assert_eq!(decide(&a, &r), Disposition::Deliver);
    }

    #[test]
    fn dns_failure_that_decides_is_a_temporary_refusal() {
        let a = Actions::default();
        let mut r = results();
        r.dmarc.result = Res::TempError;
        r.dmarc_policy = DmarcPolicy::Unknown;
        let Disposition::Refuse { code, status, .. } = decide(&a, &r) else {
            panic!("expected a refusal");
        };
        assert_eq!((code, status), (451, "4.4.3"));
        // Known p=none: the outcome cannot change what happens.
        r.dmarc_policy = DmarcPolicy::None;
        assert_eq!(decide(&a, &r), Disposition::Deliver);
        // With every DMARC action off, nothing waits on DNS.
        let off = Actions {
            dmarc_reject: Action::None,
            dmarc_quarantine: Action::None,
            ..a
        };
        r.dmarc_policy = DmarcPolicy::Unknown;
        assert_eq!(decide(&off, &r), Disposition::Deliver);
    }

    #[test]
    fn per_check_actions_and_ranking() {
        let a = Actions {
            spf_fail: Action::Junk,
            dkim_fail: Action::Reject,
            iprev_fail: Action::Junk,
            ..Actions::default()
        };
        let mut r = results();
        r.spf_mailfrom.result = Res::Fail;
        assert_eq!(decide(&a, &r), Disposition::Junk { because: "spf" });
        // A temporary DKIM error outranks Junk; a passing signature beside it settles DKIM.
        r.dkim = vec![MethodResult::new("dkim", Res::TempError)];
        assert!(matches!(
            decide(&a, &r),
            Disposition::Refuse { code: 451, .. }
        ));
        r.dkim.push(MethodResult::new("dkim", Res::Pass));
        assert_eq!(decide(&a, &r), Disposition::Junk { because: "spf" });
        r.dkim = vec![MethodResult::new("dkim", Res::Fail)];
        assert_eq!(
            decide(&a, &r),
            Disposition::Refuse {
                code: 550,
                status: "5.7.20",
                text: "No passing DKIM signature found".into()
            }
        );
        assert_eq!(Action::parse("junk"), Some(Action::Junk));
        assert_eq!(Action::parse("quarantine"), None);
    }
}
