//! A minimal SMTP client: just enough of RFC 5321 to deliver one message per connection
//! (banner, EHLO, MAIL, RCPT, DATA, body, `.`, QUIT) and to time the DATA→250 step.
//!
//! It never pipelines (like Postfix's `smtp-source` without `-P`), so each step's reply is
//! attributable to that step. Every read and write has a timeout; a hostile or broken server
//! yields an error, never a hang or a panic.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

/// Longest reply line accepted. RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets
/// including CRLF; we allow more so that a sloppy server is reported by its code, not cut off.
const MAX_REPLY_LINE: u64 = 4096;
/// Most continuation lines accepted in one multiline reply (EHLO lists a dozen at most).
const MAX_REPLY_LINES: usize = 100;

/// The protocol step a failure happened in; used to group failures in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Connect,
    Banner,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    /// The reply to the final `.` — the one that says the message is stored.
    DataEnd,
    Quit,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Banner => "banner",
            Step::Ehlo => "EHLO",
            Step::Mail => "MAIL",
            Step::Rcpt => "RCPT",
            Step::Data => "DATA",
            Step::DataEnd => "DATA-end",
            Step::Quit => "QUIT",
        }
    }
}

/// Why a delivery failed: the step and either the server's reply or an I/O problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub what: String,
}

impl Failure {
    fn io(step: Step, err: impl std::fmt::Display) -> Self {
        Failure {
            step,
            what: format!("io: {err}"),
        }
    }

    /// A grouping key such as `RCPT 550 5.1.1` or `connect io: connection refused`.
    pub fn key(&self) -> String {
        format!("{} {}", self.step.name(), self.what)
    }
}

/// One parsed SMTP reply: its three-digit code and, when present, the enhanced status code
/// (RFC 3463) of its last line — enough to group failures without logging server text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
}

impl Reply {
    fn describe(&self) -> String {
        match &self.enhanced {
            Some(e) => format!("{} {}", self.code, e),
            None => self.code.to_string(),
        }
    }
}

/// Parses one reply line: `Reply-code [ SP / "-" textstring ] CRLF` — RFC 5321 §4.2.
/// Returns the code and whether more lines follow (`-` after the code).
pub fn parse_reply_line(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (digits, rest) = line.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    // RFC 5321 §4.2.1: "-" marks a continuation line; a lone code is a complete reply.
    match rest.split_first() {
        None => Some((code, false, rest)),
        Some((b'-', text)) => Some((code, true, text)),
        Some((b' ', text)) => Some((code, false, text)),
        Some(_) => None,
    }
}

/// The enhanced status code (RFC 3463 §2: `class.subject.detail`) at the start of `text`.
fn enhanced_code(text: &[u8]) -> Option<String> {
    let word = text.split(|b| *b == b' ').next()?;
    let s = std::str::from_utf8(word).ok()?;
    let parts: Vec<&str> = s.split('.').collect();
    let ok = parts.len() == 3
        && matches!(parts.first(), Some(&("2" | "4" | "5")))
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| s.to_owned())
}

/// What a delivery needs besides the message itself.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub helo: String,
    pub from: String,
    pub to: String,
}

/// One connection to the server.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    io_timeout: Duration,
    line: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: &str, io_timeout: Duration) -> Result<Self, Failure> {
        let stream = timeout(io_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Failure::io(Step::Connect, "timeout"))?
            .map_err(|e| Failure::io(Step::Connect, e.kind()))?;
        // Commands are small and we wait for each reply: don't let Nagle delay them.
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::io(Step::Connect, e.kind()))?;
        let (r, w) = stream.into_split();
        Ok(Client {
            reader: BufReader::with_capacity(4096, r),
            writer: w,
            io_timeout,
            line: Vec::with_capacity(256),
        })
    }

    /// Reads one complete (possibly multiline) reply.
    pub async fn read_reply(&mut self, step: Step) -> Result<Reply, Failure> {
        for _ in 0..MAX_REPLY_LINES {
            self.line.clear();
            let mut limited = (&mut self.reader).take(MAX_REPLY_LINE);
            let n = timeout(self.io_timeout, limited.read_until(b'\n', &mut self.line))
                .await
                .map_err(|_| Failure::io(step, "timeout"))?
                .map_err(|e| Failure::io(step, e.kind()))?;
            if n == 0 {
                return Err(Failure::io(step, "connection closed"));
            }
            let Some((code, more, text)) = parse_reply_line(&self.line) else {
                return Err(Failure {
                    step,
                    what: "malformed reply".into(),
                });
            };
            if !more {
                return Ok(Reply {
                    code,
                    enhanced: enhanced_code(text),
                });
            }
        }
        Err(Failure {
            step,
            what: "reply too long".into(),
        })
    }

    /// Whether the connection is open with nothing to read: not closed by the server, and
    /// no unsolicited reply (a 421 idle-timeout notice counts as closed). Never blocks; may
    /// consume a byte, so call it only before dropping the connection.
    pub fn is_idle_open(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        let mut buf = [0u8; 1];
        match self.reader.get_ref().try_read(&mut buf) {
            Ok(_) => false, // EOF (0) or unsolicited bytes
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }

    async fn send(&mut self, step: Step, bytes: &[u8]) -> Result<(), Failure> {
        timeout(self.io_timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| Failure::io(step, "timeout"))?
            .map_err(|e| Failure::io(step, e.kind()))
    }

    /// Sends a command line and expects a reply whose code is in `ok`.
    async fn command(&mut self, step: Step, line: &str, ok: &[u16]) -> Result<Reply, Failure> {
        self.send(step, line.as_bytes()).await?;
        self.expect(step, ok).await
    }

    async fn expect(&mut self, step: Step, ok: &[u16]) -> Result<Reply, Failure> {
        let reply = self.read_reply(step).await?;
        if ok.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(Failure {
                step,
                what: reply.describe(),
            })
        }
    }

    /// Delivers one message whose DATA content (`data`, already dot-stuffed, ending in CRLF)
    /// is split into per-message `headers` and a shared `body`. Returns the time from writing
    /// the final `.` CRLF to reading the 250 reply.
    pub async fn deliver(
        &mut self,
        env: &Envelope,
        headers: &[u8],
        body: &[u8],
    ) -> Result<Duration, Failure> {
        // RFC 5321 §4.3.1: the greeting is 220; anything else means "go away".
        self.expect(Step::Banner, &[220]).await?;
        self.command(Step::Ehlo, &format!("EHLO {}\r\n", env.helo), &[250])
            .await?;
        self.command(Step::Mail, &format!("MAIL FROM:<{}>\r\n", env.from), &[250])
            .await?;
        // RFC 5321 §4.3.2: 251 (user not local; will forward) is also a success.
        self.command(
            Step::Rcpt,
            &format!("RCPT TO:<{}>\r\n", env.to),
            &[250, 251],
        )
        .await?;
        self.command(Step::Data, "DATA\r\n", &[354]).await?;
        self.send(Step::DataEnd, headers).await?;
        self.send(Step::DataEnd, body).await?;
        // RFC 5321 §4.1.1.4: the mail data ends with CRLF "." CRLF; the content already
        // ends with CRLF, so the terminator we time is the last three bytes.
        let start = Instant::now();
        self.send(Step::DataEnd, b".\r\n").await?;
        self.expect(Step::DataEnd, &[250]).await?;
        Ok(start.elapsed())
    }

    /// Says QUIT and waits for the server to close, so TIME_WAIT lands on the server side
    /// (RFC 5321 §4.1.1.10: the receiver closes after replying 221). Errors here do not
    /// undo a delivery that was already acknowledged.
    pub async fn quit(mut self) -> Result<(), Failure> {
        self.command(Step::Quit, "QUIT\r\n", &[221]).await?;
        let mut sink = [0u8; 256];
        // A short wait only: the message is already counted.
        let _ = timeout(Duration::from_secs(1), async {
            while let Ok(n) = self.reader.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_continuation_lines() {
        assert_eq!(
            parse_reply_line(b"250 2.0.0 ok\r\n"),
            Some((250, false, &b"2.0.0 ok"[..]))
        );
        assert_eq!(
            parse_reply_line(b"250-PIPELINING\r\n"),
            Some((250, true, &b"PIPELINING"[..]))
        );
        assert_eq!(parse_reply_line(b"354\r\n"), Some((354, false, &b""[..])));
    }

    #[test]
    fn rejects_malformed_lines() {
        assert_eq!(parse_reply_line(b""), None);
        assert_eq!(parse_reply_line(b"25"), None);
        assert_eq!(parse_reply_line(b"2x0 ok\r\n"), None);
        assert_eq!(parse_reply_line(b"250xok\r\n"), None);
        assert_eq!(parse_reply_line("2é0 ok".as_bytes()), None);
    }

    #[test]
    fn extracts_enhanced_codes_only_when_well_formed() {
        assert_eq!(enhanced_code(b"5.1.1 no such user"), Some("5.1.1".into()));
        assert_eq!(enhanced_code(b"4.3.0"), Some("4.3.0".into()));
        assert_eq!(enhanced_code(b"mx.example ESMTP"), None);
        assert_eq!(enhanced_code(b"3.1.1 bad class"), None);
        assert_eq!(enhanced_code(b"5.1. x"), None);
    }
}
