//! Removing results forged by outsiders: RFC 8601 §5 — a border MTA MUST remove any
//! `Authentication-Results` field that claims its own authserv-id before adding its own, so a
//! reader can trust every field that names us. `ARC-Authentication-Results` (RFC 8617 §4.1.1)
//! carries an authserv-id too and is treated the same way.
//!
//! Only the header block is scanned (up to the first empty line, RFC 5322 §2.1); a field
//! continues over lines that begin with SP or HTAB (§2.2.3). Other fields keep their bytes.

/// `message` without the fields that claim `authserv_id` (compared case-insensitively), and
/// how many were removed.
pub fn strip_forged(message: &[u8], authserv_id: &str) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(message.len());
    let mut removed = 0;
    let mut pos = 0;
    while pos < message.len() {
        let line_end = line_end_of(message, pos);
        let line = &message[pos..line_end];
        if matches!(line, b"\r\n" | b"\n") {
            break;
        }
        // The field: this line and its continuation lines.
        let mut end = line_end;
        while end < message.len() && matches!(message[end], b' ' | b'\t') {
            end = line_end_of(message, end);
        }
        let field = &message[pos..end];
        if claims(field, authserv_id) {
            removed += 1;
        } else {
            out.extend_from_slice(field);
        }
        pos = end;
    }
    out.extend_from_slice(&message[pos..]);
    (out, removed)
}

fn line_end_of(message: &[u8], pos: usize) -> usize {
    message[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(message.len(), |i| pos + i + 1)
}

/// Whether a whole field is an (ARC-)Authentication-Results naming `authserv_id`.
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = field[..colon].trim_ascii();
    let value = &field[colon + 1..];
    let value = if name.eq_ignore_ascii_case(b"Authentication-Results") {
        value
    } else if name.eq_ignore_ascii_case(b"ARC-Authentication-Results") {
        // RFC 8617 §4.1.1: `i=<n>;` comes before the authserv-id.
        match value.iter().position(|&b| b == b';') {
            Some(i) => &value[i + 1..],
            None => return false,
        }
    } else {
        return false;
    };
    authserv_id_of(value).is_some_and(|id| id.eq_ignore_ascii_case(authserv_id.as_bytes()))
}

/// The authserv-id at the start of an A-R value: `[CFWS] value` where value is a token or a
/// quoted-string (RFC 8601 §2.2).
fn authserv_id_of(value: &[u8]) -> Option<Vec<u8>> {
    let rest = skip_cfws(value);
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut id = Vec::new();
        let mut escaped = false;
        for &b in quoted {
            match (escaped, b) {
                (false, b'\\') => escaped = true,
                (false, b'"') => return Some(id),
                (_, b) => {
                    escaped = false;
                    id.push(b);
                }
            }
        }
        return None;
    }
    let end = rest
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b';' || b == b'(')
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_vec())
}

/// Skips folding white space and (nested) comments, RFC 5322 §3.2.2.
fn skip_cfws(mut s: &[u8]) -> &[u8] {
    loop {
        match s.first() {
            Some(b) if b.is_ascii_whitespace() => s = &s[1..],
            Some(b'(') => {
                let mut depth = 0usize;
                let mut i = 0;
                while i < s.len() {
                    match s[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                s = s.get(i + 1..).unwrap_or_default();
            }
            _ => return s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(m: &str) -> (String, usize) {
        let (out, n) = strip_forged(m.as_bytes(), "mx.example.com");
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn removes_only_fields_claiming_our_id() {
        let m = "Authentication-Results: MX.example.com; spf=pass\r\n smtp.mailfrom=a@b\r\n\
                 Authentication-Results: other.example; dkim=pass\r\n\
                 authentication-results : (comment) \"mx.example.com\" 1; none\r\n\
                 ARC-Authentication-Results: i=1; mx.example.com; arc=none\r\n\
                 ARC-Authentication-Results: i=1; lists.example; arc=none\r\n\
                 Authentication-Results: mx.example.com.evil; none\r\n\
                 Subject: hi\r\n\r\n\
                 Authentication-Results: mx.example.com; in the body\r\n";
        let (out, n) = strip(m);
        assert_eq!(n, 3);
        assert_eq!(
            out,
            "Authentication-Results: other.example; dkim=pass\r\n\
             ARC-Authentication-Results: i=1; lists.example; arc=none\r\n\
             Authentication-Results: mx.example.com.evil; none\r\n\
             Subject: hi\r\n\r\n\
             Authentication-Results: mx.example.com; in the body\r\n"
        );
    }

    #[test]
    fn messages_without_forgeries_are_unchanged() {
        for m in [
            "",
            "Subject: x\r\n",
            "Subject: x\r\n\r\nbody",
            "garbage line\r\n\r\n",
        ] {
            assert_eq!(strip(m), (m.to_string(), 0));
        }
        assert_eq!(strip("Authentication-Results:\r\n\r\n").1, 0);
        assert_eq!(strip("Authentication-Results: (unclosed\r\n\r\n").1, 0);
    }
}
