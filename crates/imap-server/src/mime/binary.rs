//! APPEND of `literal8` data (RFC 3516 §4.4): the server must store content it can return
//! through FETCH BODY, whose strings cannot carry NUL (RFC 9051 §4.3). Like Dovecot, every
//! leaf part whose Content-Transfer-Encoding is `binary` (or that holds NUL under an identity
//! encoding) is re-encoded as base64 (RFC 2045 §6.8, 76-character lines) and its
//! Content-Transfer-Encoding field rewritten; BINARY[...] then decodes it back to the bytes
//! the client sent.

use mail_parser::MimeHeaders;

use super::tree::{self, Kind, Part};

/// `data` in base64, CRLF after every 76 characters (RFC 2045 §6.8).
fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    let text = crate::downgrade::base64(data);
    for (i, line) in text.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
}

/// An edit of the message: replace `range` by `with`.
struct Edit {
    range: std::ops::Range<usize>,
    with: Vec<u8>,
}

fn collect(raw: &[u8], part: &Part<'_>, edits: &mut Vec<Edit>) {
    match &part.kind {
        Kind::Multipart(children) => children.iter().for_each(|c| collect(raw, c, edits)),
        Kind::Message(inner) => collect(raw, inner, edits),
        Kind::Leaf => {
            let cte = part
                .fields
                .content_transfer_encoding()
                .map(|c| c.trim().to_ascii_lowercase());
            let body = raw.get(part.body.clone()).unwrap_or_default();
            let convert = match cte.as_deref() {
                Some("binary") => true,
                None | Some("7bit" | "8bit") => body.contains(&0),
                _ => false,
            };
            if !convert {
                return;
            }
            // The header without its blank line and Content-Transfer-Encoding field, then the
            // new field and the blank line.
            let header = raw.get(part.header.clone()).unwrap_or_default();
            let mut h = Vec::with_capacity(header.len() + 40);
            let mut skip = false;
            for line in header.split_inclusive(|&b| b == b'\n') {
                if line == b"\r\n" || line == b"\n" {
                    break;
                }
                if !matches!(line.first(), Some(b' ' | b'\t')) {
                    let name = line.split(|&b| b == b':').next().unwrap_or_default();
                    skip = name
                        .trim_ascii()
                        .eq_ignore_ascii_case(b"Content-Transfer-Encoding");
                }
                if !skip {
                    h.extend_from_slice(line);
                    if !line.ends_with(b"\n") {
                        h.extend_from_slice(b"\r\n");
                    }
                }
            }
            h.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
            edits.push(Edit {
                range: part.header.clone(),
                with: h,
            });
            let mut b = Vec::with_capacity(body.len() * 4 / 3 + body.len() / 38 + 4);
            base64_lines(body, &mut b);
            edits.push(Edit {
                range: part.body.clone(),
                with: b,
            });
        }
    }
}

/// `raw` with its binary parts base64-encoded (unchanged if it has none).
pub(crate) fn binary_to_base64(raw: Vec<u8>) -> Vec<u8> {
    let mut edits = Vec::new();
    collect(&raw, &tree::parse(&raw), &mut edits);
    if edits.is_empty() {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + 64);
    let mut at = 0;
    for e in edits {
        out.extend_from_slice(raw.get(at..e.range.start).unwrap_or_default());
        out.extend_from_slice(&e.with);
        at = e.range.end.max(at);
    }
    out.extend_from_slice(raw.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_parts_become_base64() {
        let raw =
            b"From: a@b.c\r\nContent-Transfer-Encoding: binary\r\nX: y\r\n\r\n\0-\xe4\r\n\r\n"
                .to_vec();
        let out = binary_to_base64(raw);
        assert_eq!(
            out,
            b"From: a@b.c\r\nX: y\r\nContent-Transfer-Encoding: base64\r\n\r\nAC3kDQoNCg=="
                .to_vec()
        );
        let mime = super::super::Mime::parse(&out);
        let (body, cte) = mime.part_body(&[1]).unwrap();
        assert_eq!(cte.as_deref(), Some("base64"));
        assert_eq!(
            crate::cmd::fetch_binary::decode(body, cte.as_deref()).unwrap(),
            b"\0-\xe4\r\n\r\n"
        );
        // Text without NUL is left alone, and so is an encoded part.
        let plain = b"Subject: x\r\n\r\n8-bit \xc3\xa9\r\n".to_vec();
        assert_eq!(binary_to_base64(plain.clone()), plain);
        let multi = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n--b--\r\n"
            .to_vec();
        let out = binary_to_base64(multi);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n"
        );
        // 76-character lines.
        let long = [
            b"Content-Transfer-Encoding: binary\r\n\r\n".as_slice(),
            &[0u8; 100],
        ]
        .concat();
        let out = binary_to_base64(long);
        let body = out.split(|&b| b == b'\n').nth(2).unwrap();
        assert_eq!(body.len(), 77, "{}", String::from_utf8_lossy(&out));
    }
}
