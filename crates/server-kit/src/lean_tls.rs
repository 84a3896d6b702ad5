//! The server side of TLS over any byte stream, on rustls' unbuffered API, holding no buffer
//! while the connection waits.
//!
//! rustls' buffered `ServerConnection` (what tokio-rustls wraps) keeps a 4 KiB receive buffer
//! from the first record on, for the connection's whole life: a third of what an IMAP session
//! in IDLE costs. Here the buffers are ours: received TLS bytes, decrypted application data
//! and TLS bytes to send each live in a `Vec` that is given back when it is empty and the
//! socket has nothing more to read, so a quiet connection holds only rustls' state (keys,
//! the handshake's result). While the socket is quiet, a read waits on a buffer on the stack.
//!
//! Everything TLS is rustls': records, the handshake, alerts, key updates (RFC 8446 §4.6.3),
//! session tickets. This module moves bytes between rustls and the socket, following the
//! contract of `UnbufferedConnectionCommon::process_tls_records` (handle each state, then
//! discard what it says from the front of the received bytes, before calling it again).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at a time when a buffer is already there.
const READ_CHUNK: usize = 8 * 1024;
/// The stack buffer a quiet connection waits on.
const IDLE_READ: usize = 4 * 1024;
/// Application data encrypted per `poll_write` (four full records).
const WRITE_CHUNK: usize = 4 * 16 * 1024;
/// Above this many TLS bytes waiting to be sent, `poll_write` first sends them.
const SEND_HIGH_WATER: usize = 64 * 1024;
/// Received TLS bytes held at most: rustls assembles a handshake message (at most 64 KiB, its
/// own bound) in place in them; other records are at most 16 KiB + 256 bytes plus their 5-byte
/// header (RFC 8446 §5.2), and rustls refuses longer ones.
const MAX_RECEIVED: usize = 0xffff + 2 * (16 * 1024 + 256 + 5);

/// A TLS session on `IO`, server side, after its handshake ([`accept`]).
pub struct LeanTlsStream<IO> {
    io: IO,
    conn: UnbufferedServerConnection,
    /// TLS bytes received and not yet processed by rustls.
    received: Vec<u8>,
    /// Decrypted application data not yet read: `plain[plain_at..]`.
    plain: Vec<u8>,
    plain_at: usize,
    /// TLS bytes to send: `send[sent..]`.
    send: Vec<u8>,
    sent: usize,
    /// The peer closed: close_notify, or the end of the byte stream.
    eof: bool,
    /// Our close_notify is queued.
    closing: bool,
}

/// What to do when rustls is ready for application data.
enum Want<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// Where the connection stands after rustls processed what it could.
#[derive(PartialEq, Eq)]
enum Step {
    /// The handshake needs more bytes from the peer.
    NeedMore,
    /// Application data can flow (what was asked of [`Want`] is done).
    Traffic,
    /// Both sides closed.
    Closed,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Runs the server side of a TLS handshake on `io` with `config`. `received` holds bytes
/// already read from `io` (a ClientHello that was looked at first), processed before reading
/// more.
pub async fn accept<IO>(
    config: Arc<ServerConfig>,
    io: IO,
    received: Vec<u8>,
) -> io::Result<LeanTlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut stream = LeanTlsStream {
        io,
        conn,
        received,
        plain: Vec::new(),
        plain_at: 0,
        send: Vec::new(),
        sent: 0,
        eof: false,
        closing: false,
    };
    poll_fn(|cx| stream.poll_handshake(cx)).await?;
    Ok(stream)
}

impl<IO: AsyncRead + AsyncWrite + Unpin> LeanTlsStream<IO> {
    /// The ALPN protocol agreed in the handshake, if any (RFC 7301).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let step = match self.drive(Want::Nothing) {
                Ok(step) => step,
                Err(e) => {
                    // The alert rustls queued for the error goes out if the socket takes it.
                    let _ = self.poll_send(cx);
                    return Poll::Ready(Err(e));
                }
            };
            // Our flight goes out before we wait for the peer's.
            ready!(self.poll_send(cx))?;
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if step == Step::Closed || self.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            if ready!(self.poll_receive(cx))? == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Lets rustls process the received bytes until it needs more from the peer or can take
    /// application data; then does `want`. Handshake messages, tickets and alerts rustls
    /// produces meanwhile are appended to `send`; decrypted data to `plain`.
    fn drive(&mut self, want: Want<'_>) -> io::Result<Step> {
        let mut want = Some(want);
        loop {
            let status = self.conn.process_tls_records(&mut self.received);
            let discard = status.discard;
            let mut step = None;
            let mut failure = None;
            match status.state {
                Err(e) => failure = Some(tls_error(e)),
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    while let Some(record) = records.next_record() {
                        match record {
                            Ok(r) => self.plain.extend_from_slice(r.payload),
                            Err(e) => {
                                failure = Some(tls_error(e));
                                break;
                            }
                        }
                    }
                }
                // RFC 8446 §4.2.10: 0-RTT data is only accepted when offered, and yubin's
                // ServerConfigs do not (max_early_data_size 0): rustls never gets here.
                Ok(ConnectionState::ReadEarlyData(_)) => {
                    failure = Some(io::Error::other("0-RTT data was not offered"))
                }
                Ok(ConnectionState::EncodeTlsData(mut message)) => {
                    let at = self.send.len();
                    let mut room = 1024;
                    loop {
                        self.send.resize(at + room, 0);
                        let tail = self.send.get_mut(at..).unwrap_or_default();
                        match message.encode(tail) {
                            Ok(n) => {
                                self.send.truncate(at + n);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            })) => room = required_size,
                            Err(_) => {
                                self.send.truncate(at);
                                break;
                            }
                        }
                    }
                }
                // Sent by `poll_send` before this stream waits for anything; rustls only
                // needs to know the bytes are ours now.
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                Ok(ConnectionState::BlockedHandshake) => step = Some(Step::NeedMore),
                Ok(ConnectionState::PeerClosed) => self.eof = true,
                Ok(ConnectionState::Closed) => {
                    self.eof = true;
                    step = Some(Step::Closed);
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let at = self.send.len();
                    let result = match want.take() {
                        Some(Want::Encrypt(data)) => {
                            // Each record adds a header, a content type and the AEAD tag.
                            let mut room = data.len() + 64 * (data.len() / 16384 + 1);
                            loop {
                                self.send.resize(at + room, 0);
                                let tail = self.send.get_mut(at..).unwrap_or_default();
                                match traffic.encrypt(data, tail) {
                                    Err(EncryptError::InsufficientSize(s)) => {
                                        room = s.required_size
                                    }
                                    other => break other,
                                }
                            }
                        }
                        Some(Want::CloseNotify) => {
                            let mut room = 64;
                            loop {
                                self.send.resize(at + room, 0);
                                let tail = self.send.get_mut(at..).unwrap_or_default();
                                match traffic.queue_close_notify(tail) {
                                    Err(EncryptError::InsufficientSize(s)) => {
                                        room = s.required_size
                                    }
                                    other => break other,
                                }
                            }
                        }
                        Some(Want::Nothing) | None => Ok(0),
                    };
                    match result {
                        Ok(n) => self.send.truncate(at + n),
                        Err(e) => {
                            self.send.truncate(at);
                            failure = Some(io::Error::other(e.to_string()));
                        }
                    }
                    step = Some(Step::Traffic);
                }
                Ok(_) => failure = Some(io::Error::other("unexpected TLS state")),
            }
            self.received.drain(..discard.min(self.received.len()));
            if let Some(e) = failure {
                // rustls queues the alert that goes with the error: take it for sending.
                self.take_alert();
                return Err(e);
            }
            if let Some(step) = step {
                return Ok(step);
            }
        }
    }

    /// After an error, the alert rustls queued for the peer (RFC 8446 §6.2), into `send`.
    fn take_alert(&mut self) {
        let status = self.conn.process_tls_records(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut alert)) = status.state {
            let at = self.send.len();
            self.send.resize(at + 64, 0);
            let n = alert
                .encode(self.send.get_mut(at..).unwrap_or_default())
                .unwrap_or(0);
            self.send.truncate(at + n);
        }
    }

    /// Writes `send` to the socket until it is all out (then releases it) or the socket
    /// would block.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.send.len() {
            let pending = self.send.get(self.sent..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.send = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads from the socket into `received`; Ok(0) at its end. With nothing received and
    /// nothing to give out, the read waits on a stack buffer and the connection's buffers are
    /// released first: a quiet connection holds none.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.received.len() >= MAX_RECEIVED {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS record too long",
            )));
        }
        if self.received.is_empty() {
            let mut stack = [0u8; IDLE_READ];
            let mut buf = ReadBuf::new(&mut stack);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => {
                    self.received = Vec::new();
                    if self.plain_at >= self.plain.len() {
                        self.plain = Vec::new();
                        self.plain_at = 0;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    self.received.extend_from_slice(buf.filled());
                    return Poll::Ready(Ok(buf.filled().len()));
                }
            }
        }
        let at = self.received.len();
        self.received.resize(at + READ_CHUNK, 0);
        let mut buf = ReadBuf::new(self.received.get_mut(at..).unwrap_or_default());
        let result = Pin::new(&mut self.io).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.received.truncate(at + n);
        ready!(result)?;
        Poll::Ready(Ok(n))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for LeanTlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_at < this.plain.len() {
                let available = this.plain.get(this.plain_at..).unwrap_or_default();
                let n = available.len().min(buf.remaining());
                buf.put_slice(available.get(..n).unwrap_or_default());
                this.plain_at += n;
                if this.plain_at >= this.plain.len() {
                    this.plain.clear();
                    this.plain_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // What rustls produced while reading (tickets, key update answers) goes out too.
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            if !this.received.is_empty() {
                let before = this.received.len();
                this.drive(Want::Nothing)?;
                if this.plain_at < this.plain.len() || this.eof {
                    continue;
                }
                if this.received.len() < before {
                    // Records were used (handshake messages): there may be more to do.
                    continue;
                }
            }
            if ready!(this.poll_receive(cx))? == 0 {
                // The stream ended without close_notify: an end of data all the same.
                this.eof = true;
                continue;
            }
            this.drive(Want::Nothing)?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LeanTlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.send.len() - this.sent >= SEND_HIGH_WATER {
            ready!(this.poll_send(cx))?;
        }
        let n = data.len().min(WRITE_CHUNK);
        if this.drive(Want::Encrypt(data.get(..n).unwrap_or_default()))? != Step::Traffic {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS session is closed",
            )));
        }
        // Sent now if the socket takes it; what it does not take waits in `send`.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            // RFC 8446 §6.1: close_notify before closing the write side.
            this.drive(Want::CloseNotify)?;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn configs(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// A server that echoes every byte until the client closes, then closes with close_notify.
    async fn echo_server(config: Arc<ServerConfig>, io: tokio::io::DuplexStream) -> usize {
        let mut s = accept(config, io, Vec::new()).await.unwrap();
        let mut buf = vec![0u8; 10_000];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            s.write_all(&buf[..n]).await.unwrap();
        }
        s.shutdown().await.unwrap();
        total
    }

    async fn round_trip(versions: &[&'static rustls::SupportedProtocolVersion]) {
        let (server, client) = configs(versions);
        // A small pipe: writes block until the other side reads, as a slow socket would.
        let (c, s) = tokio::io::duplex(4096);
        let echo = tokio::spawn(echo_server(server, s));
        let connector = tokio_rustls::TlsConnector::from(client);
        let name = ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, c).await.unwrap();
        let (mut rd, mut wr) = tokio::io::split(stream);
        // 1 MiB in uneven pieces, read back while it is being written.
        let data: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for piece in sent.chunks(7919) {
                wr.write_all(piece).await.unwrap();
            }
            wr.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        rd.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert!(back == data, "echoed bytes differ");
        assert_eq!(echo.await.unwrap(), data.len());
    }

    #[tokio::test]
    async fn tls13_round_trip_of_a_mebibyte_and_close_notify() {
        round_trip(&[&rustls::version::TLS13]).await;
    }

    #[tokio::test]
    async fn tls12_round_trip_of_a_mebibyte_and_close_notify() {
        round_trip(&[&rustls::version::TLS12]).await;
    }

    #[tokio::test]
    async fn a_waiting_session_holds_no_buffer() {
        let (server, client) = configs(&[&rustls::version::TLS13]);
        let (c, s) = tokio::io::duplex(64 * 1024);
        let server_side = tokio::spawn(async move {
            let mut s = accept(server, s, Vec::new()).await.unwrap();
            let mut line = [0u8; 5];
            s.read_exact(&mut line).await.unwrap();
            assert_eq!(&line, b"hello");
            s.write_all(b"world").await.unwrap();
            s.flush().await.unwrap();
            // Now wait for more that does not come yet.
            let mut more = [0u8; 1];
            let waiting = tokio::time::timeout(Duration::from_millis(100), s.read(&mut more)).await;
            assert!(waiting.is_err(), "nothing was sent");
            assert_eq!(s.received.capacity(), 0);
            assert_eq!(s.plain.capacity(), 0);
            assert_eq!(s.send.capacity(), 0);
            let n = s.read(&mut more).await.unwrap();
            assert_eq!((n, more[0]), (1, b'!'));
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let mut stream = connector
            .connect(ServerName::try_from("localhost").unwrap(), c)
            .await
            .unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"world");
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(b"!").await.unwrap();
        server_side.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_instead_of_a_client_hello_is_an_error() {
        let (server, _) = configs(&[&rustls::version::TLS13]);
        let (mut c, s) = tokio::io::duplex(4096);
        let server_side = tokio::spawn(accept(server, s, Vec::new()));
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let result = server_side.await.unwrap();
        assert_eq!(
            result.err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
        // rustls' alert went out before the error.
        let mut alert = [0u8; 7];
        c.read_exact(&mut alert).await.unwrap();
        assert_eq!(alert[0], 21, "an alert record");
    }
}
