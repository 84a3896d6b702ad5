//! FETCH and UID FETCH — RFC 9051 §6.4.5, §7.5.2.

use imap_proto::{
    Data, DateTime, FetchAttribute as A, FetchAttributes, FetchItem, FetchModifier, Section,
    SectionText, SequenceSet, Status, Tag,
};
use store::{FlagOp, Flags, SystemFlags};

use crate::cmd::{fetch_binary, seq};
use crate::session::{Ctx, store_error};
use crate::state::{self, Selected};
use crate::view::Msg;
use crate::{downgrade, mime};

fn needs_body(a: &A) -> bool {
    !matches!(
        a,
        A::Flags | A::Uid | A::InternalDate | A::Rfc822Size | A::ModSeq
    )
}

/// Items that are the stored message itself, unparsed (RFC 9051 §6.4.5 BODY[] with an empty
/// section; RFC822 is BODY[]).
fn whole_message(a: &A) -> bool {
    match a {
        A::BodySection { section, .. } => section.part.0.is_empty() && section.text.is_none(),
        A::Rfc822 => true,
        _ => false,
    }
}

/// Whether fetching `a` sets `\Seen` (RFC 9051 §6.4.5: BODY[...] without PEEK, RFC822,
/// RFC822.TEXT; RFC 3516 §4.2: BINARY[...] without PEEK).
fn sets_seen(a: &A) -> bool {
    matches!(
        a,
        A::BodySection { peek: false, .. }
            | A::Binary { peek: false, .. }
            | A::Rfc822
            | A::Rfc822Text
    )
}

fn partial(data: Vec<u8>, p: Option<(u64, u64)>) -> Vec<u8> {
    match p {
        None => data,
        // RFC 9051 §6.4.5: an origin past the end gives an empty string.
        Some((origin, len)) => {
            let start = usize::try_from(origin)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let end = start
                .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                .min(data.len());
            data.get(start..end).unwrap_or_default().to_vec()
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    set: &SequenceSet,
    attributes: &FetchAttributes,
    modifiers: &[FetchModifier],
) -> Status {
    let mut changed_since = None;
    let mut vanished = false;
    for m in modifiers {
        match m {
            FetchModifier::ChangedSince(n) => changed_since = Some(*n),
            FetchModifier::Vanished => vanished = true,
        }
    }
    // RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, after ENABLE QRESYNC.
    if vanished && !(uid && changed_since.is_some() && ctx.qresync) {
        return Status::bad(
            Some(tag),
            "VANISHED needs ENABLE QRESYNC, UID FETCH and CHANGEDSINCE",
        );
    }
    let mut attrs = attributes.expand();
    // RFC 9051 §6.4.9: UID FETCH always returns the UID.
    if uid && !attrs.contains(&A::Uid) {
        attrs.insert(0, A::Uid);
    }
    // RFC 7162 §3.1.4.1: CHANGEDSINCE implies the MODSEQ data item.
    if changed_since.is_some() && !attrs.contains(&A::ModSeq) {
        let at = attrs.iter().position(|a| *a == A::Uid).map_or(0, |i| i + 1);
        attrs.insert(at, A::ModSeq);
    }
    let mut targets = match seq::resolve(sel, set, uid) {
        Ok(t) => t,
        Err(why) => return Status::bad(Some(tag), why),
    };
    // Expunged elsewhere and not yet announced: omitted (RFC 9051 §7.5.2 allows it).
    if !sel.gone.is_empty() {
        targets.retain(|(_, u)| !sel.gone.contains(u));
    }
    if attrs.contains(&A::ModSeq) {
        // RFC 7162 §3.1: FETCH MODSEQ and CHANGEDSINCE are CONDSTORE-enabling commands. The
        // view knows each message's own MODSEQ once its details are read.
        state::enable_condstore(ctx, Some(sel));
        if let Err(e) = sel.ensure_details(ctx).await {
            return store_error(&tag, &e);
        }
    }
    if let (true, Some(n)) = (vanished, changed_since) {
        // RFC 7162 §3.2.6: first the UIDs of the set expunged since n. Those still in the view
        // (expunged elsewhere, not announced yet) are left to the VANISHED that announces them.
        let expunged = match ctx.server.store.expunged_since(sel.id, n).await {
            Ok(e) => e,
            Err(e) => return store_error(&tag, &e),
        };
        let max = sel.max_uid();
        let gone = expunged
            .into_iter()
            .filter(|u| set.contains(*u, max) && sel.view.index_of(*u).is_none());
        if let Some(uids) = SequenceSet::from_ids(gone) {
            ctx.data(Data::Vanished {
                earlier: true,
                uids,
            });
        }
    }
    if let Some(n) = changed_since {
        // RFC 7162 §3.1.4.1: only the messages whose MODSEQ is above n.
        targets.retain(|(seqno, _)| {
            sel.view
                .at(*seqno as usize - 1)
                .is_some_and(|m| m.modseq > n)
        });
    }
    let with_body = attrs.iter().any(needs_body);
    // RFC822.SIZE comes from the body when it is read anyway.
    if (attrs.contains(&A::InternalDate) || (!with_body && attrs.contains(&A::Rfc822Size)))
        && let Err(e) = sel.ensure_details(ctx).await
    {
        return store_error(&tag, &e);
    }
    if !with_body {
        // FLAGS, UID, INTERNALDATE, RFC822.SIZE — `FETCH 1:* (FLAGS UID)` is what clients poll
        // with: all from the view, nothing read from the store, nothing sets \Seen.
        for (seqno, u) in targets {
            // `targets` come from the view: sequence number n is its (n - 1)-th message.
            let Some(m) = sel.view.at(seqno as usize - 1).filter(|m| m.uid == u) else {
                continue;
            };
            let items = attrs
                .iter()
                .filter_map(|a| meta_item(ctx.rev2, sel, a, &m))
                .collect();
            ctx.data(Data::Fetch { seq: seqno, items });
        }
        return done(tag, uid);
    }
    // Set \Seen first, so the FLAGS in the response include it (RFC 9051 §6.4.5).
    let mut seen_now = std::collections::HashSet::new();
    if !sel.read_only && attrs.iter().any(sets_seen) {
        let unseen: Vec<u32> = targets
            .iter()
            .map(|(_, u)| *u)
            .filter(|u| {
                sel.view
                    .get(*u)
                    .is_some_and(|m| !m.system.contains(SystemFlags::SEEN))
            })
            .collect();
        if !unseen.is_empty() {
            let seen = Flags {
                system: SystemFlags::SEEN,
                keywords: vec![],
            };
            match ctx
                .server
                .store
                .store_flags(sel.id, &unseen, FlagOp::Add, &seen)
                .await
            {
                Ok(changed) => {
                    for (u, flags, modseq) in changed {
                        sel.view.set_flags(u, &flags, modseq);
                        seen_now.insert(u);
                    }
                }
                Err(e) => return store_error(&tag, &e),
            }
        }
    }
    let needs_parse = attrs.iter().any(|a| needs_body(a) && !whole_message(a));
    for (seqno, u) in targets {
        let raw = if with_body {
            match ctx.server.store.read_message(sel.id, u).await {
                Ok(Some(b)) => Some(b),
                // Expunged meanwhile: nothing to send (RFC 9051 §7.5.2 allows omitting it).
                Ok(None) | Err(store::StoreError::Expunged) => continue,
                Err(e) => return store_error(&tag, &e),
            }
        } else {
            None
        };
        let Some(meta) = sel.view.get(u) else {
            continue;
        };
        // The whole message (BODY[], BODY.PEEK[], RFC822) is sent as stored: parse only when
        // an item needs the MIME structure.
        let parsed = raw
            .as_deref()
            .filter(|_| needs_parse)
            .and_then(|r| mail_parser::MessageParser::default().parse(r));
        let mut items = Vec::with_capacity(attrs.len() + 1);
        for a in &attrs {
            items.push(match a {
                A::Rfc822Size if raw.is_some() => {
                    FetchItem::Rfc822Size(raw.as_ref().map_or(0, |r| r.len() as u64))
                }
                A::Flags | A::Uid | A::InternalDate | A::Rfc822Size | A::ModSeq => {
                    match meta_item(ctx.rev2, sel, a, &meta) {
                        Some(item) => item,
                        None => continue,
                    }
                }
                A::Envelope => {
                    let mut env = parsed.as_ref().map(mime::envelope).unwrap_or_default();
                    if !ctx.utf8 {
                        // RFC 6855 §3: no UTF-8 to clients that did not enable it.
                        downgrade::envelope(&mut env);
                    }
                    FetchItem::Envelope(Box::new(env))
                }
                A::Body | A::BodyStructure => {
                    let ext = matches!(a, A::BodyStructure);
                    let mut bs = match &parsed {
                        Some(p) => mime::body_structure(p, ext),
                        None => mime::body_structure(&mail_parser::Message::default(), ext),
                    };
                    if !ctx.utf8 {
                        downgrade::body_structure(&mut bs);
                    }
                    if ext {
                        FetchItem::BodyStructure(Box::new(bs))
                    } else {
                        FetchItem::Body(Box::new(bs))
                    }
                }
                A::BodySection {
                    section,
                    partial: p,
                    ..
                } => {
                    let data = section_bytes(raw.as_deref(), parsed.as_ref(), section);
                    FetchItem::BodySection {
                        section: section.clone(),
                        origin: p.map(|(o, _)| o),
                        data: Some(partial(data, *p)),
                    }
                }
                A::Rfc822 => FetchItem::Rfc822(raw.clone()),
                A::Rfc822Header => FetchItem::Rfc822Header(Some(section_bytes(
                    raw.as_deref(),
                    parsed.as_ref(),
                    &Section {
                        part: Default::default(),
                        text: Some(SectionText::Header),
                    },
                ))),
                A::Rfc822Text => FetchItem::Rfc822Text(Some(section_bytes(
                    raw.as_deref(),
                    parsed.as_ref(),
                    &Section {
                        part: Default::default(),
                        text: Some(SectionText::Text),
                    },
                ))),
                A::Binary {
                    part, partial: p, ..
                } => match fetch_binary::binary(raw.as_deref(), parsed.as_ref(), part) {
                    Ok(data) => FetchItem::Binary {
                        part: part.clone(),
                        origin: p.map(|(o, _)| o),
                        data: data.map(|d| partial(d, *p)),
                    },
                    Err(_) => return unknown_cte(tag),
                },
                A::BinarySize { part } => {
                    match fetch_binary::binary(raw.as_deref(), parsed.as_ref(), part) {
                        Ok(data) => FetchItem::BinarySize {
                            part: part.clone(),
                            size: data.map_or(0, |d| d.len() as u64),
                        },
                        Err(_) => return unknown_cte(tag),
                    }
                }
            });
        }
        if seen_now.contains(&u) && !attrs.contains(&A::Flags) {
            // RFC 9051 §6.4.5: the \Seen flag change is reported with the data.
            items.push(FetchItem::Flags(sel.flags_of(ctx.rev2, &meta)));
        }
        if seen_now.contains(&u) && ctx.condstore && !attrs.contains(&A::ModSeq) {
            // RFC 7162 §3.1: so is its new MODSEQ once CONDSTORE is on.
            items.push(FetchItem::ModSeq(meta.modseq));
        }
        ctx.data(Data::Fetch { seq: seqno, items });
    }
    Status::ok(
        Some(tag),
        if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        },
    )
}

/// A data item that needs only the message's metadata, not its body.
fn meta_item(rev2: bool, sel: &Selected, a: &A, meta: &Msg<'_>) -> Option<FetchItem> {
    Some(match a {
        A::Flags => FetchItem::Flags(sel.flags_of(rev2, meta)),
        A::Uid => FetchItem::Uid(meta.uid),
        A::InternalDate => FetchItem::InternalDate(
            DateTime::from_unix_timestamp(meta.internal_date, 0)
                .or_else(|| DateTime::from_unix_timestamp(0, 0))
                .unwrap_or_else(unreachable_date),
        ),
        A::Rfc822Size => FetchItem::Rfc822Size(meta.size),
        // RFC 7162 §3.1.4: `MODSEQ (n)`.
        A::ModSeq => FetchItem::ModSeq(meta.modseq),
        _ => return None,
    })
}

fn done(tag: Tag, uid: bool) -> Status {
    Status::ok(
        Some(tag),
        if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        },
    )
}

/// RFC 3516 §4.3: a part whose transfer encoding cannot be undone.
fn unknown_cte(tag: Tag) -> Status {
    Status::no(Some(tag), "unknown Content-Transfer-Encoding")
        .with_code(imap_proto::Code::UnknownCte)
}

/// The Unix epoch, which `DateTime` can always represent.
fn unreachable_date() -> DateTime {
    let date = imap_proto::Date {
        year: 1970,
        month: 1,
        day: 1,
    };
    DateTime {
        date,
        hour: 0,
        minute: 0,
        second: 0,
        zone_minutes: 0,
    }
}

fn section_bytes(
    raw: Option<&[u8]>,
    parsed: Option<&mail_parser::Message<'_>>,
    section: &Section,
) -> Vec<u8> {
    match (parsed, raw) {
        (Some(p), _) => mime::section(p, section).unwrap_or_default(),
        // Unparseable: the whole message is still available as BODY[].
        (None, Some(r)) if section.part.0.is_empty() && section.text.is_none() => r.to_vec(),
        _ => Vec::new(),
    }
}
