//! RFC 2449 §6.7 EXPIRE: the server's retention policy as CAPA announces it. The policy is
//! the server's (yubin's retention configuration, per domain and account); this crate only
//! asks it what to say.

use std::fmt;

/// The minimum number of days a retrieved message stays on the server, or never removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// `EXPIRE NEVER`: the server never deletes retrieved messages.
    Never,
    /// `EXPIRE n`: retrieved messages may be deleted `n` days after their first retrieval;
    /// 0 means the client may not leave mail on the server.
    Days(u32),
}

impl fmt::Display for Expire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expire::Never => f.write_str("NEVER"),
            Expire::Days(n) => write!(f, "{n}"),
        }
    }
}

/// Answers what EXPIRE to announce.
pub trait ExpirePolicy: fmt::Debug + Send + Sync {
    /// Before login: the shortest period of any user, and whether it varies per user (then
    /// announced with `USER`, RFC 2449 §6.7).
    fn before_login(&self) -> (Expire, bool);
    /// After login: the logged-in user's period (`address` in canonical form).
    fn for_user(&self, address: &str) -> Expire;
}

/// No retention for POP3: `EXPIRE NEVER` for everyone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverExpire;

impl ExpirePolicy for NeverExpire {
    fn before_login(&self) -> (Expire, bool) {
        (Expire::Never, false)
    }
    fn for_user(&self, _address: &str) -> Expire {
        Expire::Never
    }
}

/// The EXPIRE capability line for the state (`user`: the logged-in address, if any).
pub(crate) fn capability(policy: &dyn ExpirePolicy, user: Option<&str>) -> String {
    match user {
        Some(address) => format!("EXPIRE {}", policy.for_user(address)),
        None => match policy.before_login() {
            // RFC 2449 §6.7: "USER" says the value is per user; the one after login counts.
            (e @ Expire::Days(_), true) => format!("EXPIRE {e} USER"),
            (e, _) => format!("EXPIRE {e}"),
        },
    }
}
