//! SASL: base64 responses (RFC 4954 §4), PLAIN (RFC 4616), LOGIN, SCRAM-SHA-256 (RFC 5802,
//! RFC 7677) and the stored SCRAM credentials.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sasl::scram::{self, ScramCredentials};
use sasl::{decode_response, encode, parse_login_field, parse_plain};

/// Every step on hostile input is an error, never a panic; what decodes re-encodes; a
/// client-first message the server accepts leads, with the right proof, to a successful
/// exchange, and the input taken as a client-final message never authenticates.
pub fn sasl(data: &[u8]) {
    let (_, a, b) = crate::knob_split(data);
    let text = String::from_utf8_lossy(data);
    if let Ok(bytes) = decode_response(&text) {
        // RFC 4648 §4: canonical base64 decodes to the same bytes.
        assert_eq!(decode_response(&encode(&bytes)), Ok(bytes.clone()));
        let _ = parse_plain(&bytes);
        let _ = parse_login_field(&bytes);
    }
    if let Ok(c) = parse_plain(data) {
        let mut again = c.authzid.clone().unwrap_or_default().into_bytes();
        again.push(0);
        again.extend_from_slice(c.username.as_bytes());
        again.push(0);
        again.extend_from_slice(c.password.as_bytes());
        assert_eq!(parse_plain(&again), Ok(c), "PLAIN does not round-trip");
    }
    let _ = parse_login_field(data);
    if let Some(creds) = ScramCredentials::parse(&text) {
        assert_eq!(
            ScramCredentials::parse(&creds.encode()).map(|c| c.encode()),
            Some(creds.encode())
        );
    }
    scram_exchange(a, b);
    scram_exchange(data, b"");
}

/// One SCRAM exchange with `first` as client-first and `last` as client-final.
fn scram_exchange(first: &[u8], last: &[u8]) {
    let Ok(client_first) = scram::client_first(first) else {
        return;
    };
    // One iteration: the fuzzer tests the parsing, not PBKDF2's cost.
    let creds = ScramCredentials::derive("pencil", b"salt", 1);
    let (state, server_first) = client_first
        .clone()
        .server_first_with_nonce(&creds, "srvnonce");
    let server_first = String::from_utf8(server_first).expect("server-first is text");
    assert!(
        state.client_final(last).is_err(),
        "a fuzzed proof authenticated"
    );
    // The honest client: c= is the gs2 header, r= the combined nonce, p= the proof over
    // AuthMessage (RFC 5802 §3).
    let text = std::str::from_utf8(first).expect("accepted client-first is UTF-8");
    let mut parts = text.splitn(3, ',');
    let (cbind, authz, bare) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let gs2 = format!("{cbind},{authz},");
    let nonce = server_first
        .strip_prefix("r=")
        .and_then(|s| s.split(',').next())
        .expect("server-first starts with r=");
    let without_proof = format!("c={},r={nonce}", STANDARD.encode(gs2));
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let proof = scram::client_proof("pencil", b"salt", 1, &auth_message);
    let (state, _) = client_first.server_first_with_nonce(&creds, "srvnonce");
    let answer = state
        .client_final(format!("{without_proof},p={}", STANDARD.encode(proof)).as_bytes())
        .unwrap_or_else(|e| panic!("the right proof was refused ({e:?}) for {text:?}"));
    assert!(answer.starts_with(b"v="));
}
