//! mail-auth's outputs as RFC 8601 results: the result keyword of each method, the reason,
//! and the properties that say what was checked.

use std::net::IpAddr;

use base64::Engine;
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy;
use mail_auth::{
    ArcOutput, DkimOutput, DkimResult, DmarcOutput, DmarcResult, Error, IprevOutput, IprevResult,
    SpfOutput, SpfResult,
};

use crate::policy::DmarcPolicy;
use crate::results::{MethodResult, Res};

/// RFC 8601 §2.7.2 (RFC 7208 §2.6 results), with the identity checked.
pub(crate) fn spf_result(o: &SpfOutput, property: &'static str, identity: &str) -> MethodResult {
    let res = match o.result() {
        SpfResult::Pass => Res::Pass,
        SpfResult::Fail => Res::Fail,
        SpfResult::SoftFail => Res::SoftFail,
        SpfResult::Neutral => Res::Neutral,
        SpfResult::TempError => Res::TempError,
        SpfResult::PermError => Res::PermError,
        SpfResult::None => Res::None,
    };
    MethodResult::new("spf", res).prop(property, identity)
}

/// One result per DKIM-Signature (RFC 8601 §2.7.1), `dkim=none` for an unsigned message.
/// Properties: `header.d`, `header.i`, `header.s` and the first 8 characters of `b=`
/// (RFC 6008 §2) so a reader can tell two signatures of one domain apart.
pub(crate) fn dkim_results(outputs: &[DkimOutput<'_>]) -> Vec<MethodResult> {
    if outputs.is_empty() {
        return vec![MethodResult::new("dkim", Res::None)];
    }
    outputs
        .iter()
        .map(|o| {
            let (res, reason) = match o.result() {
                DkimResult::Pass => (Res::Pass, None),
                // RFC 6376 §6.1.3: a body hash that does not verify is a verification failure
                // (PERMFAIL "body hash did not verify"), `fail` in RFC 8601 §2.7.1 terms;
                // mail-auth calls it Neutral.
                DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)) => {
                    (Res::Fail, Some("body hash did not verify".to_string()))
                }
                DkimResult::Neutral(e) => (Res::Neutral, Some(e.to_string())),
                DkimResult::Fail(e) => (Res::Fail, Some(e.to_string())),
                DkimResult::PermError(e) => (Res::PermError, Some(e.to_string())),
                DkimResult::TempError(e) => (Res::TempError, Some(e.to_string())),
                DkimResult::None => (Res::None, None),
            };
            let mut r = MethodResult::new("dkim", res);
            r.reason = reason;
            if let Some(sig) = o.signature() {
                r = r.prop("header.d", sig.d.as_str());
                if !sig.i.is_empty() {
                    r = r.prop("header.i", sig.i.as_str());
                }
                r = r.prop("header.s", sig.s.as_str());
                if let Some(prefix) = sig.b.get(..6) {
                    let b = base64::engine::general_purpose::STANDARD.encode(prefix);
                    r = r.prop("header.b", b);
                }
            }
            r
        })
        .collect()
}

/// RFC 8617 §10.2 (`arc` method: pass, fail, none) with `smtp.remote-ip`.
pub(crate) fn arc_result(o: &ArcOutput<'_>, ip: IpAddr) -> MethodResult {
    let (res, reason) = match o.result() {
        DkimResult::Pass => (Res::Pass, None),
        DkimResult::None => (Res::None, None),
        DkimResult::TempError(e) => (Res::TempError, Some(e.to_string())),
        DkimResult::Neutral(e) | DkimResult::Fail(e) | DkimResult::PermError(e) => {
            (Res::Fail, Some(e.to_string()))
        }
    };
    let mut r = MethodResult::new("arc", res);
    r.reason = reason;
    r.prop("smtp.remote-ip", ip.to_string())
}

/// RFC 7489 §11.2 (`dmarc` method, `header.from`), with the policy applied
/// (`policy.dmarc`), and the policy for the decision.
pub(crate) fn dmarc_result(o: &DmarcOutput) -> (MethodResult, DmarcPolicy) {
    let res = match o.result() {
        DmarcResult::Pass => Res::Pass,
        DmarcResult::Fail(_) => Res::Fail,
        DmarcResult::TempError(_) => Res::TempError,
        DmarcResult::PermError(_) => Res::PermError,
        DmarcResult::None => Res::None,
    };
    let policy = match (o.dmarc_record().is_some(), o.policy()) {
        (false, _) => DmarcPolicy::Unknown,
        (true, Policy::Reject) => DmarcPolicy::Reject,
        (true, Policy::Quarantine) => DmarcPolicy::Quarantine,
        // RFC 7489 §6.6.3: a record without a valid policy is treated as p=none.
        (true, Policy::None | Policy::Unspecified) => DmarcPolicy::None,
    };
    let mut r = MethodResult::new("dmarc", res);
    if !o.domain().is_empty() {
        r = r.prop("header.from", o.domain());
    }
    let p = match policy {
        DmarcPolicy::Reject => Some("reject"),
        DmarcPolicy::Quarantine => Some("quarantine"),
        DmarcPolicy::None => Some("none"),
        DmarcPolicy::Unknown => None,
    };
    if let Some(p) = p {
        r = r.prop("policy.dmarc", p);
    }
    (r, policy)
}

/// RFC 8601 §2.7.3 iprev, with the address checked as `policy.iprev` (§3).
pub(crate) fn iprev_result(o: &IprevOutput, ip: IpAddr) -> MethodResult {
    let (res, reason) = match o.result() {
        IprevResult::Pass => (Res::Pass, None),
        IprevResult::Fail(e) => (Res::Fail, Some(e.to_string())),
        IprevResult::TempError(e) => (Res::TempError, Some(e.to_string())),
        IprevResult::PermError(e) => (Res::PermError, Some(e.to_string())),
        IprevResult::None => (Res::None, None),
    };
    let mut r = MethodResult::new("iprev", res);
    r.reason = reason;
    r.prop("policy.iprev", ip.to_string())
}
