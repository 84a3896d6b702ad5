//! A minimal IMAP client for the IMAP benchmarks: LOGIN, tagged commands, APPEND with a
//! synchronising literal and IDLE/DONE (RFC 9051 / RFC 3501 subset, RFC 2177), over plain TCP
//! or implicit TLS (RFC 8314 §3.2).
//!
//! It reads every response completely — lines and the literals inside them (RFC 9051 §4.3:
//! `{N}` CRLF then N octets, the response going on after them) — so a benchmark counts what the
//! server really sent. It does not parse response contents beyond the tag, the status word and
//! `* N EXISTS` (RFC 9051 §7.4.1), which the mixed load needs to pick message numbers.
//! Every read and write has a timeout; a broken server yields an error, never a hang.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

/// Longest response line (without literals) accepted.
const MAX_LINE: usize = 1 << 20;
/// Initial read buffer: small, so that 10,000 idle clients stay cheap in the bench itself.
const READ_CHUNK: usize = 4096;

/// A byte stream the client can use: TCP or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The status word of a tagged response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// A finished command: its status, how many untagged responses and bytes came with it.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub status: Status,
    pub untagged: u64,
    pub bytes: u64,
}

enum Kind {
    Tagged(Status),
    Untagged,
    Continue,
}

/// The benchmark talks to a throw-away server on loopback with a self-signed certificate:
/// authenticity is not what is measured, so it accepts any certificate, with the verifier the
/// outbound queue uses for opportunistic STARTTLS.
use queue::client::AcceptAnyCert;

/// A TLS connector that accepts the server's self-signed certificate.
pub fn tls_connector() -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Quotes `s` as an IMAP quoted string (RFC 9051 §4.3: `"` and `\` escaped).
pub fn quoted(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// The literal size announced at the end of a line (`{N}`, `{N+}` or `~{N}` then CRLF).
pub fn literal_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = inner.get(open + 1..)?;
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `* N EXISTS` → N (RFC 9051 §7.4.1; the word is case-insensitive, §9 note 3).
pub fn exists_of(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"* ")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let (num, word) = rest.split_at(sp);
    let word = word.get(1..)?;
    if !word.get(..6)?.eq_ignore_ascii_case(b"EXISTS") {
        return None;
    }
    std::str::from_utf8(num).ok()?.parse().ok()
}

fn status_word(rest: &[u8]) -> Option<Status> {
    let word = rest.split(|&b| b == b' ' || b == b'\r').next()?;
    if word.eq_ignore_ascii_case(b"OK") {
        Some(Status::Ok)
    } else if word.eq_ignore_ascii_case(b"NO") {
        Some(Status::No)
    } else if word.eq_ignore_ascii_case(b"BAD") {
        Some(Status::Bad)
    } else {
        None
    }
}

/// One connection.
pub struct ImapClient {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    next_tag: u64,
    io_timeout: Duration,
    /// The last `* N EXISTS` the server sent (0 before any SELECT).
    pub exists: u32,
}

impl ImapClient {
    /// Connects (with TLS when `tls` is given) and reads the greeting.
    pub async fn connect(
        addr: &str,
        tls: Option<&TlsConnector>,
        io_timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::connect_from(addr, None, tls, io_timeout).await
    }

    /// [`connect`](Self::connect) from a given local address: a loopback benchmark spreads
    /// its connections over 127.0.0.0/8 because one source address has only ~28k ephemeral
    /// ports.
    pub async fn connect_from(
        addr: &str,
        local: Option<std::net::IpAddr>,
        tls: Option<&TlsConnector>,
        io_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let connecting = async {
            let Some(ip) = local else {
                return TcpStream::connect(addr).await;
            };
            let remote = tokio::net::lookup_host(addr)
                .await?
                .next()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
            let socket = if ip.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
            socket.connect(remote).await
        };
        let tcp = timeout(io_timeout, connecting)
            .await
            .map_err(|_| anyhow!("connect: timeout"))?
            .with_context(|| format!("connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match tls {
            Some(c) => {
                let name = ServerName::try_from("localhost")?.to_owned();
                let s = timeout(io_timeout, c.connect(name, tcp))
                    .await
                    .map_err(|_| anyhow!("TLS handshake: timeout"))??;
                Box::new(s)
            }
            None => Box::new(tcp),
        };
        let mut c = ImapClient {
            stream,
            buf: Vec::new(),
            start: 0,
            end: 0,
            next_tag: 1,
            io_timeout,
            exists: 0,
        };
        // RFC 9051 §7.1.1 / §7.1.4: the greeting is an untagged OK (or PREAUTH / BYE).
        let (kind, first, _) = c.read_response(b"").await?;
        if !matches!(kind, Kind::Untagged) || !first.starts_with(b"* OK") {
            bail!("unexpected greeting");
        }
        c.shrink();
        Ok(c)
    }

    /// Releases the read buffer (idle connections in the IDLE benchmark).
    pub fn shrink(&mut self) {
        if self.start == self.end {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < READ_CHUNK {
                let grow = (self.buf.len()).clamp(READ_CHUNK, 256 * 1024);
                self.buf.resize(self.buf.len() + grow, 0);
            }
        }
        let dst = self.buf.get_mut(self.end..).unwrap_or_default();
        let n = timeout(self.io_timeout, self.stream.read(dst))
            .await
            .map_err(|_| anyhow!("read: timeout"))??;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.end += n;
        Ok(())
    }

    /// Reads one line (through LF); returns its range in `buf`.
    async fn line(&mut self) -> anyhow::Result<(usize, usize)> {
        // Scanned bytes counted from `start`, which fill() may move when it compacts.
        let mut scanned = 0;
        loop {
            let hay = self
                .buf
                .get(self.start + scanned..self.end)
                .unwrap_or_default();
            if let Some(p) = hay.iter().position(|&b| b == b'\n') {
                let range = (self.start, self.start + scanned + p + 1);
                self.start = range.1;
                return Ok(range);
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE {
                bail!("response line too long");
            }
            self.fill().await?;
        }
    }

    /// Discards `n` octets of literal data.
    async fn skip(&mut self, mut n: u64) -> anyhow::Result<()> {
        loop {
            let have = (self.end - self.start) as u64;
            let take = have.min(n);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Reads one whole response (line fragments and literals). Returns its kind, the first
    /// line fragment (without literal data) and its size in bytes.
    async fn read_response(&mut self, tag: &[u8]) -> anyhow::Result<(Kind, Vec<u8>, u64)> {
        let (s, e) = self.line().await?;
        let first = self.buf.get(s..e).unwrap_or_default().to_vec();
        let mut bytes = (e - s) as u64;
        let kind = if first.starts_with(b"+") {
            Kind::Continue
        } else if first.starts_with(b"* ") {
            if let Some(n) = exists_of(&first) {
                self.exists = n;
            }
            Kind::Untagged
        } else if !tag.is_empty() && first.starts_with(tag) && first.get(tag.len()) == Some(&b' ') {
            let rest = first.get(tag.len() + 1..).unwrap_or_default();
            Kind::Tagged(status_word(rest).ok_or_else(|| anyhow!("malformed tagged response"))?)
        } else {
            bail!("unexpected response line");
        };
        let mut lit = literal_size(&first);
        while let Some(n) = lit {
            self.skip(n).await?;
            bytes += n;
            let (s, e) = self.line().await?;
            bytes += (e - s) as u64;
            lit = literal_size(self.buf.get(s..e).unwrap_or_default());
        }
        Ok((kind, first, bytes))
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        timeout(self.io_timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| anyhow!("write: timeout"))??;
        Ok(())
    }

    fn tag(&mut self) -> String {
        let t = format!("b{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    async fn finish(&mut self, tag: &str) -> anyhow::Result<Done> {
        let mut untagged = 0;
        let mut bytes = 0;
        loop {
            let (kind, _, n) = self.read_response(tag.as_bytes()).await?;
            bytes += n;
            match kind {
                Kind::Tagged(status) => {
                    return Ok(Done {
                        status,
                        untagged,
                        bytes,
                    });
                }
                Kind::Untagged => untagged += 1,
                Kind::Continue => bail!("unexpected continuation request"),
            }
        }
    }

    /// Sends `command` (without tag and CRLF) and reads everything up to its tagged status.
    pub async fn command(&mut self, command: &str) -> anyhow::Result<Done> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.finish(&tag).await
    }

    /// Like [`command`](Self::command), but a status other than OK is an error.
    pub async fn ok(&mut self, command: &str) -> anyhow::Result<Done> {
        let d = self.command(command).await?;
        if d.status != Status::Ok {
            let verb = command.split(' ').next().unwrap_or_default();
            bail!("{verb}: {:?}", d.status);
        }
        Ok(d)
    }

    pub async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        self.ok(&format!("LOGIN {} {}", quoted(user), quoted(password)))
            .await
            .map(drop)
    }

    /// Waits for a `+` continuation request; a tagged response instead is an error.
    async fn until_continue(&mut self, tag: &str) -> anyhow::Result<()> {
        loop {
            match self.read_response(tag.as_bytes()).await?.0 {
                Kind::Continue => return Ok(()),
                Kind::Untagged => {}
                Kind::Tagged(s) => bail!("refused: {s:?}"),
            }
        }
    }

    /// APPEND with a synchronising literal (RFC 9051 §6.3.12, §7.5), so it works on every
    /// server whether or not it offers LITERAL+.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &str,
        message: &[u8],
    ) -> anyhow::Result<Done> {
        let tag = self.tag();
        self.send(
            format!(
                "{tag} APPEND {} ({flags}) {{{}}}\r\n",
                quoted(mailbox),
                message.len()
            )
            .as_bytes(),
        )
        .await?;
        self.until_continue(&tag).await?;
        // The command line ends after the literal (RFC 9051 §6.3.12 append = ... literal).
        timeout(self.io_timeout, async {
            self.stream.write_all(message).await?;
            self.stream.write_all(b"\r\n").await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| anyhow!("write: timeout"))??;
        self.finish(&tag).await
    }

    /// Starts IDLE (RFC 2177 §3) and waits for the continuation; returns the tag for
    /// [`idle_done`](Self::idle_done).
    pub async fn idle_start(&mut self) -> anyhow::Result<String> {
        let tag = self.tag();
        self.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        self.until_continue(&tag).await?;
        Ok(tag)
    }

    /// Sets the timeout for every later read and write. An IDLE reader lifts it while it
    /// waits, since an idle server is silent by design (RFC 2177 §3), and puts it back for DONE.
    pub fn set_io_timeout(&mut self, io_timeout: Duration) {
        self.io_timeout = io_timeout;
    }

    /// Reads the next untagged response during IDLE and returns its first line (CRLF
    /// included); [`exists`](Self::exists) follows any `* N EXISTS`. A tagged response or a
    /// continuation request here is an error: the server ended or garbled the IDLE.
    /// Cancelling it between lines loses nothing: unread bytes stay in the buffer.
    pub async fn untagged(&mut self) -> anyhow::Result<Vec<u8>> {
        match self.read_response(b"").await? {
            (Kind::Untagged, first, _) => Ok(first),
            (Kind::Continue, ..) => bail!("unexpected continuation request"),
            (Kind::Tagged(s), ..) => bail!("unexpected tagged response: {s:?}"),
        }
    }

    /// Ends IDLE with DONE and reads the tagged status.
    pub async fn idle_done(&mut self, tag: &str) -> anyhow::Result<Done> {
        self.send(b"DONE\r\n").await?;
        self.finish(tag).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_sizes() {
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {123}\r\n"), Some(123));
        assert_eq!(literal_size(b"a APPEND x {5+}\r\n"), Some(5));
        assert_eq!(literal_size(b"* 1 FETCH (BINARY[] ~{7}\r\n"), Some(7));
        assert_eq!(literal_size(b"* OK {x}\r\n"), None);
        assert_eq!(literal_size(b"* OK done\r\n"), None);
        assert_eq!(literal_size(b"* OK {}\r\n"), None);
    }

    #[test]
    fn exists_and_status() {
        assert_eq!(exists_of(b"* 172 EXISTS\r\n"), Some(172));
        assert_eq!(exists_of(b"* 3 RECENT\r\n"), None);
        assert_eq!(exists_of(b"* OK [UIDNEXT 4]\r\n"), None);
        assert_eq!(status_word(b"OK done\r\n"), Some(Status::Ok));
        assert_eq!(status_word(b"no [X] y\r\n"), Some(Status::No));
        assert_eq!(status_word(b"BAD\r\n"), Some(Status::Bad));
        assert_eq!(status_word(b"PREAUTH x"), None);
    }

    #[test]
    fn quotes_strings() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    /// A scripted server over a duplex pipe: literals inside responses are skipped, EXISTS is
    /// tracked, the tagged status ends the command.
    #[tokio::test]
    async fn reads_literals_and_tagged_status() {
        let (client_side, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            server.write_all(b"* OK ready\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"b1 FETCH 1 BODY[]\r\n");
            server
                .write_all(b"* 2 EXISTS\r\n* 1 FETCH (BODY[] {10}\r\n0123456789)\r\nb1 OK done\r\n")
                .await
                .unwrap();
        });
        let mut c = ImapClient {
            stream: Box::new(client_side),
            buf: Vec::new(),
            start: 0,
            end: 0,
            next_tag: 1,
            io_timeout: Duration::from_secs(5),
            exists: 0,
        };
        let (kind, first, _) = c.read_response(b"").await.unwrap();
        assert!(matches!(kind, Kind::Untagged));
        assert_eq!(first, b"* OK ready\r\n");
        let d = c.command("FETCH 1 BODY[]").await.unwrap();
        assert_eq!(d.status, Status::Ok);
        assert_eq!(d.untagged, 2);
        assert_eq!(c.exists, 2);
        assert_eq!(d.bytes, 12 + 24 + 10 + 3 + 12);
        task.await.unwrap();
    }
}
