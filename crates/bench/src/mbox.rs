//! Reading an mbox file (as written by /work/shared/tools/gen_mbox.py, Python's `mailbox`)
//! into messages with CRLF line endings, ready for IMAP APPEND or the store.
//!
//! mbox is not standardised beyond RFC 4155 (the `application/mbox` type): each message starts
//! with a `From ` line, and body lines that began with `From ` were escaped as `>From `. We
//! undo one level of `>` quoting on such lines (the "mboxrd" reading; for the "mboxo" files
//! Python writes it is the same unless a line began with `>From ` originally).

use std::path::Path;

use anyhow::Context;

/// Splits mbox text into messages (LF or CRLF input; CRLF output, RFC 5322 §2.1).
pub fn parse(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(m) = cur.take() {
                out.push(finish(m));
            }
            cur = Some(Vec::new());
            continue;
        }
        let Some(m) = cur.as_mut() else { continue };
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let unquoted = match body.iter().position(|&b| b != b'>') {
            Some(n) if n > 0 && body.get(n..).is_some_and(|r| r.starts_with(b"From ")) => {
                body.get(1..).unwrap_or_default()
            }
            _ => body,
        };
        m.extend_from_slice(unquoted);
        m.extend_from_slice(b"\r\n");
    }
    if let Some(m) = cur.take() {
        out.push(finish(m));
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Python's mbox writer ends each message with an empty separator line: drop it.
fn finish(mut m: Vec<u8>) -> Vec<u8> {
    if m.ends_with(b"\r\n\r\n") {
        m.truncate(m.len() - 2);
    }
    m
}

/// Reads and splits an mbox file; an error when it holds no message.
pub fn load(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let msgs = parse(&text);
    if msgs.is_empty() {
        anyhow::bail!("no messages in {}", path.display());
    }
    Ok(msgs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_unquotes_and_uses_crlf() {
        let text = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nhi\n>From here\n\n\
                     From c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nyo\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"Subject: one\r\n\r\nhi\r\nFrom here\r\n");
        assert_eq!(m[1], b"Subject: two\r\n\r\nyo\r\n");
    }

    #[test]
    fn text_before_the_first_from_line_is_ignored() {
        assert!(parse(b"garbage\n").is_empty());
        assert_eq!(parse(b"x\nFrom a\nA: b\n").len(), 1);
    }
}
