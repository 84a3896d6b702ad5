//! ACME HTTP-01 challenge responses (RFC 8555 §8.3): the CA fetches
//! `http://<name>/.well-known/acme-challenge/<token>` on port 80 and expects the key
//! authorization as the body. The ACME client (in the yubin binary) fills [`AcmeTokens`] while
//! an authorization is in progress; the route answers before the HTTP→HTTPS redirect, since
//! the CA validates over plain HTTP.

use std::collections::HashMap;
use std::sync::RwLock;

/// The path prefix of HTTP-01 requests (RFC 8555 §8.3).
pub const PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// Key authorizations by token, for the challenges in progress.
#[derive(Debug, Default)]
pub struct AcmeTokens(RwLock<HashMap<String, String>>);

impl AcmeTokens {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    pub fn get(&self, token: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_and_go() {
        let t = AcmeTokens::default();
        assert_eq!(t.get("abc"), None);
        t.insert("abc", "abc.thumb");
        assert_eq!(t.get("abc").as_deref(), Some("abc.thumb"));
        t.remove("abc");
        assert_eq!(t.get("abc"), None);
    }
}
