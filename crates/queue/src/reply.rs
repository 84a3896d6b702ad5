//! Client-side SMTP reply parsing, sans-IO: multi-line replies (RFC 5321 §4.2.1) and the EHLO
//! keywords the client uses (RFC 5321 §4.1.1.1).
//!
//! Kept here rather than in `smtp-proto` (whose scope is the server side) until a second
//! client needs it.

/// The longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; be lenient).
pub const MAX_REPLY_LINE: usize = 4096;
/// The most lines one reply may have (a long EHLO list has ~20).
pub const MAX_REPLY_LINES: usize = 100;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    pub code: u16,
    /// The text of each line, without code and separator.
    pub lines: Vec<String>,
}

impl ServerReply {
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }
    /// 5yz: permanent (RFC 5321 §4.2.1).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// `code text` of the first line, clipped, for logs, `queue show` and DSNs.
    pub fn summary(&self) -> String {
        let first = self.lines.first().map(String::as_str).unwrap_or("");
        let mut s = format!("{} {}", self.code, first);
        s.truncate(400);
        s
    }

    /// The RFC 3463 enhanced status code at the start of the text, if any (`5.1.1`).
    pub fn enhanced_status(&self) -> Option<String> {
        let word = self.lines.first()?.split(' ').next()?;
        let parts: Vec<&str> = word.split('.').collect();
        let ok = parts.len() == 3
            && matches!(parts.first(), Some(&"2" | &"4" | &"5"))
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| word.to_string())
    }
}

/// The outcome of feeding bytes to [`parse_reply`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply and the bytes it took.
    Complete(ServerReply, usize),
    Incomplete,
    /// Not an SMTP reply: the connection should be dropped.
    Invalid(&'static str),
}

/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`
/// — RFC 5321 §4.2. Bare LF line ends are tolerated.
pub fn parse_reply(buf: &[u8]) -> Parsed {
    let mut pos = 0;
    let mut lines = Vec::new();
    let mut code: Option<u16> = None;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_REPLY_LINE {
                return Parsed::Invalid("reply line too long");
            }
            return Parsed::Incomplete;
        };
        if nl > MAX_REPLY_LINE {
            return Parsed::Invalid("reply line too long");
        }
        let line = rest.get(..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        let digits = line.get(..3).unwrap_or_default();
        if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
            return Parsed::Invalid("reply without a 3-digit code");
        }
        let c = digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if !(200..600).contains(&c) {
            return Parsed::Invalid("reply code out of range");
        }
        if code.is_some_and(|prev| prev != c) {
            return Parsed::Invalid("reply lines with different codes");
        }
        code = Some(c);
        let sep = line.get(3).copied();
        let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned();
        lines.push(text);
        if lines.len() > MAX_REPLY_LINES {
            return Parsed::Invalid("reply has too many lines");
        }
        match sep {
            Some(b'-') => continue,
            Some(b' ') | None => return Parsed::Complete(ServerReply { code: c, lines }, pos),
            Some(_) => return Parsed::Invalid("bad separator after the reply code"),
        }
    }
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub starttls: bool,
    /// RFC 1870 SIZE; `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// RFC 3461.
    pub dsn: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 6152.
    pub eightbitmime: bool,
    /// RFC 4954 AUTH with the PLAIN mechanism.
    pub auth_plain: bool,
    /// RFC 2920 §2: the keyword PIPELINING, without parameters.
    pub pipelining: bool,
}

impl Capabilities {
    /// From an EHLO reply: the first line is the greeting, each further line a keyword.
    pub fn from_ehlo(reply: &ServerReply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(kw) = words.next() else { continue };
            match kw.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "DSN" => caps.dsn = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "8BITMIME" => caps.eightbitmime = true,
                "PIPELINING" => caps.pipelining = true,
                "AUTH" => caps.auth_plain = words.any(|m| m.eq_ignore_ascii_case("PLAIN")),
                _ => {}
            }
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_reply_at_every_split() {
        let input = b"250-mx.b.test hello\r\n250-SIZE 1000\r\n250-DSN\r\n250 STARTTLS\r\nNEXT";
        for cut in 0..input.len() - 4 {
            let r = parse_reply(&input[..cut]);
            if cut < input.len() - 4 {
                assert_eq!(r, Parsed::Incomplete, "cut {cut}");
            }
        }
        let Parsed::Complete(reply, used) = parse_reply(input) else {
            panic!("complete")
        };
        assert_eq!(used, input.len() - 4);
        assert_eq!(reply.code, 250);
        let caps = Capabilities::from_ehlo(&reply);
        assert_eq!(caps.size, Some(1000));
        assert!(caps.dsn && caps.starttls && !caps.smtputf8);
    }

    #[test]
    fn bad_replies_are_invalid() {
        assert!(matches!(parse_reply(b"hello\r\n"), Parsed::Invalid(_)));
        assert!(matches!(
            parse_reply(b"250-a\r\n251 b\r\n"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse_reply(b"999 x\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse_reply(&[b'2'; 5000]), Parsed::Invalid(_)));
        let Parsed::Complete(r, _) = parse_reply(b"550 5.1.1 no such user\n") else {
            panic!()
        };
        assert!(r.is_permanent());
        assert_eq!(r.enhanced_status().as_deref(), Some("5.1.1"));
        assert_eq!(r.summary(), "550 5.1.1 no such user");
        let Parsed::Complete(r, _) = parse_reply(b"220\r\n") else {
            panic!()
        };
        assert_eq!(r.enhanced_status(), None);
    }
}
