//! ENVELOPE and BODYSTRUCTURE for clients that did not enable UTF-8 (neither IMAP4rev2 nor
//! `UTF8=ACCEPT`): RFC 6855 §3 forbids sending them UTF-8 strings, so text that is not
//! ASCII — display names and parameters that `mail-parser` decoded, subjects of RFC 6532
//! messages — is sent as RFC 2047 encoded-words (`=?UTF-8?B?...?=`), the form a rev1 client
//! decodes anyway. Local parts and domains are left as they are (no downgrade of EAI
//! addresses, RFC 6857, is attempted); the encoder sends them as literals.

use imap_proto::{Address, BodyStructure, Disposition, Envelope, SingleKind};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `text` as RFC 2047 encoded-words when it is not ASCII. Each word carries at most 45 octets
/// of whole characters, so it stays within 75 characters (RFC 2047 §2); invalid UTF-8 is
/// replaced (U+FFFD) rather than sent raw.
pub(crate) fn encode_word(text: &[u8]) -> Vec<u8> {
    if text.is_ascii() {
        return text.to_vec();
    }
    let s = String::from_utf8_lossy(text);
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join(" ").into_bytes()
}

fn opt(v: &mut Option<Vec<u8>>) {
    if let Some(x) = v.as_mut() {
        *x = encode_word(x);
    }
}

fn params(p: &mut [(String, String)]) {
    for (_, v) in p {
        if !v.is_ascii() {
            *v = String::from_utf8_lossy(&encode_word(v.as_bytes())).into_owned();
        }
    }
}

fn disposition(d: &mut Option<Disposition>) {
    if let Some(d) = d {
        params(&mut d.params);
    }
}

fn addresses(list: &mut [Address]) {
    for a in list {
        opt(&mut a.name);
    }
}

pub(crate) fn envelope(env: &mut Envelope) {
    opt(&mut env.subject);
    for list in [
        &mut env.from,
        &mut env.sender,
        &mut env.reply_to,
        &mut env.to,
        &mut env.cc,
        &mut env.bcc,
    ] {
        addresses(list);
    }
}

pub(crate) fn body_structure(body: &mut BodyStructure) {
    match body {
        BodyStructure::Single {
            fields,
            kind,
            extension,
        } => {
            params(&mut fields.params);
            opt(&mut fields.description);
            if let SingleKind::Message {
                envelope: e, body, ..
            } = kind
            {
                envelope(e);
                body_structure(body);
            }
            if let Some(x) = extension {
                disposition(&mut x.disposition);
            }
        }
        BodyStructure::Multipart {
            parts, extension, ..
        } => {
            for p in parts {
                body_structure(p);
            }
            if let Some(x) = extension {
                params(&mut x.params);
                disposition(&mut x.disposition);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_only_non_ascii() {
        assert_eq!(encode_word(b"plain"), b"plain");
        assert_eq!(encode_word("J\u{f6}rg".as_bytes()), b"=?UTF-8?B?SsO2cmc=?=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        let long = "\u{e9}".repeat(40);
        let w = String::from_utf8(encode_word(long.as_bytes())).unwrap();
        assert_eq!(w.split(' ').count(), 2, "{w}");
        assert!(w.split(' ').all(|x| x.len() <= 75), "{w}");
    }
}
