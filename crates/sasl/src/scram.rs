//! SCRAM-SHA-256, server side, as a sans-IO state machine (RFC 5802 §5, RFC 7677).
//!
//! ```text
//! C: n,,n=user,r=<client nonce>                    client-first  → ScramServer::client_first
//! S: r=<client+server nonce>,s=<salt>,i=<iter>     server-first  ← ClientFirst::server_first
//! C: c=biws,r=<nonce>,p=<proof>                    client-final  → ServerFirst::client_final
//! S: v=<server signature>                          server-final
//! ```
//!
//! The server never sees or stores the password: only the salt, the iteration count, StoredKey
//! and ServerKey ([`ScramCredentials`]), kept as the string
//! `SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>`.
//!
//! Not implemented: channel binding (`SCRAM-SHA-256-PLUS`; a client asking for it with `p=`
//! is refused, RFC 5802 §6), SASLprep of passwords and usernames (RFC 5802 §2.2; the UTF-8 bytes
//! are used as they are, which is the same for ASCII).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::SaslError;

/// RFC 7677 §4: at least 4096 iterations.
pub const SCRAM_MIN_ITERATIONS: u32 = 4096;
const PREFIX: &str = "SCRAM-SHA-256$";

type HmacSha256 = Hmac<Sha256>;

/// `HMAC(key, str)` — RFC 5802 §2.2 with SHA-256 (RFC 7677).
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi(str, salt, i)` — RFC 5802 §2.2: PBKDF2 with HMAC as PRF and one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

/// What the server keeps per user for SCRAM-SHA-256 (RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramCredentials {
    // The keys are password equivalents for this mechanism: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the credentials from a password (RFC 5802 §3: SaltedPassword, ClientKey,
    /// StoredKey, ServerKey). Costs `iterations` HMACs: run it off the async workers.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramCredentials {
        let salted = hi(password.as_bytes(), salt, iterations.max(1));
        let client_key = hmac(&salted, b"Client Key");
        ScramCredentials {
            iterations: iterations.max(1),
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Derives credentials with a fresh random 16-octet salt and 4096 iterations.
    pub fn generate(password: &str) -> ScramCredentials {
        use rand::RngCore;
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        ScramCredentials::derive(password, &salt, SCRAM_MIN_ITERATIONS)
    }

    /// Credentials no password matches, for a user who does not exist (or has no SCRAM
    /// credentials): the exchange goes through the same steps and fails at the proof. The salt
    /// is derived from `secret` and the username, so asking twice gives the same salt and the
    /// answer does not reveal which users exist (RFC 5802 §9).
    pub fn dummy(username: &str, secret: &[u8]) -> ScramCredentials {
        use rand::RngCore;
        let mut c = ScramCredentials {
            iterations: SCRAM_MIN_ITERATIONS,
            salt: hmac(secret, username.as_bytes())[..16].to_vec(),
            stored_key: [0; 32],
            server_key: [0; 32],
        };
        let rng = &mut rand::rngs::OsRng;
        rng.fill_bytes(&mut c.stored_key);
        rng.fill_bytes(&mut c.server_key);
        c
    }

    /// `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`, base64 (the PostgreSQL layout).
    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }

    /// Parses [`ScramCredentials::encode`]'s form; `None` when it is not that.
    pub fn parse(s: &str) -> Option<ScramCredentials> {
        let rest = s.strip_prefix(PREFIX)?;
        let (head, keys) = rest.split_once('$')?;
        let (iter, salt) = head.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let key = |k: &str| -> Option<[u8; 32]> { STANDARD.decode(k).ok()?.try_into().ok() };
        let iterations: u32 = iter.parse().ok()?;
        let salt = STANDARD.decode(salt).ok()?;
        if iterations == 0 || salt.is_empty() {
            return None;
        }
        Some(ScramCredentials {
            iterations,
            salt,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

/// The parsed client-first message (RFC 5802 §7 `client-first-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n=`, with `=2C` and `=3D` decoded.
    pub username: String,
    /// `a=` from the gs2 header, decoded.
    pub authzid: Option<String>,
    gs2_header: String,
    bare: String,
    client_nonce: String,
}

/// `saslname = 1*(value-safe-char / "=2C" / "=3D")` — RFC 5802 §7.
fn saslname(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).ok_or(SaslError::Malformed)?;
        out.push(match esc {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err(SaslError::Malformed),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() || out.contains('\0') {
        return Err(SaslError::Malformed);
    }
    Ok(out)
}

/// `printable = %x21-2B / %x2D-7E` — RFC 5802 §7 (the nonce alphabet, no comma).
fn is_printable_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21..=0x2B | 0x2D..=0x7E))
}

/// Starts the server side: parses the client-first message.
///
/// `client-first-message = gs2-header client-first-message-bare`,
/// `gs2-header = gs2-cbind-flag "," [ authzid ] ","`,
/// `client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]`
/// — RFC 5802 §7.
pub fn client_first(message: &[u8]) -> Result<ClientFirst, SaslError> {
    let text = std::str::from_utf8(message).map_err(|_| SaslError::Malformed)?;
    let mut parts = text.splitn(3, ',');
    let (Some(cbind), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SaslError::Malformed);
    };
    // RFC 5802 §6: "n" (no channel binding) and "y" (client could, thinks we cannot) are fine;
    // "p=" asks for channel binding, which this mechanism (without -PLUS) does not offer.
    if cbind != "n" && cbind != "y" {
        return Err(SaslError::Malformed);
    }
    let authzid = match authz {
        "" => None,
        a => Some(saslname(a.strip_prefix("a=").ok_or(SaslError::Malformed)?)?),
    };
    let mut attrs = bare.split(',');
    // RFC 5802 §5.1: "m" is reserved; a server MUST fail when it is present.
    let user = attrs.next().and_then(|a| a.strip_prefix("n="));
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r="));
    let (Some(user), Some(nonce)) = (user, nonce) else {
        return Err(SaslError::Malformed);
    };
    // `extensions = attr-val *("," attr-val)`, `attr-val = ALPHA "=" value`.
    let extension_ok = |a: &str| {
        let b = a.as_bytes();
        b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'='
    };
    if !is_printable_nonce(nonce) || !attrs.all(extension_ok) {
        return Err(SaslError::Malformed);
    }
    Ok(ClientFirst {
        username: saslname(user)?,
        authzid,
        gs2_header: format!("{cbind},{authz},"),
        bare: bare.to_string(),
        client_nonce: nonce.to_string(),
    })
}

impl ClientFirst {
    /// Answers with the server-first message, using a fresh random server nonce.
    pub fn server_first(self, credentials: &ScramCredentials) -> (ServerFirst, Vec<u8>) {
        use rand::RngCore;
        let mut raw = [0u8; 18];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        self.server_first_with_nonce(credentials, &STANDARD.encode(raw))
    }

    /// [`ClientFirst::server_first`] with a given server nonce (for the RFC's test vectors).
    ///
    /// `server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
    /// ["," extensions]` — RFC 5802 §7.
    pub fn server_first_with_nonce(
        self,
        credentials: &ScramCredentials,
        server_nonce: &str,
    ) -> (ServerFirst, Vec<u8>) {
        let nonce = format!("{}{server_nonce}", self.client_nonce);
        let message = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credentials.salt),
            credentials.iterations
        );
        let state = ServerFirst {
            gs2_header: self.gs2_header,
            auth_prefix: format!("{},{message},", self.bare),
            nonce,
            stored_key: credentials.stored_key,
            server_key: credentials.server_key,
        };
        (state, message.into_bytes())
    }
}

/// Waiting for the client-final message.
pub struct ServerFirst {
    gs2_header: String,
    /// `client-first-message-bare "," server-first-message ","` (the start of AuthMessage).
    auth_prefix: String,
    nonce: String,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

/// Why the client-final message did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// Not a client-final message, or the channel binding or nonce do not match.
    Malformed,
    /// The proof is wrong: wrong password (or no such user).
    InvalidProof,
}

impl ServerFirst {
    /// Checks the client-final message; on success returns the server-final message
    /// (`v=<ServerSignature>`), which the client verifies to authenticate the server.
    ///
    /// `client-final-message = client-final-message-without-proof "," proof`,
    /// `client-final-message-without-proof = channel-binding "," nonce ["," extensions]`
    /// — RFC 5802 §7.
    pub fn client_final(self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs.next().and_then(|a| a.strip_prefix("c="));
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r="));
        // RFC 5802 §5.1: c= is the base64 of the gs2 header (no channel-binding data here).
        let cbind_ok = cbind
            .and_then(|c| STANDARD.decode(c).ok())
            .is_some_and(|c| c == self.gs2_header.as_bytes());
        // RFC 5802 §5.1: the nonce must be exactly the combined nonce of server-first.
        if !cbind_ok || nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed);
        }
        let proof: [u8; 32] = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed)?;
        // RFC 5802 §3: AuthMessage; ClientSignature = HMAC(StoredKey, AuthMessage);
        // ClientKey = ClientProof XOR ClientSignature; check H(ClientKey) == StoredKey.
        let auth_message = format!("{}{without_proof}", self.auth_prefix);
        let signature = hmac(&self.stored_key, auth_message.as_bytes());
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(signature) {
            *k ^= s;
        }
        let computed: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(computed.ct_eq(&self.stored_key)) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// The client side's proof, from RFC 5802 §3 — for tests of servers that use this module.
pub fn client_proof(password: &str, salt: &[u8], iterations: u32, auth_message: &str) -> Vec<u8> {
    let salted = hi(password.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored: [u8; 32] = Sha256::digest(client_key).into();
    let signature = hmac(&stored, auth_message.as_bytes());
    client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    fn pencil() -> ScramCredentials {
        ScramCredentials::derive("pencil", &STANDARD.decode(SALT_B64).unwrap(), 4096)
    }

    /// RFC 7677 §3: the example exchange for user "user", password "pencil".
    #[test]
    fn rfc7677_example() {
        let first = client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.username, "user");
        assert_eq!(first.authzid, None);
        let (state, challenge) = first.server_first_with_nonce(&pencil(), SERVER_NONCE);
        assert_eq!(
            challenge,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,\
              i=4096"
        );
        let last = state
            .client_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn wrong_proof_nonce_or_binding_fail() {
        let start = || {
            client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
                .unwrap()
                .server_first_with_nonce(&pencil(), SERVER_NONCE)
                .0
        };
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let bad_proof = format!("c=biws,r={nonce},p={}", STANDARD.encode([7u8; 32]));
        assert_eq!(
            start().client_final(bad_proof.as_bytes()),
            Err(ScramError::InvalidProof)
        );
        let good = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let other_nonce = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,{good}");
        assert_eq!(
            start().client_final(other_nonce.as_bytes()),
            Err(ScramError::Malformed)
        );
        // "eSws" is base64 "y,,": the binding flag must match the one of client-first.
        let other_cbind = format!("c=eSws,r={nonce},{good}");
        assert_eq!(
            start().client_final(other_cbind.as_bytes()),
            Err(ScramError::Malformed)
        );
        assert_eq!(start().client_final(b"garbage"), Err(ScramError::Malformed));
        assert_eq!(
            start().client_final(b"c=biws,r=x,p=!!"),
            Err(ScramError::Malformed)
        );
        // Another password: the real proof for "pencil" fails against other keys.
        let (state, _) = client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap()
            .server_first_with_nonce(&ScramCredentials::dummy("user", b"k"), SERVER_NONCE);
        let real = format!("c=biws,r={nonce},{good}");
        assert!(state.client_final(real.as_bytes()).is_err());
    }

    #[test]
    fn client_first_forms() {
        let f = client_first(b"y,a=us=2Cer,n=u=3Dx,r=abc,x=1").unwrap();
        assert_eq!(f.username, "u=x");
        assert_eq!(f.authzid.as_deref(), Some("us,er"));
        // Channel binding requested, reserved m=, bad escapes, missing parts: refused.
        for bad in [
            &b"p=tls-unique,,n=user,r=abc"[..],
            b"n,,m=x,n=user,r=abc",
            b"n,,n=u=2X,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=user",
            b"n,,r=abc,n=user",
            b"n,,n=user,r=a,b",
            b"n,x,n=user,r=abc",
            b"n,,n=user,r=",
            b"",
            b"\xff,,n=a,r=b",
        ] {
            assert_eq!(client_first(bad), Err(SaslError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn credentials_round_trip_and_client_proof() {
        let c = pencil();
        let s = c.encode();
        assert!(s.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
        assert_eq!(ScramCredentials::parse(&s), Some(c.clone()));
        assert_eq!(ScramCredentials::parse("$argon2id$v=19$..."), None);
        assert_eq!(
            ScramCredentials::parse("SCRAM-SHA-256$0:AA==$AA==:AA=="),
            None
        );
        assert!(!format!("{c:?}").contains(&STANDARD.encode(c.stored_key)));
        // The client proof helper reproduces the RFC 7677 proof.
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,\
                    i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = client_proof("pencil", &c.salt, 4096, auth);
        assert_eq!(
            STANDARD.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let d = ScramCredentials::dummy("nobody", b"secret");
        assert_eq!(d.salt, ScramCredentials::dummy("nobody", b"secret").salt);
        assert_ne!(d.salt, ScramCredentials::dummy("other", b"secret").salt);
        let g = ScramCredentials::generate("pencil");
        assert_eq!(g.iterations, 4096);
        assert_ne!(g.salt, ScramCredentials::generate("pencil").salt);
    }
}
