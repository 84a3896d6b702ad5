//! Large message bodies sent from the blob straight to the connection, a chunk at a time: a
//! `FETCH 1:* BODY[]` of a mailbox of big messages then holds one chunk per connection, not
//! the message (nor its copy in the response buffer), and a slow reader holds back the
//! server's reads instead of making it buffer (issue: bounded memory per connection).
//!
//! The response is written in three pieces: the items before the body and the literal's
//! `{n}` announcement, the `n` octets from the file, the items after it and `)`. The literal's
//! length is known before the first octet goes (the stored size), and the file is opened
//! before anything is written, so a message expunged meanwhile is simply skipped.

use std::io;

use imap_proto::{FetchAttribute as A, FetchItem, SectionText, write_fetch_item};
use store::{BlobId, StoreError};
use tokio::io::AsyncReadExt;

use crate::ctx::Ctx;
use crate::wire::Io;

/// Bodies at least this large are streamed; smaller ones are read and encoded whole.
pub(super) const STREAM_MIN: u64 = 256 * 1024;

/// The chunk size of a streamed body.
const CHUNK: usize = 64 * 1024;

/// Which part of the stored bytes an item sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Span {
    /// `BODY[]`, `RFC822`: the whole message.
    Whole,
    /// `BODY[TEXT]`, `RFC822.TEXT`: after the header.
    Text,
}

/// Whether `a` sends a span of the stored bytes as they are (no partial, no decoding), and
/// which: only those can be streamed.
pub(super) fn span(a: &A) -> Option<Span> {
    match a {
        A::Rfc822 => Some(Span::Whole),
        A::Rfc822Text => Some(Span::Text),
        A::BodySection {
            section,
            partial: None,
            ..
        } if section.part.0.is_empty() => match section.text {
            None => Some(Span::Whole),
            Some(SectionText::Text) => Some(Span::Text),
            _ => None,
        },
        _ => None,
    }
}

/// The item's name as the response spells it before the literal (`BODY[TEXT]`, `RFC822`).
fn name(a: &A) -> String {
    match a {
        A::Rfc822 => "RFC822".into(),
        A::Rfc822Text => "RFC822.TEXT".into(),
        A::BodySection { section, .. } => format!("BODY[{section}]"),
        _ => String::new(),
    }
}

/// One FETCH response whose item `streamed` is `len` octets of blob `blob` from `offset`.
pub(super) struct Streamed<'a> {
    pub seq: u32,
    pub before: Vec<FetchItem>,
    pub item: &'a A,
    pub after: Vec<FetchItem>,
    pub blob: &'a BlobId,
    pub offset: u64,
    pub len: u64,
}

/// Sends `r`. `Ok(Err(Expunged))` when the blob is gone (nothing was written); an I/O error
/// after the announcement leaves the response unfinishable, so the session must end.
pub(super) async fn send(
    io: &mut Io,
    ctx: &mut Ctx,
    r: Streamed<'_>,
) -> io::Result<Result<(), StoreError>> {
    let mut file = match ctx.server.store.open_blob(r.blob).await {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    if r.offset > 0 {
        // Skip the header (`BODY[TEXT]`); a blob is never shorter than its recorded size.
        let skipped =
            tokio::io::copy(&mut (&mut file).take(r.offset), &mut tokio::io::sink()).await?;
        if skipped != r.offset {
            return Ok(Err(StoreError::Temporary(
                "blob shorter than recorded".into(),
            )));
        }
    }
    let utf8 = ctx.utf8;
    let flags: Vec<FetchItem> = r
        .before
        .iter()
        .chain(&r.after)
        .filter(|i| matches!(i, FetchItem::Flags(_)))
        .cloned()
        .collect();
    ctx.announce_keywords(&flags);
    {
        let out = ctx.out_mut();
        out.extend_from_slice(format!("* {} FETCH (", r.seq).as_bytes());
        for item in &r.before {
            write_fetch_item(out, item, utf8);
            out.push(b' ');
        }
        out.extend_from_slice(format!("{} {{{}}}\r\n", name(r.item), r.len).as_bytes());
    }
    io.flush(ctx).await?;
    let timeout = ctx.server.config.idle_timeout;
    let mut left = r.len;
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let n = file.read(&mut buf[..want]).await?;
        if n == 0 {
            // The literal was announced: the connection cannot go on.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob shorter than recorded",
            ));
        }
        match tokio::time::timeout(timeout, io.conn.write(&buf[..n])).await {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
        left -= n as u64;
    }
    let out = ctx.out_mut();
    for item in &r.after {
        out.push(b' ');
        write_fetch_item(out, item, utf8);
    }
    out.extend_from_slice(b")\r\n");
    Ok(Ok(()))
}
