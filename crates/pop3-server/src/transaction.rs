//! TRANSACTION-state commands (RFC 1939 §5, §7): each reads or marks the session's snapshot;
//! RETR and TOP stream the message from the blob store.
//!
//! Invariant: a message is streamed in `chunk`-sized pieces through the byte-stuffer, so
//! memory does not grow with message size.

use std::io;

use pop3_proto::{DotStuffer, Reply, TopFilter};
use store::Store;
use tokio::io::AsyncReadExt;

use crate::errors::store_error;
use crate::maildrop::{Entry, Maildrop};
use crate::session::{Flow, Stats};
use crate::wire::Wire;

/// RFC 1939 §5 STAT: `+OK nn mm` — count and size of the messages not marked as deleted.
pub(crate) async fn stat(wire: &mut Wire, maildrop: &Maildrop) -> io::Result<Flow> {
    let (count, size) = maildrop.stat();
    reply(wire, Reply::ok(format!("{count} {size}"))).await
}

/// RFC 1939 §5 LIST [msg]: a scan listing `msg size` per message.
pub(crate) async fn list(
    wire: &mut Wire,
    maildrop: &Maildrop,
    msg: Option<u32>,
) -> io::Result<Flow> {
    listing(wire, maildrop, msg, |_, e| e.size.to_string()).await
}

/// RFC 1939 §7 UIDL [msg]: a unique-id listing `msg unique-id` per message.
pub(crate) async fn uidl(
    wire: &mut Wire,
    maildrop: &Maildrop,
    msg: Option<u32>,
) -> io::Result<Flow> {
    listing(wire, maildrop, msg, |d, e| d.unique_id(e)).await
}

async fn listing(
    wire: &mut Wire,
    maildrop: &Maildrop,
    msg: Option<u32>,
    value: impl Fn(&Maildrop, &Entry) -> String,
) -> io::Result<Flow> {
    match msg {
        Some(n) => match maildrop.get(n) {
            Ok(e) => reply(wire, Reply::ok(format!("{n} {}", value(maildrop, e)))).await,
            Err(r) => reply(wire, r).await,
        },
        None => {
            let (count, size) = maildrop.stat();
            let mut out = Reply::ok(format!("{count} messages ({size} octets)")).to_bytes();
            for (n, e) in maildrop.live() {
                // Lines start with a digit, so no byte-stuffing is needed.
                out.extend_from_slice(format!("{n} {}\r\n", value(maildrop, e)).as_bytes());
                if out.len() >= 16 * 1024 {
                    wire.write(&out).await?;
                    out.clear();
                }
            }
            pop3_proto::multiline_end(&mut out);
            wire.write(&out).await?;
            Ok(Flow::Continue)
        }
    }
}

/// RFC 1939 §5 DELE msg: marks the message; it is removed only in the UPDATE state.
pub(crate) async fn dele(wire: &mut Wire, maildrop: &mut Maildrop, n: u32) -> io::Result<Flow> {
    let r = match maildrop.delete(n) {
        Ok(()) => Reply::ok(format!("message {n} deleted")),
        Err(r) => r,
    };
    reply(wire, r).await
}

/// RFC 1939 §5 RSET: unmarks every message.
pub(crate) async fn rset(wire: &mut Wire, maildrop: &mut Maildrop) -> io::Result<Flow> {
    maildrop.reset();
    let (count, size) = maildrop.stat();
    reply(
        wire,
        Reply::ok(format!("maildrop has {count} messages ({size} octets)")),
    )
    .await
}

/// RFC 1939 §5 RETR msg and §7 TOP msg n (`top = Some(n)`).
pub(crate) async fn retrieve(
    wire: &mut Wire,
    store: &dyn Store,
    maildrop: &Maildrop,
    stats: &mut Stats,
    n: u32,
    top: Option<u32>,
    chunk: usize,
) -> io::Result<Flow> {
    let entry = match maildrop.get(n) {
        Ok(e) => e,
        Err(r) => return reply(wire, r).await,
    };
    // A message expunged meanwhile (by IMAP) is gone even if its blob is still shared by a
    // copy elsewhere; the blob check below covers the race after this lookup.
    match store.get_messages(maildrop.mailbox, &[entry.uid]).await {
        Ok(found) if found.iter().any(|m| m.uid == entry.uid) => {}
        Ok(_) => return reply(wire, gone(n, &store::StoreError::Expunged)).await,
        Err(e) => return reply(wire, gone(n, &e)).await,
    }
    let mut reader = match store.open_blob(&entry.blob).await {
        Ok(r) => r,
        Err(e) => return reply(wire, gone(n, &e)).await,
    };
    // Read the first chunk before `+OK`, so a blob that cannot be read still gets a clean
    // `-ERR` and the session goes on.
    let mut buf = vec![0u8; chunk.max(512)];
    let mut filled = match reader.read(&mut buf).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "pop3: message blob unreadable");
            return reply(wire, gone(n, &store::StoreError::Expunged)).await;
        }
    };
    let status = match top {
        // RFC 1939 §5: "+OK" followed by the size is customary for RETR.
        None => Reply::ok(format!("{} octets", entry.size)),
        Some(_) => Reply::ok("top of message follows"),
    };
    let mut out = status.to_bytes();
    let mut stuffer = DotStuffer::new();
    let mut filter = top.map(TopFilter::new);
    while filled > 0 {
        let data = buf.get(..filled).unwrap_or_default();
        let data = match &mut filter {
            Some(f) => f.feed(data),
            None => data,
        };
        stuffer.encode(data, &mut out);
        wire.write(&out).await?;
        out.clear();
        if filter.as_ref().is_some_and(|f| f.is_done()) {
            break;
        }
        // A read error after `+OK` cannot be reported in the protocol any more: drop the
        // connection so the client sees a truncated response rather than a wrong message.
        filled = reader.read(&mut buf).await?;
    }
    stuffer.finish(&mut out);
    wire.write(&out).await?;
    if top.is_none() {
        stats.retrieved += 1;
        // RFC 2449 §6.7: a retention period runs from the message's (first) retrieval. The
        // client has the message already: a failure to record it only keeps it longer.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Err(e) = store
            .mark_retrieved(maildrop.mailbox, &[entry.uid], now)
            .await
        {
            tracing::warn!(error = %e, "pop3: cannot record the retrieval");
        }
    }
    Ok(Flow::Continue)
}

fn gone(n: u32, error: &store::StoreError) -> Reply {
    match error {
        store::StoreError::NotFound(_) | store::StoreError::Expunged => {
            Reply::err(format!("message {n} was deleted by another session"))
        }
        other => store_error(other),
    }
}

async fn reply(wire: &mut Wire, r: Reply) -> io::Result<Flow> {
    wire.reply(&r).await?;
    Ok(Flow::Continue)
}
