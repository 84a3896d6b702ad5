//! The placeholder IMAP session loop.

use std::io;
use std::sync::Arc;

use server_kit::{BoxStream, Conn, ConnInfo, LineError, Shutdown};

use crate::ImapServer;

/// RFC 7888 §5 / RFC 9051 §4.3: the largest non-synchronizing literal a server must accept.
const MAX_NONSYNC_LITERAL: usize = 4096;

struct Session {
    server: Arc<ImapServer>,
    conn: Conn,
    info: ConnInfo,
    shutdown: Shutdown,
}

enum Flow {
    Continue,
    Close,
}

pub(crate) async fn run(
    server: Arc<ImapServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    let mut s = Session {
        server,
        conn: Conn::new(stream, tls),
        info,
        shutdown,
    };
    let result = s.command_loop().await;
    let write_timeout = s.server.config.idle_timeout;
    let _ = tokio::time::timeout(write_timeout, s.conn.close()).await;
    tracing::info!(
        conn = s.info.id,
        peer = %s.info.peer,
        listener = s.info.listener,
        tls = s.conn.is_tls(),
        error = result.err().map(|e| e.to_string()),
        "imap session closed"
    );
}

impl Session {
    /// RFC 9051 §7.2.2: the capabilities for the connection's current state.
    fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 IMAP4rev2");
        if self.server.tls.is_some() && !self.conn.is_tls() {
            caps.push_str(" STARTTLS");
        }
        // RFC 9051 §6.2.3: LOGINDISABLED where the server refuses plaintext passwords.
        if !self
            .server
            .config
            .plaintext_auth
            .permits(&self.info, self.conn.is_tls())
        {
            caps.push_str(" LOGINDISABLED");
        }
        caps
    }

    async fn send(&mut self, text: &str) -> io::Result<()> {
        let timeout = self.server.config.idle_timeout;
        let write = async {
            self.conn.write(text.as_bytes()).await?;
            self.conn.write(b"\r\n").await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    async fn next_line(&mut self) -> io::Result<Option<Result<Vec<u8>, LineError>>> {
        let timeout = self.server.config.idle_timeout;
        match tokio::time::timeout(timeout, self.conn.flush()).await {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "flush timed out")),
        }
        self.conn.shrink();
        let max = self.server.config.max_line_length;
        let read = tokio::time::timeout(timeout, self.conn.read_line(max));
        tokio::select! {
            _ = self.shutdown.cancelled() => {
                self.send("* BYE server shutting down").await?;
                Ok(None)
            }
            r = read => match r {
                Ok(r) => Ok(Some(r.map(|l| l.to_vec()))),
                // RFC 9051 §5.4: autologout timer.
                Err(_) => {
                    self.send("* BYE autologout; idle for too long").await?;
                    Ok(None)
                }
            },
        }
    }

    async fn command_loop(&mut self) -> io::Result<()> {
        // RFC 9051 §7.1.1: greeting with a CAPABILITY response code saves a round trip.
        let greeting = format!("* OK [CAPABILITY {}] yubin IMAP ready", self.capabilities());
        self.send(&greeting).await?;
        loop {
            let line = match self.next_line().await? {
                None => return Ok(()),
                Some(Ok(line)) => line,
                Some(Err(LineError::TooLong)) => {
                    self.send("* BAD line too long").await?;
                    continue;
                }
                Some(Err(LineError::Eof)) => return Ok(()),
                Some(Err(LineError::Io(e))) => return Err(e),
            };
            if let Flow::Close = self.command(&line).await? {
                return Ok(());
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> io::Result<Flow> {
        let Some((tag, name, rest)) = split_command(line) else {
            self.send("* BAD malformed command").await?;
            return Ok(Flow::Continue);
        };
        // A command's non-synchronizing literals are sent without waiting; read past them
        // before answering, so their bytes are never taken as commands (RFC 9051 §4.3).
        let mut tail = line.to_vec();
        while let Some((size, nonsync)) = trailing_literal(&tail) {
            if !nonsync {
                // Synchronizing literal: answering now instead of `+` tells the client not to
                // send it (RFC 9051 §7.5).
                break;
            }
            if size > MAX_NONSYNC_LITERAL {
                // RFC 7888 §4: reject; the literal's bytes follow regardless, so close.
                self.send(&format!("{tag} BAD literal too large")).await?;
                self.send("* BYE literal too large").await?;
                return Ok(Flow::Close);
            }
            if self.conn.skip(size).await.is_err() {
                return Ok(Flow::Close);
            }
            tail = match self.next_line().await? {
                Some(Ok(l)) => l,
                Some(Err(LineError::TooLong)) => {
                    self.send(&format!("{tag} BAD line too long")).await?;
                    return Ok(Flow::Continue);
                }
                _ => return Ok(Flow::Close),
            };
        }
        let no_args = rest.is_empty();
        match name.to_ascii_uppercase().as_str() {
            "CAPABILITY" | "NOOP" | "LOGOUT" | "STARTTLS" if !no_args => {
                self.send(&format!("{tag} BAD unexpected arguments"))
                    .await?;
            }
            // RFC 9051 §6.1.1
            "CAPABILITY" => {
                let caps = self.capabilities();
                self.send(&format!("* CAPABILITY {caps}")).await?;
                self.send(&format!("{tag} OK CAPABILITY completed")).await?;
            }
            // RFC 9051 §6.1.2
            "NOOP" => self.send(&format!("{tag} OK NOOP completed")).await?,
            // RFC 9051 §6.1.3: untagged BYE, then the tagged OK.
            "LOGOUT" => {
                self.send("* BYE yubin IMAP logging out").await?;
                self.send(&format!("{tag} OK LOGOUT completed")).await?;
                return Ok(Flow::Close);
            }
            "STARTTLS" => return self.starttls(&tag).await,
            _ => {
                self.send(&format!(
                    "{tag} NO [UNAVAILABLE] IMAP is not implemented yet; use POP3"
                ))
                .await?
            }
        }
        Ok(Flow::Continue)
    }

    /// RFC 9051 §6.2.1: tagged OK, then the handshake. Bytes pipelined after the command are
    /// discarded by `Conn::start_tls`; the client must ask for the capabilities again.
    async fn starttls(&mut self, tag: &str) -> io::Result<Flow> {
        let acceptor = match (&self.server.tls, self.conn.is_tls()) {
            (_, true) => {
                self.send(&format!("{tag} BAD TLS is already active"))
                    .await?;
                return Ok(Flow::Continue);
            }
            (None, false) => {
                self.send(&format!("{tag} BAD STARTTLS not available"))
                    .await?;
                return Ok(Flow::Continue);
            }
            (Some(a), false) => a.clone(),
        };
        self.send(&format!("{tag} OK Begin TLS negotiation now"))
            .await?;
        let timeout = self.server.config.idle_timeout;
        match tokio::time::timeout(timeout, self.conn.start_tls(&acceptor)).await {
            Ok(Ok(discarded)) => {
                if discarded > 0 {
                    tracing::info!(
                        conn = self.info.id,
                        discarded,
                        "imap: discarded plaintext pipelined after STARTTLS"
                    );
                }
                Ok(Flow::Continue)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

/// `tag SP command [SP rest]` — RFC 9051 §9:
/// `tag = 1*<any ASTRING-CHAR except "+">`, command names are atoms.
fn split_command(line: &[u8]) -> Option<(String, String, String)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let (tag, rest) = line.split_once(' ')?;
    let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if tag.is_empty() || !tag.bytes().all(is_tag_char) {
        return None;
    }
    if name.is_empty() || !name.bytes().all(|b| is_tag_char(b) && b != b']') {
        return None;
    }
    if rest.chars().any(|c| c.is_control()) {
        return None;
    }
    Some((tag.to_string(), name.to_string(), rest.to_string()))
}

/// ASTRING-CHAR except "+": printable ASCII without atom-specials other than "]".
fn is_tag_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !b"(){%*\"\\+".contains(&b)
}

/// A literal announcement at the end of a line: `"{" number ["+"] "}" CRLF` — RFC 9051 §9.
/// Returns (size, non-synchronizing).
fn trailing_literal(line: &[u8]) -> Option<(usize, bool)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let spec = inner.get(open + 1..)?;
    let (digits, nonsync) = match spec.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (spec, false),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((size, nonsync))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands() {
        assert_eq!(
            split_command(b"a1 capability\r\n"),
            Some(("a1".into(), "capability".into(), String::new()))
        );
        assert_eq!(
            split_command(b"x LOGIN user pass\r\n"),
            Some(("x".into(), "LOGIN".into(), "user pass".into()))
        );
        assert_eq!(split_command(b"\r\n"), None);
        assert_eq!(split_command(b"a1\r\n"), None);
        assert_eq!(split_command(b"a+1 NOOP\r\n"), None);
        assert_eq!(split_command(b"* NOOP\r\n"), None);
        assert_eq!(split_command(b"a1 \r\n"), None);
        assert_eq!(split_command(b"a1 NO\x01OP\r\n"), None);
        assert_eq!(split_command(b"a\xff NOOP\r\n"), None);
    }

    #[test]
    fn finds_literals() {
        assert_eq!(trailing_literal(b"a LOGIN {5}\r\n"), Some((5, false)));
        assert_eq!(trailing_literal(b"a LOGIN {12+}\r\n"), Some((12, true)));
        assert_eq!(trailing_literal(b"a LOGIN {}\r\n"), None);
        assert_eq!(trailing_literal(b"a LOGIN {+}\r\n"), None);
        assert_eq!(trailing_literal(b"a LOGIN {x}\r\n"), None);
        assert_eq!(trailing_literal(b"a NOOP\r\n"), None);
        assert_eq!(trailing_literal(b"a X {99999999999}\r\n"), None);
    }
}
