//! A client connection: buffered reads of bounded CRLF lines and raw bytes, buffered writes,
//! and the STARTTLS upgrade.
//!
//! Invariant: on upgrade every byte read but not yet consumed is discarded, so nothing a client
//! pipelined after STARTTLS in plain text is ever taken as a command inside TLS (RFC 3207 §4.2,
//! RFC 2595 §3.1; CVE-2011-0411).

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{BoxStream, TlsAcceptor};

/// Buffer sizes: small, so that idle connections stay cheap.
const READ_CHUNK: usize = 4096;
/// The first read of a connection whose buffer was released ([`Conn::shrink`]): enough for
/// `DONE` or a short command line (a longer one takes more reads). It lives in the reading
/// future, so in every waiting session: small.
const FIRST_READ: usize = 64;
const WRITE_BUFFER: usize = 8192;

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line was longer than allowed; it was read and discarded up to its LF, so the
    /// connection can go on.
    #[error("line too long")]
    TooLong,
    /// The peer closed the connection.
    #[error("connection closed")]
    Eof,
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub struct Conn {
    stream: BoxStream,
    /// Replies queued for sending; released by [`Conn::shrink`] while the connection idles.
    out: Vec<u8>,
    buf: BytesMut,
    tls: bool,
    /// How long one write to the stream may stall (a client that stops reading).
    write_timeout: Option<Duration>,
}

/// Bounds `op` by `limit` (if any); running out is a `TimedOut` error.
async fn bounded<T>(
    limit: Option<Duration>,
    what: &str,
    op: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        None => op.await,
        Some(d) => tokio::time::timeout(d, op).await.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} timed out"),
            ))
        }),
    }
}

impl Conn {
    pub fn new(stream: BoxStream, tls: bool) -> Conn {
        Conn {
            stream,
            out: Vec::new(),
            buf: BytesMut::new(),
            tls,
            write_timeout: None,
        }
    }

    /// Every write and flush from now on fails with `TimedOut` when the client has not taken
    /// the bytes within `limit`, so a client that stops reading cannot hold the session.
    pub fn set_write_timeout(&mut self, limit: Duration) {
        self.write_timeout = Some(limit);
    }

    /// Whether the connection is encrypted (implicit TLS or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Bytes received but not yet consumed (pipelined input).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    async fn fill(&mut self) -> Result<(), LineError> {
        if self.buf.capacity() == 0 {
            // A shrunk (idle) connection waits with a small buffer inside the task instead of
            // a READ_CHUNK allocation of its own: 10,000 sessions in IDLE would otherwise hold
            // 40 MiB of empty read buffers. What arrives is copied into a buffer of its size.
            let mut first = [0u8; FIRST_READ];
            let n = self.stream.read(&mut first).await?;
            if n == 0 {
                return Err(LineError::Eof);
            }
            self.buf
                .extend_from_slice(first.get(..n).unwrap_or_default());
            if n == FIRST_READ {
                // More may have come with it (a pipelining client): take what is already
                // there without waiting, as one READ_CHUNK read would have. STARTTLS relies
                // on it: what was pipelined after the command is discarded from this buffer
                // (the CVE-2011-0411 class), not read by the handshake as a ClientHello.
                self.buf.reserve(READ_CHUNK);
                let mut more = std::pin::pin!(self.stream.read_buf(&mut self.buf));
                let polled =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(more.as_mut().poll(cx))).await;
                if let std::task::Poll::Ready(Err(e)) = polled {
                    return Err(e.into());
                }
            }
            return Ok(());
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(LineError::Eof);
        }
        Ok(())
    }

    /// Reads one line ending in LF (normally CRLF) of at most `max` octets including the line end.
    /// Returns the line with its line end. Overlong lines are swallowed up to their LF and
    /// reported as `TooLong`, never held in memory.
    pub async fn read_line(&mut self, max: usize) -> Result<BytesMut, LineError> {
        let mut scanned = 0;
        let mut discarding = false;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos + 1;
                if discarding || end > max {
                    self.buf.advance(end);
                    return Err(LineError::TooLong);
                }
                return Ok(self.buf.split_to(end));
            }
            if self.buf.len() > max {
                // Drop what we have and keep discarding until the line ends.
                discarding = true;
                self.buf.clear();
            }
            scanned = self.buf.len();
            self.fill().await?;
        }
    }

    /// Reads exactly `n` raw octets (BDAT chunks, IMAP literals) into `out`, in pieces.
    pub async fn read_exact_into(
        &mut self,
        mut n: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), LineError> {
        while n > 0 {
            if self.buf.is_empty() {
                self.fill().await?;
            }
            let take = n.min(self.buf.len());
            out.extend_from_slice(&self.buf[..take]);
            self.buf.advance(take);
            n -= take;
        }
        Ok(())
    }

    /// Bytes received but not yet consumed, without reading more (to check whether a whole
    /// pipelined command is already waiting).
    pub fn buffered_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Returns the buffered bytes, reading once from the peer if none are buffered (never
    /// empty on `Ok`). Pair with [`Conn::consume`]: a scanner (SMTP DATA) takes what it needs
    /// and leaves the rest, e.g. commands pipelined after the end of data, in the buffer.
    pub async fn fill_buf(&mut self) -> Result<&[u8], LineError> {
        if self.buf.is_empty() {
            self.fill().await?;
        }
        Ok(&self.buf)
    }

    /// Marks `n` bytes returned by [`Conn::fill_buf`] as consumed.
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
    }

    /// Reads and drops exactly `n` raw octets (an oversize BDAT chunk, a refused literal).
    pub async fn skip(&mut self, mut n: usize) -> Result<(), LineError> {
        while n > 0 {
            if self.buf.is_empty() {
                self.fill().await?;
            }
            let take = n.min(self.buf.len());
            self.buf.advance(take);
            n -= take;
        }
        Ok(())
    }

    /// Queues bytes for sending; call [`Conn::flush`] to send them. Large writes go straight
    /// to the stream once what is queued before them has been sent.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.out.len() + data.len() > WRITE_BUFFER {
            self.send_queued().await?;
        }
        if data.len() >= WRITE_BUFFER {
            return bounded(self.write_timeout, "write", self.stream.write_all(data)).await;
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    async fn send_queued(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            bounded(
                self.write_timeout,
                "write",
                self.stream.write_all(&self.out),
            )
            .await?;
            self.out.clear();
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.send_queued().await?;
        bounded(self.write_timeout, "flush", self.stream.flush()).await
    }

    /// Writes and flushes.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).await?;
        self.flush().await
    }

    /// Upgrades to TLS after the protocol's "go ahead" reply was flushed. Returns how many
    /// pipelined plaintext bytes were discarded (see the module invariant).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<usize> {
        self.flush().await?;
        let discarded = self.buf.len();
        self.buf = BytesMut::new();
        // Swap the stream out for a placeholder while the handshake owns it.
        let placeholder: BoxStream = Box::new(empty::Empty);
        let plain = std::mem::replace(&mut self.stream, placeholder);
        let _turn = crate::tls_gate::permit().await;
        // rustls' unbuffered API (lean_tls): an idle session then holds no TLS buffer.
        let tls =
            crate::lean_tls::accept(std::sync::Arc::clone(acceptor.config()), plain, Vec::new())
                .await?;
        self.stream = Box::new(tls);
        self.tls = true;
        Ok(discarded)
    }

    /// Releases the read and write buffers' memory while the connection waits (idle IMAP/POP3
    /// sessions): an idle connection then holds no buffer of its own.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    /// Sends any queued bytes and shuts the write side down.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

mod empty {
    //! A stream that reads EOF and swallows writes: the placeholder while TLS is negotiated.
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    pub struct Empty;
    impl AsyncRead for Empty {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
    impl AsyncWrite for Empty {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn_over(data: &'static [u8]) -> Conn {
        let (client, server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut client = client;
            client.write_all(data).await.unwrap();
            // keep the client open until the test reads everything
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        });
        Conn::new(Box::new(server), false)
    }

    #[tokio::test]
    async fn reads_lines_and_recovers_from_overlong() {
        let mut c = conn_over(b"HELO a\r\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\nNOOP\r\n");
        assert_eq!(&c.read_line(16).await.unwrap()[..], b"HELO a\r\n");
        assert!(matches!(c.read_line(16).await, Err(LineError::TooLong)));
        assert_eq!(&c.read_line(16).await.unwrap()[..], b"NOOP\r\n");
    }
}
