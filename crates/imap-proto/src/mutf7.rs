//! Modified UTF-7 mailbox names — RFC 3501 §5.1.3.
//!
//! IMAP4rev1 clients that did not enable `UTF8=ACCEPT` (RFC 6855) name mailboxes in this
//! encoding: printable US-ASCII stands for itself (`&` is written `&-`), anything else is
//! UTF-16BE in a modified BASE64 (`,` instead of `/`, no padding) between `&` and `-`.

/// Why a name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mutf7Error {
    #[error("character not allowed in a modified UTF-7 name")]
    BadChar,
    #[error("unterminated or malformed '&' sequence")]
    BadBase64,
    #[error("invalid UTF-16 in a modified UTF-7 name")]
    BadUtf16,
    #[error("a printable ASCII character was base64-encoded")]
    NotCanonical,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&c| c == b).map(|p| p as u32)
}

/// Encodes a UTF-8 name in modified UTF-7 — RFC 3501 §5.1.3.
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_base64(&mut out, &mut pending);
            // "&" is represented by the two-octet sequence "&-".
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_base64(&mut out, &mut pending);
    out
}

fn flush_base64(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let (mut acc, mut bits) = (0u32, 0u32);
    for unit in units.drain(..) {
        acc = (acc << 16) | u32::from(unit);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// Decodes a modified UTF-7 name to UTF-8 — RFC 3501 §5.1.3. Strict: 8-bit and control
/// characters, bad padding bits, lone surrogates, and base64 that encodes printable ASCII
/// are errors, so each name has one spelling.
pub fn decode_mutf7(name: &str) -> Result<String, Mutf7Error> {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(Mutf7Error::BadChar);
            }
            out.push(char::from(b));
            continue;
        }
        if bytes.get(i) == Some(&b'-') {
            out.push('&');
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).is_some_and(|&c| c != b'-') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'-') {
            return Err(Mutf7Error::BadBase64);
        }
        decode_section(bytes.get(start..i).unwrap_or_default(), &mut out)?;
        i += 1;
    }
    Ok(out)
}

fn decode_section(b64: &[u8], out: &mut String) -> Result<(), Mutf7Error> {
    let mut units = Vec::with_capacity(b64.len() * 6 / 16);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in b64 {
        acc = (acc << 6) | b64_value(c).ok_or(Mutf7Error::BadBase64)?;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push((acc >> bits) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits are padding: fewer than 6 and all zero.
    if bits >= 6 || acc != 0 || units.is_empty() {
        return Err(Mutf7Error::BadBase64);
    }
    for c in char::decode_utf16(units) {
        let c = c.map_err(|_| Mutf7Error::BadUtf16)?;
        if (' '..='~').contains(&c) {
            return Err(Mutf7Error::NotCanonical);
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example() {
        // RFC 3501 §5.1.3: "~peter/mail/&U,BTFw-/&ZeVnLIqe-" is "~peter/mail/台北/日本語".
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let utf8 = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(decode_mutf7(wire).as_deref(), Ok(utf8));
        assert_eq!(encode_mutf7(utf8), wire);
    }

    #[test]
    fn ampersand_and_astral() {
        assert_eq!(encode_mutf7("A&B"), "A&-B");
        assert_eq!(decode_mutf7("A&-B").as_deref(), Ok("A&B"));
        for s in ["😀 mail", "Entwürfe", "a&ü&", "", "Отправленные", "x\u{1}"] {
            if s.chars().all(|c| c != '\u{1}') {
                assert_eq!(decode_mutf7(&encode_mutf7(s)).as_deref(), Ok(s), "{s}");
            } else {
                // Control characters are encoded, and decode back.
                assert_eq!(decode_mutf7(&encode_mutf7(s)).as_deref(), Ok(s));
            }
        }
        assert_eq!(encode_mutf7("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode_mutf7("&U,BTFw"), Err(Mutf7Error::BadBase64));
        assert_eq!(decode_mutf7("&-&AGE-"), Err(Mutf7Error::NotCanonical));
        assert_eq!(decode_mutf7("&U,BTF-"), Err(Mutf7Error::BadBase64));
        assert_eq!(decode_mutf7("&2D0-"), Err(Mutf7Error::BadUtf16));
        assert_eq!(decode_mutf7("&3AA-"), Err(Mutf7Error::BadUtf16));
        assert_eq!(decode_mutf7("&AGE-"), Err(Mutf7Error::NotCanonical));
        assert_eq!(decode_mutf7("caf\u{e9}"), Err(Mutf7Error::BadChar));
        assert_eq!(decode_mutf7("&-"), Ok("&".to_owned()));
        assert_eq!(decode_mutf7("&/-"), Err(Mutf7Error::BadBase64));
    }
}
