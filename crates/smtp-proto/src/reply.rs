//! Reply encoding: `code [SP enhanced-code] SP text CRLF`, multi-line with `code-` continuation.

use std::fmt;

/// One SMTP reply, possibly multi-line.
///
/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`
/// — RFC 5321 §4.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three digits, 200..=599.
    pub code: u16,
    /// The RFC 3463 enhanced status code (`2.0.0`), or `None` (greeting, EHLO, 334 challenges).
    /// RFC 2034 §4: when present it precedes the text on every line of the reply.
    pub status: Option<&'static str>,
    /// At least one line of text; never contains CR or LF (removed when encoding).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A one-line reply without an enhanced status code.
    pub fn plain(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced status codes (the EHLO response).
    pub fn multi(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
        }
    }

    /// Whether the code is 4xx or 5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            // `334 ` with empty text keeps its SP: RFC 4954 §4 requires it for an empty challenge.
            let sep = if i == last { ' ' } else { '-' };
            let mut text = String::with_capacity(line.len() + 16);
            text.push_str(&format!("{:03}{}", self.code, sep));
            if let Some(status) = self.status {
                text.push_str(status);
                if !line.is_empty() {
                    text.push(' ');
                }
            }
            // A CR or LF inside the text would end the reply early (reply injection).
            text.extend(
                line.chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
            );
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_enhanced_code() {
        assert_eq!(
            Reply::new(250, "2.0.0", "Ok").to_bytes(),
            b"250 2.0.0 Ok\r\n"
        );
        assert_eq!(
            Reply::plain(220, "mx.example.com ESMTP yubin").to_bytes(),
            b"220 mx.example.com ESMTP yubin\r\n"
        );
    }

    #[test]
    fn multi_line_uses_dash_continuation() {
        let r = Reply::multi(
            250,
            vec![
                "mx.example.com".into(),
                "PIPELINING".into(),
                "SIZE 100".into(),
            ],
        );
        assert_eq!(
            r.to_bytes(),
            b"250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 100\r\n"
        );
        let r = Reply {
            code: 550,
            status: Some("5.7.1"),
            lines: vec!["a".into(), "b".into()],
        };
        assert_eq!(r.to_bytes(), b"550-5.7.1 a\r\n550 5.7.1 b\r\n");
    }

    #[test]
    fn empty_challenge_and_injection() {
        assert_eq!(Reply::plain(334, "").to_bytes(), b"334 \r\n");
        assert_eq!(
            Reply::new(250, "2.0.0", "a\r\n250 b").to_bytes(),
            b"250 2.0.0 a  250 b\r\n"
        );
    }
}
