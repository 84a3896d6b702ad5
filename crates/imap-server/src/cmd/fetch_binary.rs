//! FETCH BINARY[part]<partial>, BINARY.PEEK and BINARY.SIZE — RFC 3516 §4.2: a part's
//! content with its Content-Transfer-Encoding undone. The encoder sends the data as
//! `literal8` when it holds NUL (RFC 3516 §4.2), else as an ordinary literal.

use imap_proto::Part;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

use crate::mime::Mime;

/// The part's encoding is unknown (or its content does not decode): RFC 3516 §4.3 answers
/// `NO [UNKNOWN-CTE]`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnknownCte;

/// Undoes a Content-Transfer-Encoding (RFC 2045 §6): identity for 7bit/8bit/binary.
pub(crate) fn decode(body: &[u8], cte: Option<&str>) -> Result<Vec<u8>, UnknownCte> {
    let cte = cte.map(|c| c.trim().to_ascii_lowercase());
    match cte.as_deref() {
        None | Some("7bit" | "8bit" | "binary") => Ok(body.to_vec()),
        Some("base64") => base64_decode(body).ok_or(UnknownCte),
        Some("quoted-printable") => quoted_printable_decode(body).ok_or(UnknownCte),
        Some(_) => Err(UnknownCte),
    }
}

/// The decoded content of `part`; `Ok(None)` when the part does not exist (sent as NIL).
/// `BINARY[]` is the whole message, which has no transfer encoding of its own.
pub(crate) fn binary(
    raw: Option<&[u8]>,
    parsed: Option<&Mime<'_>>,
    part: &Part,
) -> Result<Option<Vec<u8>>, UnknownCte> {
    if part.0.is_empty() {
        return Ok(raw.map(<[u8]>::to_vec));
    }
    let Some((body, cte)) = parsed.and_then(|p| p.part_body(&part.0)) else {
        return Ok(None);
    };
    decode(body, cte.as_deref()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_encodings() {
        assert_eq!(
            decode(b"AGFiYw==\r\n", Some("BASE64")),
            Ok(b"\0abc".to_vec())
        );
        assert_eq!(
            decode(b"caf=C3=A9 =\r\nx", Some("quoted-printable")),
            Ok("caf\u{e9} x".as_bytes().to_vec())
        );
        assert_eq!(decode(b"as is", None), Ok(b"as is".to_vec()));
        assert_eq!(decode(b"x", Some("x-uuencode")), Err(UnknownCte));
    }
}
