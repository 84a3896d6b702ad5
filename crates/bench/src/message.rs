//! Realistic test messages: RFC 5322 headers (unique Message-ID per message) and a plain-text
//! body of English-like words in CRLF lines shorter than 100 characters, so the server does
//! the same parsing work it would for ordinary mail.
//!
//! The body is generated once (deterministically) and shared by all messages; only the
//! headers differ. The DATA content returned here is already dot-stuffed (RFC 5321 §4.5.2).

/// Words the body is made of; a mix of lengths like ordinary prose.
const WORDS: &[&str] = &[
    "the",
    "meeting",
    "is",
    "moved",
    "to",
    "Thursday",
    "afternoon",
    "and",
    "we",
    "will",
    "review",
    "quarterly",
    "numbers",
    "before",
    "lunch",
    "please",
    "bring",
    "your",
    "notes",
    "about",
    "shipping",
    "delays",
    "in",
    "the",
    "northern",
    "warehouse",
    "a",
    "new",
    "schedule",
    "for",
    "deliveries",
    "was",
    "agreed",
    "with",
    "suppliers",
    "last",
    "week",
    "invoice",
    "attached",
    "thanks",
    "regards",
    "project",
    "status",
    "update",
    "on",
    "budget",
    "risk",
    "customer",
    "feedback",
    "has",
    "been",
    "mostly",
    "positive",
    "although",
    "some",
    "asked",
    "documentation",
    "examples",
    "install",
    "guide",
    "server",
    "mailbox",
    "folder",
    "message",
];

/// Longest body line before CRLF: well under the 998 limit of RFC 5322 §2.1.1 and under
/// 100 characters as real mail clients wrap.
const LINE_WIDTH: usize = 76;

/// A tiny deterministic PRNG (xorshift64*): benchmarks must send the same bytes every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        // n is a small constant (word count, paragraph length): modulo bias is irrelevant.
        (self.next() % n as u64) as usize
    }
}

/// Applies dot-stuffing to CRLF-terminated content: RFC 5321 §4.5.2, a line starting with
/// "." gets one more "." so the server does not take it for the end of data.
pub fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    let mut at_line_start = true;
    for &b in content {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out
}

/// Generates a prose body of about `len` bytes (CRLF lines, ending in CRLF, dot-stuffed).
pub fn body(len: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut text = String::with_capacity(len + LINE_WIDTH + 2);
    let mut line = String::with_capacity(LINE_WIDTH + 2);
    let mut sentence_start = true;
    let mut words_in_paragraph = 0usize;
    let mut paragraph_len = 40 + rng.below(60);
    while text.len() < len {
        let w = WORDS.get(rng.below(WORDS.len())).copied().unwrap_or("mail");
        let end_sentence = rng.below(12) == 0;
        let mut word = if sentence_start {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        } else {
            w.to_owned()
        };
        if end_sentence {
            word.push('.');
        }
        sentence_start = end_sentence;
        if !line.is_empty() && line.len() + 1 + word.len() > LINE_WIDTH {
            text.push_str(&line);
            text.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
        words_in_paragraph += 1;
        if words_in_paragraph >= paragraph_len && end_sentence {
            text.push_str(&line);
            text.push_str("\r\n\r\n");
            line.clear();
            words_in_paragraph = 0;
            paragraph_len = 40 + rng.below(60);
        }
    }
    if !line.is_empty() {
        text.push_str(&line);
        text.push_str("\r\n");
    }
    dot_stuff(text.as_bytes())
}

/// The header block (ending with the empty line) for message number `seq` of this run.
pub fn headers(seq: u64, run_id: u64, from: &str, to: &str) -> Vec<u8> {
    // RFC 5322 §3.6: Date and From are required; Message-ID should be unique (§3.6.4).
    format!(
        "Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n\
         From: Bench Sender <{from}>\r\n\
         To: <{to}>\r\n\
         Subject: yubin benchmark message {seq}\r\n\
         Message-ID: <{run_id:x}.{seq}@bench.yubin.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n"
    )
    .into_bytes()
}

/// Body length such that headers + body come to about `total` bytes.
pub fn body_len_for(total: usize, header_len: usize) -> usize {
    total.saturating_sub(header_len).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_only() {
        assert_eq!(dot_stuff(b".a\r\nb.c\r\n..\r\n"), b"..a\r\nb.c\r\n...\r\n");
        assert_eq!(dot_stuff(b"x\r\n.\r\n"), b"x\r\n..\r\n");
    }

    #[test]
    fn body_has_requested_size_short_crlf_lines_and_no_terminator() {
        let b = body(10_000);
        assert!(
            b.len() >= 10_000 && b.len() < 10_000 + 2 * LINE_WIDTH,
            "{}",
            b.len()
        );
        assert!(b.ends_with(b"\r\n"));
        let text = std::str::from_utf8(&b).expect("ascii");
        for line in text.split("\r\n") {
            assert!(line.len() < 100, "line too long: {line:?}");
            assert!(!line.contains('\n') && !line.contains('\r'));
            assert_ne!(line, ".", "body must not contain the end-of-data line");
        }
        assert!(text.contains("\r\n\r\n"), "has paragraphs");
    }

    #[test]
    fn body_is_deterministic() {
        assert_eq!(body(3000), body(3000));
    }

    #[test]
    fn headers_are_unique_per_message_and_end_with_blank_line() {
        let a = headers(1, 7, "a@x.test", "u@bench.test");
        let b = headers(2, 7, "a@x.test", "u@bench.test");
        assert_ne!(a, b);
        assert!(a.ends_with(b"\r\n\r\n"));
        assert!(String::from_utf8_lossy(&a).contains("Message-ID: <7.1@bench.yubin.test>\r\n"));
    }
}
