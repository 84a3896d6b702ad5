//! Where SORT, THREAD and the CONTEXT=SORT updates get the header facts of messages: one
//! function, [`load_keys`], served by the store's cache of message facts.

use std::collections::HashMap;

use store::{BlobId, StoreError, Uid};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

use super::keys::MessageKeys;
use crate::ctx::Ctx;
use crate::facts;
use crate::state::Selected;

/// Messages read at once; their headers are then parsed together on the blocking pool.
const BATCH: usize = 64;

/// At most this much of a header is read; the fields SORT and THREAD use come early, and a
/// batch then holds at most `BATCH` times this in memory whatever the message sizes.
const MAX_HEADER: usize = 256 * 1024;

/// On a cache miss, messages up to this size are read whole (and their facts cached); larger
/// ones only up to the end of their header.
const SMALL: u64 = 64 * 1024;

/// Where the header ends in `buf` (the index after its blank line), looking from `from`.
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    if buf.starts_with(b"\r\n") {
        return Some(2);
    }
    if buf.starts_with(b"\n") {
        return Some(1);
    }
    let from = from.min(buf.len());
    buf[from..]
        .windows(2)
        .enumerate()
        .find_map(|(i, w)| match w {
            b"\n\n" => Some(from + i + 2),
            b"\n\r" if buf.get(from + i + 2) == Some(&b'\n') => Some(from + i + 3),
            _ => None,
        })
}

/// Reads the header of a stored message, up to [`MAX_HEADER`] octets; `None` when the
/// message is gone.
async fn read_header(
    store: &dyn store::Store,
    blob: &BlobId,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut r = match store.open_blob(blob).await {
        Ok(r) => r,
        Err(StoreError::Expunged | StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = r
            .read(&mut chunk)
            .await
            .map_err(|e| StoreError::Temporary(format!("reading a message: {e}")))?;
        if n == 0 {
            return Ok(Some(buf));
        }
        let from = buf.len().saturating_sub(2);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = header_end(&buf, from) {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if buf.len() >= MAX_HEADER {
            buf.truncate(MAX_HEADER);
            return Ok(Some(buf));
        }
    }
}

/// The [`MessageKeys`] of the messages `uids` of the selected mailbox, in the order given;
/// `None` for a message expunged meanwhile.
///
/// The headers come from the store's cache of message facts (`crate::facts`) where it has
/// them. On a miss a small message is read whole and its facts computed and cached (FETCH of
/// ENVELOPE then finds them too); a large one is read only up to the end of its header. A
/// batch at a time; headers are parsed on the blocking pool, so a SORT of a large mailbox
/// never holds an async worker for long.
pub(crate) async fn load_keys(
    ctx: &Ctx,
    sel: &Selected,
    uids: &[Uid],
) -> Result<Vec<Option<MessageKeys>>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(BATCH) {
        let bodies = ctx
            .server
            .store
            .message_bodies(sel.id, chunk, facts::VERSION)
            .await?;
        let by_uid: HashMap<Uid, usize> = chunk.iter().enumerate().map(|(i, u)| (*u, i)).collect();
        let mut headers: Vec<Option<Header>> = vec![None; chunk.len()];
        let mut reads = JoinSet::new();
        for body in bodies {
            let Some(&i) = by_uid.get(&body.uid) else {
                continue;
            };
            if let Some(f) = body.facts {
                headers[i] = Some(Header::Cached(f.header.clone()));
                continue;
            }
            let store = ctx.server.store.clone();
            reads.spawn(async move {
                let h = if body.size <= SMALL {
                    match store.read_blob(&body.blob, body.size).await {
                        Ok(raw) => Some(Header::Whole(body.blob, raw)),
                        Err(StoreError::Expunged) => None,
                        Err(e) => return Err(e),
                    }
                } else {
                    read_header(&*store, &body.blob).await?.map(Header::Cached)
                };
                Ok::<_, StoreError>((i, h))
            });
        }
        while let Some(done) = reads.join_next().await {
            let (i, header) =
                done.map_err(|e| StoreError::Temporary(format!("read task: {e}")))??;
            headers[i] = header;
        }
        let (keys, computed) = tokio::task::spawn_blocking(move || {
            let mut computed = Vec::new();
            let keys = headers
                .into_iter()
                .map(|h| {
                    h.map(|h| match h {
                        Header::Cached(h) => MessageKeys::parse(&h),
                        Header::Whole(blob, raw) => {
                            let f = facts::compute(&raw);
                            let keys = MessageKeys::parse(&f.header);
                            computed.push((blob, f));
                            keys
                        }
                    })
                })
                .collect::<Vec<_>>();
            (keys, computed)
        })
        .await
        .map_err(|e| StoreError::Temporary(format!("header parse task: {e}")))?;
        facts::cache(ctx, computed);
        out.extend(keys);
    }
    Ok(out)
}

/// What was loaded of one message's header.
#[derive(Clone)]
enum Header {
    /// The header section (from the cache, or read up to its end).
    Cached(Vec<u8>),
    /// The whole message, whose facts are to be computed (and cached).
    Whole(BlobId, Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_blank_line() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody", 0), Some(8));
        assert_eq!(header_end(b"A: b\n\nbody", 0), Some(6));
        assert_eq!(header_end(b"\r\nbody", 0), Some(2));
        assert_eq!(header_end(b"A: b\r\n", 0), None);
        assert_eq!(header_end(b"A: b\r\nC: d\r\n\r\n", 4), Some(14));
        // Split across reads: the search starts two octets before the new data.
        let buf = b"A: b\r\n\r\n";
        assert_eq!(header_end(buf, 5), Some(8));
    }
}
