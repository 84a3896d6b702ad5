//! Streaming a large message body out of the database, so that POP3 RETR or an IMAP FETCH of a
//! 50 MiB message holds one chunk in memory, not the message.
//!
//! The body is read in [`CHUNK`]-sized slices, `substring(data from … for …)`, one statement
//! each on the connection the reader keeps. `blobs.data` is stored uncompressed out of line
//! (`STORAGE EXTERNAL`, schema v1) so that a slice reads only the TOAST chunks it covers: over
//! a compressed value every slice would decompress from the start. (COPY would not help: it
//! sends a row as one message, which the client buffers whole.)
//!
//! A body deleted while it is being read (its last message expunged) ends the stream with an
//! error; the embedded store's open file would still be readable.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use store::StoreResult;
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes fetched per statement.
pub const CHUNK: i64 = 256 * 1024;

type Fetch = Pin<Box<dyn Future<Output = (deadpool_postgres::Client, io::Result<Vec<u8>>)> + Send>>;

pub struct BlobStream {
    hash: String,
    size: i64,
    /// Offset of the next slice to fetch (0-based).
    next: i64,
    /// The connection, while no fetch is running.
    client: Option<deadpool_postgres::Client>,
    fetch: Option<Fetch>,
    /// Fetched bytes not read yet, and how far they were read.
    pending: Vec<u8>,
    read: usize,
}

/// A reader of the body `hash` of `size` bytes.
pub fn open(client: deadpool_postgres::Client, hash: &str, size: i64) -> StoreResult<BlobStream> {
    Ok(BlobStream {
        hash: hash.to_string(),
        size,
        next: 0,
        client: Some(client),
        fetch: None,
        pending: Vec::new(),
        read: 0,
    })
}

fn fetch(client: deadpool_postgres::Client, hash: String, from: i64) -> Fetch {
    Box::pin(async move {
        let result = async {
            let st = client
                .prepare_cached(
                    // substring counts from 1.
                    "SELECT substring(data from $2::bigint::int for $3::bigint::int) FROM blobs
                     WHERE hash = $1",
                )
                .await?;
            client.query_opt(&st, &[&hash, &(from + 1), &CHUNK]).await
        }
        .await;
        let bytes = match result {
            Ok(Some(row)) => Ok(row.get::<_, Vec<u8>>(0)),
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "message body deleted while being read",
            )),
            Err(e) => Err(io::Error::other(e)),
        };
        (client, bytes)
    })
}

impl AsyncRead for BlobStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.read < this.pending.len() {
                let n = (this.pending.len() - this.read).min(out.remaining());
                out.put_slice(&this.pending[this.read..this.read + n]);
                this.read += n;
                return Poll::Ready(Ok(()));
            }
            if let Some(f) = this.fetch.as_mut() {
                let (client, bytes) = ready!(f.as_mut().poll(cx));
                this.fetch = None;
                this.client = Some(client);
                let bytes = bytes?;
                if bytes.is_empty() && this.next < this.size {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "message body shorter than recorded",
                    )));
                }
                this.next += bytes.len() as i64;
                this.pending = bytes;
                this.read = 0;
                continue;
            }
            if this.next >= this.size || out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let Some(client) = this.client.take() else {
                return Poll::Ready(Err(io::Error::other("blob stream broken")));
            };
            this.fetch = Some(fetch(client, this.hash.clone(), this.next));
        }
    }
}
