//! The server-side session table of the account pages. The browser holds only a random
//! 256-bit token (the cookie); everything else stays here, in memory: a restart signs
//! everyone out, which is acceptable for a settings page and keeps no secret on disk.
//!
//! A session ends after `idle` without a request, `absolute` after the login whatever the
//! activity (OWASP Session Management: both timeouts), at logout, and when the account's
//! password is changed elsewhere ([`Sessions::end_others`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::AccountId;

/// 32 random bytes from the OS, hex-encoded (256 bits: not guessable, OWASP's minimum is 64).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    hex::encode(b)
}

/// Compares two tokens in constant time (the CSRF token, the login form's token).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: AccountId,
    /// The canonical address (from the directory).
    pub address: String,
    /// The token every POST of this session carries in a hidden field.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// The timeouts and the table's size limit.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
    /// Sessions at most; a login beyond it is refused (after expired ones are swept).
    pub max: usize,
}

pub struct Sessions {
    limits: SessionLimits,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            limits,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.last_seen) < self.limits.idle
            && now.saturating_duration_since(s.created) < self.limits.absolute
    }

    /// A new session for the account; returns its token, or `None` when the table is full.
    pub fn create(&self, account: AccountId, address: &str, now: Instant) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.limits.max {
            map.retain(|_, s| {
                now.saturating_duration_since(s.last_seen) < self.limits.idle
                    && now.saturating_duration_since(s.created) < self.limits.absolute
            });
            if map.len() >= self.limits.max {
                return None;
            }
        }
        let token = random_token();
        map.insert(
            token.clone(),
            Session {
                account,
                address: address.to_string(),
                csrf: random_token(),
                created: now,
                last_seen: now,
            },
        );
        Some(token)
    }

    /// The live session of `token`, its idle clock restarted; an expired one is removed.
    pub fn touch(&self, token: &str, now: Instant) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.live(map.get(token)?, now);
        if !live {
            map.remove(token);
            return None;
        }
        let s = map.get_mut(token)?;
        s.last_seen = now;
        Some(s.clone())
    }

    /// Logout.
    pub fn end(&self, token: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(token);
    }

    /// Ends every session of `account` except `keep` (after a password change).
    pub fn end_others(&self, account: AccountId, keep: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|t, s| s.account != account || t == keep);
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            max: 3,
        }
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let s = Sessions::new(limits());
        let t0 = Instant::now();
        let a = AccountId(1);
        let tok = s.create(a, "a@x.test", t0).unwrap();
        assert_eq!(tok.len(), 64);
        // Activity every 20 minutes keeps it alive...
        let mut now = t0;
        for _ in 0..30 {
            now += Duration::from_secs(20 * 60);
            assert!(s.touch(&tok, now).is_some(), "alive at {:?}", now - t0);
        }
        // ...until 12 hours after the login, activity or not.
        now = t0 + Duration::from_secs(12 * 3600);
        assert!(s.touch(&tok, now).is_none());
        assert!(s.is_empty(), "an expired session is removed");
        // 30 idle minutes end one.
        let tok = s.create(a, "a@x.test", t0).unwrap();
        assert!(s.touch(&tok, t0 + Duration::from_secs(29 * 60)).is_some());
        assert!(s.touch(&tok, t0 + Duration::from_secs(59 * 60)).is_none());
        assert!(s.touch("not-a-token", t0).is_none());
    }

    #[test]
    fn logout_other_sessions_and_the_size_limit() {
        let s = Sessions::new(limits());
        let t0 = Instant::now();
        let (a, b) = (AccountId(1), AccountId(2));
        let a1 = s.create(a, "a@x.test", t0).unwrap();
        let a2 = s.create(a, "a@x.test", t0).unwrap();
        let b1 = s.create(b, "b@x.test", t0).unwrap();
        assert_ne!(a1, a2);
        assert_ne!(
            s.touch(&a1, t0).unwrap().csrf,
            s.touch(&a2, t0).unwrap().csrf
        );
        // Full: refused until something expires.
        assert!(s.create(b, "b@x.test", t0).is_none());
        s.end_others(a, &a2);
        assert!(s.touch(&a1, t0).is_none());
        assert!(s.touch(&a2, t0).is_some());
        assert!(s.touch(&b1, t0).is_some());
        s.end(&a2);
        assert!(s.touch(&a2, t0).is_none());
        // Expired sessions make room.
        let later = t0 + Duration::from_secs(3600);
        s.create(a, "a@x.test", t0).unwrap();
        s.create(a, "a@x.test", t0).unwrap();
        assert!(s.create(a, "a@x.test", later).is_some());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("", "a"));
    }
}
