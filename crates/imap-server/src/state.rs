//! Session states (RFC 9051 §3) and the selected mailbox as this session sees it.
//!
//! Invariant: `Selected::uids` is the client's view — message sequence number n is
//! `uids[n - 1]`. It changes only when this session tells the client: EXISTS appends, EXPUNGE
//! removes. Messages other sessions expunged stay in the view (as `gone`) until an EXPUNGE
//! response may be sent (RFC 9051 §7.5.1).

use std::collections::{BTreeSet, HashSet};

use imap_proto::{Data, FetchItem, Flag};
use store::{AccountId, Change, ChangeEvent, Flags, MailboxId, ModSeq, Uid};
use tokio::sync::broadcast;

use crate::recent::RecentSet;
use crate::session::Ctx;

pub(crate) enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Box<Selected>),
    Logout,
}

/// The logged-in account and its change feed.
pub(crate) struct User {
    pub account: AccountId,
    pub address: String,
    pub changes: broadcast::Receiver<ChangeEvent>,
}

impl User {
    /// Drops queued events (nothing is selected, or a new view is about to be read).
    pub fn drain(&mut self) {
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.changes.try_recv() {
        }
    }
}

pub(crate) struct Selected {
    pub id: MailboxId,
    pub read_only: bool,
    pub uids: Vec<Uid>,
    /// Expunged by another session, not yet announced.
    pub gone: BTreeSet<Uid>,
    /// Flag changes this session made itself (already answered), so their events are not
    /// echoed back as FETCH responses.
    pub own: HashSet<(Uid, ModSeq)>,
    /// The messages `\Recent` in this session (RFC 3501 §2.3.2; always empty for rev2).
    pub recent: RecentSet,
    /// The change feed lagged: reread the mailbox at the next sync.
    pub resync: bool,
    /// UIDs saved by `SEARCH RETURN (SAVE)`, ascending — RFC 5182 §2. A fresh `Selected` per
    /// SELECT/EXAMINE and none after CLOSE/UNSELECT reset it (§2.1); expunged UIDs drop out
    /// because `$` is resolved against the view (UIDs are never reused).
    pub saved: Vec<Uid>,
}

impl Selected {
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    pub fn exists(&self) -> u32 {
        self.uids.len() as u32
    }

    pub fn max_uid(&self) -> Uid {
        self.uids.last().copied().unwrap_or(0)
    }

    /// FLAGS of message `uid` as this session shows them: `\Recent` added for rev1 clients
    /// (RFC 3501 §2.3.2), never for IMAP4rev2 ones (RFC 9051 dropped it).
    pub fn flags_of(&self, rev2: bool, uid: Uid, flags: &Flags) -> Vec<Flag> {
        let mut out = to_imap_flags(flags);
        if !rev2 && self.recent.contains(uid) {
            out.push(Flag::recent());
        }
        out
    }

    /// Claims (read-write) or peeks at (EXAMINE, RFC 3501 §6.3.2) the `\Recent` messages
    /// above `after`, up to the view's highest UID. No-op for IMAP4rev2 sessions.
    pub fn take_recent(&mut self, ctx: &Ctx, after: Uid) {
        if ctx.rev2 {
            return;
        }
        let max = self.max_uid();
        let tracker = &ctx.server.recent;
        let mark = if self.read_only {
            tracker.mark(self.id)
        } else {
            tracker.claim(self.id, max)
        };
        self.recent.add(mark.max(after).saturating_add(1), max);
    }

    /// Removes `uid` from the view, returning the sequence number it had.
    pub fn remove(&mut self, uid: Uid) -> Option<u32> {
        let i = self.uids.binary_search(&uid).ok()?;
        self.uids.remove(i);
        self.gone.remove(&uid);
        Some(i as u32 + 1)
    }
}

/// Store flags → IMAP flags.
pub(crate) fn to_imap_flags(flags: &Flags) -> Vec<Flag> {
    let mut out = Vec::new();
    for (bit, name) in store::SystemFlags::ALL {
        if flags.system.contains(bit)
            && let Some(f) = Flag::parse(name)
        {
            out.push(f);
        }
    }
    out.extend(flags.keywords.iter().filter_map(|k| Flag::parse(k)));
    out
}

/// IMAP flags → store flags (`\Recent` and unknown `\` extensions are not storable).
pub(crate) fn to_store_flags(flags: &[Flag]) -> Flags {
    let mut out = Flags::default();
    for f in flags {
        let bit = match f {
            Flag::Seen => store::SystemFlags::SEEN,
            Flag::Answered => store::SystemFlags::ANSWERED,
            Flag::Flagged => store::SystemFlags::FLAGGED,
            Flag::Deleted => store::SystemFlags::DELETED,
            Flag::Draft => store::SystemFlags::DRAFT,
            Flag::Keyword(k) => {
                if !out
                    .keywords
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(k.as_str()))
                {
                    out.keywords.push(k.as_str().to_string());
                }
                continue;
            }
            Flag::Extension(_) => continue,
        };
        out.system.insert(bit);
    }
    out
}

/// Applies the account's pending change events to the selected view and queues the untagged
/// responses: `* n EXISTS` (and `* n RECENT` for rev1), `* n FETCH (UID u FLAGS (...))` for
/// flags changed elsewhere, and — only when `allow_expunge` — `* n EXPUNGE` (RFC 9051 §7.5.1:
/// never while answering FETCH, STORE or SEARCH, never without a command in progress).
pub(crate) async fn sync(ctx: &mut Ctx, user: &mut User, sel: &mut Selected, allow_expunge: bool) {
    sync_with(ctx, user, sel, allow_expunge, None).await
}

/// [`sync`], starting with an event already received (IDLE waits on the feed).
pub(crate) async fn sync_with(
    ctx: &mut Ctx,
    user: &mut User,
    sel: &mut Selected,
    allow_expunge: bool,
    mut first: Option<ChangeEvent>,
) {
    let mut new_uids = Vec::new();
    loop {
        let next = match first.take() {
            Some(ev) => Ok(ev),
            None => user.changes.try_recv(),
        };
        match next {
            Ok(ev) if ev.mailbox == sel.id => match ev.change {
                Change::NewMessage { uid, .. } => new_uids.push(uid),
                Change::FlagsChanged { uid, flags, modseq } => {
                    if sel.own.remove(&(uid, modseq)) {
                        continue;
                    }
                    if let Some(seq) = sel.seq_of(uid)
                        && !sel.gone.contains(&uid)
                    {
                        ctx.data(Data::Fetch {
                            seq,
                            items: vec![
                                FetchItem::Uid(uid),
                                FetchItem::Flags(sel.flags_of(ctx.rev2, uid, &flags)),
                            ],
                        });
                    }
                }
                Change::Expunged { uids, .. } => {
                    for uid in uids {
                        if sel.seq_of(uid).is_some() {
                            sel.gone.insert(uid);
                        }
                    }
                }
                _ => {}
            },
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Lagged(_)) => sel.resync = true,
            Err(_) => break,
        }
    }
    if sel.resync {
        sel.resync = false;
        resync(ctx, sel, &mut new_uids).await;
    }
    new_uids.sort_unstable();
    new_uids.dedup();
    let before = sel.exists();
    let before_max = sel.max_uid();
    for uid in new_uids {
        if uid > sel.max_uid() {
            sel.uids.push(uid);
        }
    }
    let added = sel.exists() - before;
    if added > 0 {
        ctx.data(Data::Exists(sel.exists()));
        if !ctx.rev2 {
            // RFC 3501 §7.3.2: RECENT goes with EXISTS for rev1 clients.
            sel.take_recent(ctx, before_max);
            ctx.data(Data::Recent(sel.recent.count_in(&sel.uids)));
        }
    }
    if allow_expunge {
        let gone: Vec<Uid> = sel.gone.iter().copied().collect();
        for uid in gone {
            if let Some(seq) = sel.remove(uid) {
                ctx.data(Data::Expunge(seq));
            }
        }
    }
    // Own flag changes whose events never came (lagged) must not pile up.
    if sel.own.len() > 10_000 {
        sel.own.clear();
    }
}

/// The event feed lagged: compare the view with the store and send every message's flags.
async fn resync(ctx: &mut Ctx, sel: &mut Selected, new_uids: &mut Vec<Uid>) {
    let Ok(msgs) = ctx.server.store.list_messages(sel.id).await else {
        // Try again at the next command.
        sel.resync = true;
        return;
    };
    let present: HashSet<Uid> = msgs.iter().map(|m| m.uid).collect();
    for uid in &sel.uids {
        if !present.contains(uid) {
            sel.gone.insert(*uid);
        }
    }
    let max = sel.max_uid();
    for m in &msgs {
        if m.uid > max {
            new_uids.push(m.uid);
        } else if let Some(seq) = sel.seq_of(m.uid) {
            ctx.data(Data::Fetch {
                seq,
                items: vec![
                    FetchItem::Uid(m.uid),
                    FetchItem::Flags(sel.flags_of(ctx.rev2, m.uid, &m.flags)),
                ],
            });
        }
    }
}
