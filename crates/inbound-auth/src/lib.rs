//! Authentication of arriving mail: SPF (RFC 7208) on the HELO and MAIL FROM identities, DKIM
//! (RFC 6376) on every signature, DMARC (RFC 7489) alignment and policy, ARC (RFC 8617) chain
//! validation and iprev (RFC 8601 §2.7.3), all through mail-auth, with DNS answers cached for
//! their TTL. The results become one `Authentication-Results:` field (RFC 8601) and a
//! [`Disposition`]: deliver, deliver into Junk, or refuse (permanently, or for now when DNS
//! failed and the result would decide).
//!
//! The SMTP session only calls [`Checker::begin`] at MAIL FROM, [`Pending::finish`] at the
//! end of data, and [`strip_forged`] on the message it stores.
//!
//! Not implemented: DMARC reports (RFC 7489 §7), ARC sealing (we validate only), DKIM
//! ATPS (RFC 6541), overriding a DMARC failure because of a passing ARC chain (RFC 8617 §7.2
//! leaves that to local policy), the DMARC `pct=` sampling (removed by DMARCbis).

mod cache;
mod checker;
mod policy;
mod render;
mod results;
mod strip;

pub use checker::{Checker, Pending, StaticName, Verdict};
pub use policy::{Action, Actions, Disposition, DmarcPolicy, InboundAuthConfig, Results, decide};
pub use results::{MethodResult, Res, render};
pub use strip::strip_forged;
