//! `yubin deliver RECIPIENT... < message`: local delivery of one message from standard input
//! into the INBOX of local recipients, like Dovecot's `dovecot-lda -d user` — for an MTA's
//! mailbox command, procmail-style filters and scripts. Works while the server runs; sessions
//! open on the mailbox see the message at once (through the store's change log).
//!
//! Exit status follows sysexits(3), as MTAs expect of a delivery agent: 0 delivered, 67
//! (`EX_NOUSER`) a recipient is not local, 65 (`EX_DATAERR`) the message is too large or
//! empty, 75 (`EX_TEMPFAIL`) try again later (store error, quota).

use std::io::Read;
use std::sync::Arc;

use mail_types::Address;
use store::{AccountId, Store, StoreError};

/// An error with the exit status it maps to.
#[derive(Debug)]
pub struct DeliveryFailed {
    pub status: u8,
    pub message: String,
}

impl std::fmt::Display for DeliveryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeliveryFailed {}

const EX_DATAERR: u8 = 65;
const EX_NOUSER: u8 = 67;
const EX_TEMPFAIL: u8 = 75;

fn failed(status: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(DeliveryFailed {
        status,
        message: message.into(),
    })
}

fn temporary(what: &str, e: StoreError) -> anyhow::Error {
    failed(EX_TEMPFAIL, format!("{what}: {e}"))
}

/// Reads at most `max_size` bytes of message from `input` and delivers it to `recipients`.
pub async fn run(
    store: &dyn Store,
    recipients: &[String],
    input: &mut dyn Read,
    max_size: usize,
) -> anyhow::Result<()> {
    let mut accounts: Vec<AccountId> = Vec::new();
    for r in recipients {
        let address = Address::parse(r)
            .map_err(|e| failed(EX_NOUSER, format!("invalid recipient {r:?}: {e}")))?;
        let found = store
            .resolve_recipient(&address)
            .await
            .map_err(|e| temporary("looking up the recipient", e))?;
        if found.is_empty() {
            return Err(failed(EX_NOUSER, format!("{address}: no such local user")));
        }
        accounts.extend(found);
    }
    accounts.sort_unstable();
    accounts.dedup();

    let mut raw = Vec::new();
    input
        .take(max_size as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| failed(EX_TEMPFAIL, format!("reading the message: {e}")))?;
    if raw.len() > max_size {
        return Err(failed(
            EX_DATAERR,
            format!("message larger than max_message_size ({max_size} bytes)"),
        ));
    }
    if raw.is_empty() {
        return Err(failed(EX_DATAERR, "empty message"));
    }
    let message = crlf(&raw);
    for &account in &accounts {
        let quota = store
            .quota(account)
            .await
            .map_err(|e| temporary("reading the quota", e))?;
        if quota.would_exceed(message.len() as u64) {
            // RFC 5321 §4.2.5 452 4.2.2: over quota is temporary for the sender.
            return Err(failed(EX_TEMPFAIL, "mailbox full (quota exceeded)"));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    store
        .deliver(Arc::new(message), now, &accounts)
        .await
        .map_err(|e| temporary("delivering", e))?;
    Ok(())
}

/// Messages are stored with CRLF line ends (RFC 5322 §2.1; IMAP sends them as stored): a file
/// written on Unix has bare LFs.
pub(crate) fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::crlf;

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(b"x\r\n"), b"x\r\n");
    }
}
