//! SASL server mechanisms as pure functions over the client's (base64) responses.
//!
//! - PLAIN, RFC 4616: `[authzid] NUL authcid NUL passwd`.
//! - LOGIN (draft-murchison-sasl-login): username, then password, each base64 on its own line;
//!   the server prompts with base64 `Username:` and `Password:`. Outlook uses it.
//! - SCRAM-SHA-256, RFC 5802 + RFC 7677: a sans-IO server state machine in [`scram`].

pub mod scram;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A username and password the client presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub authzid: Option<String>,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never print the password, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed SASL message")]
    Malformed,
    /// RFC 4954 §4: the client sent `*` to cancel the exchange.
    #[error("authentication cancelled")]
    Cancelled,
}

/// Base64 `Username:` — the LOGIN mechanism's first challenge.
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// Base64 `Password:` — the LOGIN mechanism's second challenge.
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// Decodes one base64 client response; `*` means cancel (RFC 4954 §4, RFC 9051 §6.2.2).
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_end_matches(['\r', '\n']).trim();
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    // RFC 4954 §4: "=" is an empty initial response.
    if line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Base64)
}

/// Decodes a PLAIN message (RFC 4616 §2) already base64-decoded.
pub fn parse_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed);
    let (authzid, username, password) = (text(authzid)?, text(authcid)?, text(passwd)?);
    if username.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        authzid: (!authzid.is_empty()).then_some(authzid),
        username,
        password,
    })
}

/// Decodes a LOGIN step (a username or a password) already base64-decoded.
pub fn parse_login_field(field: &[u8]) -> Result<String, SaslError> {
    String::from_utf8(field.to_vec()).map_err(|_| SaslError::Malformed)
}

/// Encodes a server challenge.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rfc4616_examples() {
        // RFC 4616 §4: "\0tim\0tanstaaftanstaaf"
        let c = parse_plain(&decode_response("AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap()).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str(), c.authzid),
            ("tim", "tanstaaftanstaaf", None)
        );
        let c = parse_plain(b"Ursel\0Kurt\0xipj3plmq").unwrap();
        assert_eq!(c.authzid.as_deref(), Some("Ursel"));
        assert_eq!(parse_plain(b"\0tim"), Err(SaslError::Malformed));
        assert_eq!(decode_response("*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response("!!"), Err(SaslError::Base64));
        assert!(!format!("{c:?}").contains("xipj3plmq"));
    }

    #[test]
    fn login_challenges() {
        assert_eq!(
            decode_response(LOGIN_USERNAME_CHALLENGE).unwrap(),
            b"Username:"
        );
        assert_eq!(
            decode_response(LOGIN_PASSWORD_CHALLENGE).unwrap(),
            b"Password:"
        );
    }
}
