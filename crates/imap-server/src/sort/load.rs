//! Where SORT, THREAD and the CONTEXT=SORT updates get the header facts of messages: one
//! function, [`load_keys`], so that a per-message cache can serve them later without the
//! callers changing.

use std::collections::HashMap;

use store::{BlobId, StoreError, Uid};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

use super::keys::MessageKeys;
use crate::session::Ctx;
use crate::state::Selected;

/// Messages read at once; their headers are then parsed together on the blocking pool.
const BATCH: usize = 64;

/// At most this much of a header is read; the fields SORT and THREAD use come early, and a
/// batch then holds at most `BATCH` times this in memory whatever the message sizes.
const MAX_HEADER: usize = 256 * 1024;

/// Messages up to this size are read whole in one store call (the cheapest read); larger ones
/// only up to the end of their header.
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
/// Today it reads each message from the store — small ones whole, large ones only up to the
/// end of their header — a batch at a time concurrently, and parses the headers on the
/// blocking pool, so a SORT of a large mailbox never holds an async worker for long.
pub(crate) async fn load_keys(
    ctx: &Ctx,
    sel: &Selected,
    uids: &[Uid],
) -> Result<Vec<Option<MessageKeys>>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(BATCH) {
        let small = |u: &Uid| sel.view.get(*u).is_some_and(|m| m.size <= SMALL);
        let large: Vec<Uid> = chunk.iter().copied().filter(|u| !small(u)).collect();
        let blobs: HashMap<Uid, BlobId> = if large.is_empty() {
            HashMap::new()
        } else {
            ctx.server
                .store
                .get_messages(sel.id, &large)
                .await?
                .into_iter()
                .map(|m| (m.uid, m.blob))
                .collect()
        };
        let mut reads = JoinSet::new();
        for (i, &uid) in chunk.iter().enumerate() {
            let store = ctx.server.store.clone();
            if small(&uid) {
                let mailbox = sel.id;
                reads.spawn(async move {
                    match store.read_message(mailbox, uid).await {
                        Ok(raw) => Ok((i, raw)),
                        Err(StoreError::Expunged) => Ok((i, None)),
                        Err(e) => Err(e),
                    }
                });
            } else if let Some(blob) = blobs.get(&uid).cloned() {
                reads.spawn(async move {
                    let header = read_header(&*store, &blob).await?;
                    Ok::<_, StoreError>((i, header))
                });
            }
        }
        let mut headers: Vec<Option<Vec<u8>>> = vec![None; chunk.len()];
        while let Some(done) = reads.join_next().await {
            let (i, header) =
                done.map_err(|e| StoreError::Temporary(format!("read task: {e}")))??;
            headers[i] = header;
        }
        let keys = tokio::task::spawn_blocking(move || {
            headers
                .into_iter()
                .map(|h| h.map(|h| MessageKeys::parse(&h)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| StoreError::Temporary(format!("header parse task: {e}")))?;
        out.extend(keys);
    }
    Ok(out)
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
