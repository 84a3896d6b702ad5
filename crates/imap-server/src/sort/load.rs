//! Where SORT, THREAD and the CONTEXT=SORT updates get the header facts of messages: one
//! function, [`load_keys`], so that a per-message cache can serve them later without the
//! callers changing.

use store::{StoreError, Uid};
use tokio::task::JoinSet;

use super::keys::MessageKeys;
use crate::session::Ctx;
use crate::state::Selected;

/// Messages read at once; their headers are then parsed together on the blocking pool.
const BATCH: usize = 64;

/// The header block of a message (through the blank line), so that only it is kept and
/// parsed.
fn header_only(mut raw: Vec<u8>) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2));
    if let Some(end) = end {
        raw.truncate(end);
        raw.shrink_to_fit();
    }
    raw
}

/// The [`MessageKeys`] of the messages `uids` of the selected mailbox, in the order given;
/// `None` for a message expunged meanwhile.
///
/// Today it reads each message from the store and parses its header: reads run a batch at a
/// time concurrently, and the parsing runs on the blocking pool, so a SORT of a large
/// mailbox never holds an async worker for long.
pub(crate) async fn load_keys(
    ctx: &Ctx,
    sel: &Selected,
    uids: &[Uid],
) -> Result<Vec<Option<MessageKeys>>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(BATCH) {
        let mut reads = JoinSet::new();
        for (i, &uid) in chunk.iter().enumerate() {
            let store = ctx.server.store.clone();
            let mailbox = sel.id;
            reads.spawn(async move {
                let raw = match store.read_message(mailbox, uid).await {
                    Ok(r) => r.map(header_only),
                    // Expunged since: nothing to sort by.
                    Err(StoreError::Expunged) => None,
                    Err(e) => return Err(e),
                };
                Ok((i, raw))
            });
        }
        let mut raws: Vec<Option<Vec<u8>>> = vec![None; chunk.len()];
        while let Some(done) = reads.join_next().await {
            let (i, raw) = done.map_err(|e| StoreError::Temporary(format!("read task: {e}")))??;
            raws[i] = raw;
        }
        let keys = tokio::task::spawn_blocking(move || {
            raws.into_iter()
                .map(|raw| raw.map(|r| MessageKeys::parse(&r)))
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
    fn keeps_only_the_header() {
        assert_eq!(
            header_only(b"A: b\r\n\r\nbody\r\n".to_vec()),
            b"A: b\r\n\r\n"
        );
        assert_eq!(header_only(b"A: b\n\nbody\n".to_vec()), b"A: b\n\n");
        assert_eq!(header_only(b"A: b\r\n".to_vec()), b"A: b\r\n");
    }
}
