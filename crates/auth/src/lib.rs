//! Password authentication for every protocol.
//!
//! - Passwords are stored as argon2id PHC strings ([`hash_password`]).
//! - Verification takes the same work whether or not the user exists: an unknown user is
//!   checked against a dummy hash, so timing does not reveal which addresses exist.
//!   argon2's own comparison is constant-time.
//! - Every failure is logged with client IP and protocol (never the password) and answered
//!   only after a delay, which slows down password guessing.
//! - argon2 is CPU-bound, so it runs on the blocking pool, never on the async workers.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use mail_types::Address;
use store::{AccountId, Directory};

/// A successfully authenticated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub account: AccountId,
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong user or password (deliberately not saying which).
    Invalid,
    /// The directory could not be read; the client may retry.
    Temporary,
}

/// The argon2id parameters: OWASP's recommended m=19 MiB, t=2, p=1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into an argon2id PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid params")
        .to_string()
}

/// Checks a password against a PHC string (constant-time comparison inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => argon2().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// A strong random password for `yubin user add` without `--password-stdin`.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("yubin-dummy-password-for-timing"))
}

/// The authentication service shared by SMTP, POP3 and IMAP.
#[derive(Clone)]
pub struct Authenticator {
    directory: Arc<dyn Directory>,
    failure_delay: Duration,
}

impl Authenticator {
    pub fn new(directory: Arc<dyn Directory>, failure_delay: Duration) -> Authenticator {
        Authenticator {
            directory,
            failure_delay,
        }
    }

    /// Checks `username` (a full address) and `password`. `protocol` and `peer` are for the log.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        protocol: &'static str,
        peer: IpAddr,
    ) -> Result<Authenticated, AuthError> {
        let user = match Address::parse(username) {
            Ok(address) => match self.directory.find_user(&address).await {
                Ok(user) => user,
                Err(e) => {
                    tracing::warn!(protocol, %peer, error = %e, "authentication: directory unavailable");
                    return Err(AuthError::Temporary);
                }
            },
            Err(_) => None,
        };
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_string());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
            .await
            .unwrap_or(false);
        match (ok, user) {
            (true, Some(user)) => {
                tracing::info!(protocol, %peer, user = %user.address, "authentication succeeded");
                Ok(Authenticated {
                    account: user.id,
                    address: user.address,
                })
            }
            _ => {
                tracing::warn!(protocol, %peer, user = %sanitize(username), "authentication failed");
                tokio::time::sleep(self.failure_delay).await;
                Err(AuthError::Invalid)
            }
        }
    }
}

/// Makes a client-supplied username safe for one log line.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(128)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_eq!(generate_password().len(), 20);
    }
}
