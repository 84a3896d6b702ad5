//! Session states (RFC 9051 §3) and the selected mailbox as this session sees it.
//!
//! Invariant: `Selected::view` is the client's view — message sequence number n is the n-th
//! message in it. Its membership changes only when this session tells the client: EXISTS
//! appends, EXPUNGE removes. Messages other sessions expunged stay in the view (as `gone`)
//! until an EXPUNGE response may be sent (RFC 9051 §7.5.1). Flags in the view change as the
//! client is told: by this session's own FETCH/STORE replies or by the untagged FETCH that
//! [`sync`] sends for other sessions' changes.

use std::collections::{BTreeSet, HashMap};

use imap_proto::{Code, Data, FetchItem, Flag, SequenceSet, Status};
use store::{
    AccountId, Change, ChangeEvent, ChangeFeed, Flags, MailboxId, SystemFlags, TryRecvError, Uid,
};

use crate::cmd::notify::NotifyState;
use crate::ctx::Ctx;
use crate::recent::RecentSet;
use crate::view::{Msg, View};

pub(crate) enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Box<Selected>),
    Logout,
}

/// The BYE text of a session whose account was deleted (`yubin user del`) while it ran.
pub(crate) const ACCOUNT_GONE: &str = "account deleted";

/// The logged-in account and its change feed.
pub(crate) struct User {
    pub account: AccountId,
    pub address: String,
    pub changes: ChangeFeed,
    /// NOTIFY (RFC 5465): what the session hears of other mailboxes, and the selected
    /// mailbox's events held back between commands.
    pub notify: NotifyState,
}

impl User {
    /// Drops queued events (nothing is selected, or a new view is about to be read); NOTIFY
    /// still hears them as events of other mailboxes.
    pub fn drain(&mut self) {
        loop {
            match self.next_change() {
                Ok(ev) => self.notify.note(ev),
                Err(TryRecvError::Resync) => self.notify.lost(),
                Err(_) => break,
            }
        }
    }

    /// The next change event for the selected mailbox's sync: first those NOTIFY held back
    /// between commands, then the feed's.
    pub fn next_change(&mut self) -> Result<ChangeEvent, TryRecvError> {
        match self.notify.take_held() {
            Some(r) => r,
            None => self.changes.try_recv(),
        }
    }
}

pub(crate) struct Selected {
    pub id: MailboxId,
    pub read_only: bool,
    pub view: View,
    /// Expunged by another session, not yet announced.
    pub gone: BTreeSet<Uid>,
    /// The messages `\Recent` in this session (RFC 3501 §2.3.2; always empty for rev2).
    pub recent: RecentSet,
    /// The change feed lagged: reread the mailbox at the next sync.
    pub resync: bool,
    /// UIDs saved by `SEARCH RETURN (SAVE)`, ascending — RFC 5182 §2. A fresh `Selected` per
    /// SELECT/EXAMINE and none after CLOSE/UNSELECT reset it (§2.1); expunged UIDs drop out
    /// because `$` is resolved against the view (UIDs are never reused).
    pub saved: Vec<Uid>,
    /// Searches and sorts kept current with ADDTO/REMOVEFROM (RFC 5267 §4.3).
    pub contexts: crate::search::context::Contexts,
    /// Save dates read so far (RFC 8514), `None` where the store has none. A message's save
    /// date never changes while its UID lives in the mailbox, so entries stay valid.
    pub save_dates: HashMap<Uid, Option<store::UnixTime>>,
}

impl Selected {
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.view.index_of(uid).map(|i| i as u32 + 1)
    }

    pub fn exists(&self) -> u32 {
        self.view.len() as u32
    }

    pub fn max_uid(&self) -> Uid {
        self.view.max_uid()
    }

    /// Reads the save dates of `uids` not read yet (FETCH SAVEDATE, SEARCH SAVED*).
    pub async fn ensure_save_dates(
        &mut self,
        ctx: &Ctx,
        uids: &[Uid],
    ) -> Result<(), store::StoreError> {
        let missing: Vec<Uid> = uids
            .iter()
            .copied()
            .filter(|u| !self.save_dates.contains_key(u))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for (uid, date) in ctx.server.store.save_dates(self.id, &missing).await? {
            self.save_dates.insert(uid, date);
        }
        Ok(())
    }

    /// The save date of `m` (RFC 8514 §3). A message without one in the store has its internal
    /// date: the mailbox supports save dates, so NIL is never answered, and retention goes by
    /// the same date. Also the internal date for a message not read by
    /// [`ensure_save_dates`](Self::ensure_save_dates) (a new message an updating search
    /// looks at).
    pub fn save_date_of(&self, m: &Msg<'_>) -> store::UnixTime {
        self.save_dates
            .get(&m.uid)
            .copied()
            .flatten()
            .unwrap_or(m.internal_date)
    }

    /// Reads the internal dates and sizes of the view's messages if they are not known yet
    /// (SELECT reads only UIDs and flags).
    pub async fn ensure_details(&mut self, ctx: &Ctx) -> Result<(), store::StoreError> {
        if !self.view.has_details() {
            let all = ctx.server.store.list_summaries(self.id).await?;
            self.view.fill_details(&all);
        }
        Ok(())
    }

    /// The UIDs of the view in sequence-number order.
    pub fn uids(&self) -> &[Uid] {
        self.view.uids()
    }

    /// FLAGS of a message as this session shows them: `\Recent` added for rev1 clients
    /// (RFC 3501 §2.3.2), never for IMAP4rev2 ones (RFC 9051 dropped it).
    pub fn flags_of(&self, rev2: bool, m: &Msg<'_>) -> Vec<Flag> {
        let mut out = imap_flags(m.system, m.keywords);
        if !rev2 && self.recent.contains(m.uid) {
            out.push(Flag::recent());
        }
        out
    }

    /// `* n FETCH (UID u FLAGS (...))` for message `uid` as the view now has it; with
    /// CONDSTORE on, `(UID u MODSEQ (m) FLAGS (...))` (RFC 7162 §3.1: every later untagged
    /// FETCH carries the UID and MODSEQ).
    pub fn flags_response(&self, ctx: &Ctx, uid: Uid) -> Option<Data> {
        let i = self.view.index_of(uid)?;
        let m = self.view.at(i)?;
        let mut items = Vec::with_capacity(3);
        items.push(FetchItem::Uid(uid));
        if ctx.condstore {
            items.push(FetchItem::ModSeq(m.modseq));
        }
        items.push(FetchItem::Flags(self.flags_of(ctx.rev2, &m)));
        Some(Data::Fetch {
            seq: i as u32 + 1,
            items,
        })
    }

    /// Claims (read-write) or peeks at (EXAMINE, RFC 3501 §6.3.2) the `\Recent` messages
    /// above `after`, up to the view's highest UID, in the store (shared by every process).
    /// No-op for IMAP4rev2 sessions. When the store fails, no message is recent for this
    /// session: better than two sessions both showing it.
    pub async fn take_recent(&mut self, ctx: &Ctx, after: Uid) {
        let max = self.max_uid();
        if ctx.rev2 || max <= after {
            return;
        }
        let (tracker, store) = (&ctx.server.recent, ctx.server.store.as_ref());
        let mark = if self.read_only {
            tracker.peek(store, self.id, max).await
        } else {
            tracker.claim(store, self.id, max).await
        };
        match mark {
            Ok(mark) => self.recent.add(mark.max(after).saturating_add(1), max),
            Err(e) => tracing::warn!(mailbox = %self.id, error = %e, "imap: cannot claim \\Recent"),
        }
    }

    /// This session's APPEND claimed `\Recent` for `before+1..=uid` in the store
    /// ([`store::MailStore::append_claiming_recent`]): they are recent here once the view
    /// has them (the sync after the command), and the process's tracker knows the new mark,
    /// so that sync and other sessions ask the store nothing for them.
    pub fn claimed_with_append(&mut self, ctx: &Ctx, before: Uid, uid: Uid) {
        // Ascending: every range this session added before came from a claim, so lies at or
        // below the mark the store just returned.
        self.recent.add(before.saturating_add(1), uid);
        ctx.server.recent.learn(self.id, uid);
    }

    /// Removes the messages `sorted` (ascending) from the view, queuing `* n EXPUNGE` for
    /// each with the number it has at that moment (RFC 9051 §7.5.1), highest first — or, once
    /// QRESYNC is enabled, one `* VANISHED uids` (RFC 7162 §3.2.10). Updating searches hear
    /// of it first (RFC 5267 §4.3.4: REMOVEFROM before the EXPUNGE).
    pub fn expunge(&mut self, ctx: &mut Ctx, sorted: &[Uid]) {
        for uid in sorted {
            self.gone.remove(uid);
        }
        self.contexts.before_expunge(ctx, &self.view, sorted);
        if ctx.qresync {
            let present: Vec<Uid> = sorted
                .iter()
                .copied()
                .filter(|u| self.view.index_of(*u).is_some())
                .collect();
            self.view.remove_sorted(&present);
            if let Some(uids) = SequenceSet::from_ids(present) {
                ctx.data(Data::Vanished {
                    earlier: false,
                    uids,
                });
            }
            return;
        }
        // Highest first, so each number is also the one it had before any of these expunges
        // (the numbers the REMOVEFROM above used): the k-th removal, at n after k earlier
        // ones, was at n + k.
        let seqs = self.view.remove_sorted(sorted);
        for (k, seq) in seqs.iter().enumerate().rev() {
            ctx.data(Data::Expunge(seq + k as u32));
        }
    }
}

/// RFC 7162 §3.1: a CONDSTORE-enabling command turns CONDSTORE on for the rest of the
/// session; issued while a mailbox is selected, the first one also reports the mailbox's
/// HIGHESTMODSEQ (§3.1.2.1) in an untagged OK, as SELECT would have.
pub(crate) fn enable_condstore(ctx: &mut Ctx, sel: Option<&Selected>) {
    if ctx.condstore {
        return;
    }
    ctx.condstore = true;
    if let Some(sel) = sel {
        ctx.status(
            Status::ok(None, "highest").with_code(Code::HighestModSeq(sel.view.highest_modseq())),
        );
    }
}

/// Store flags → IMAP flags.
pub(crate) fn imap_flags(system: SystemFlags, keywords: &[String]) -> Vec<Flag> {
    let mut out = Vec::with_capacity(keywords.len() + 2);
    // The order of SystemFlags::ALL; built directly, this runs for every message of a FETCH 1:*.
    for (bit, f) in [
        (SystemFlags::SEEN, Flag::Seen),
        (SystemFlags::ANSWERED, Flag::Answered),
        (SystemFlags::FLAGGED, Flag::Flagged),
        (SystemFlags::DELETED, Flag::Deleted),
        (SystemFlags::DRAFT, Flag::Draft),
    ] {
        if system.contains(bit) {
            out.push(f);
        }
    }
    out.extend(keywords.iter().filter_map(|k| Flag::parse(k)));
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
    let mut new = Vec::new();
    loop {
        let next = match first.take() {
            Some(ev) => Ok(ev),
            None => user.next_change(),
        };
        match next {
            Ok(ev) if ev.mailbox == sel.id => match ev.change {
                Change::NewMessage(m) => new.push(m),
                Change::FlagsChanged { uid, flags, modseq } => {
                    if uid > sel.max_uid() {
                        // New since the last EXISTS: its flags go with it, untold.
                        if let Some(m) = new.iter_mut().find(|m| m.uid == uid)
                            && m.modseq < modseq
                        {
                            (m.flags, m.modseq) = (flags, modseq);
                        }
                        continue;
                    }
                    // Not applied when the view already shows this state or a later one (this
                    // session's own change, answered already).
                    if !sel.gone.contains(&uid)
                        && sel.view.set_flags(uid, &flags, modseq)
                        && let Some(data) = sel.flags_response(ctx, uid)
                    {
                        ctx.data(data);
                    }
                }
                Change::Expunged { uids, .. } => {
                    for uid in uids {
                        if sel.seq_of(uid).is_some() {
                            sel.gone.insert(uid);
                        }
                    }
                }
                other => user.notify.note(ChangeEvent {
                    mailbox: sel.id,
                    change: other,
                }),
            },
            Ok(ev) => user.notify.note(ev),
            Err(TryRecvError::Resync) => {
                sel.resync = true;
                user.notify.lost();
            }
            Err(_) => break,
        }
    }
    if sel.resync {
        sel.resync = false;
        resync(ctx, sel, &mut new).await;
    }
    new.sort_unstable_by_key(|m| m.uid);
    let before = sel.exists();
    let before_max = sel.max_uid();
    for m in new {
        sel.view.push(m);
    }
    let added = sel.exists() - before;
    if added > 0 {
        ctx.data(Data::Exists(sel.exists()));
        if !ctx.rev2 {
            // RFC 3501 §7.3.2: RECENT goes with EXISTS for rev1 clients.
            sel.take_recent(ctx, before_max).await;
            ctx.data(Data::Recent(sel.recent.count_in(sel.view.uids())));
        }
    }
    if allow_expunge && !sel.gone.is_empty() {
        let gone: Vec<Uid> = sel.gone.iter().copied().collect();
        sel.expunge(ctx, &gone);
    }
    // RFC 5267 §4.3: ADDTO/REMOVEFROM for what changed, after the EXISTS above.
    crate::search::context::update(ctx, sel).await;
}

/// Applies the pending change events to the view without telling the client: the mailbox is
/// being selected again, and SELECT's responses describe the result. Expunged messages leave
/// the view at once. False (the view is then unusable) when the feed lagged.
pub(crate) fn absorb(user: &mut User, sel: &mut Selected) -> bool {
    let mut new: Vec<store::MessageSummary> = Vec::new();
    let mut gone: Vec<Uid> = std::mem::take(&mut sel.gone).into_iter().collect();
    loop {
        match user.next_change() {
            Ok(ev) if ev.mailbox == sel.id => match ev.change {
                Change::NewMessage(m) => new.push(m),
                Change::FlagsChanged { uid, flags, modseq } => {
                    if uid <= sel.max_uid() {
                        sel.view.set_flags(uid, &flags, modseq);
                    } else if let Some(m) = new.iter_mut().find(|m| m.uid == uid)
                        && m.modseq < modseq
                    {
                        (m.flags, m.modseq) = (flags, modseq);
                    }
                }
                Change::Expunged { uids, .. } => gone.extend(uids),
                other => user.notify.note(ChangeEvent {
                    mailbox: sel.id,
                    change: other,
                }),
            },
            Ok(ev) => user.notify.note(ev),
            Err(TryRecvError::Resync) => {
                user.notify.lost();
                return false;
            }
            Err(_) => break,
        }
    }
    new.sort_unstable_by_key(|m| m.uid);
    for m in new {
        sel.view.push(m);
    }
    gone.sort_unstable();
    gone.dedup();
    sel.view.remove_sorted(&gone);
    true
}

/// The event feed lagged: compare the view with the store; send the flags that changed.
async fn resync(ctx: &mut Ctx, sel: &mut Selected, new: &mut Vec<store::MessageSummary>) {
    let Ok(msgs) = ctx.server.store.list_summaries(sel.id).await else {
        // Try again at the next command.
        sel.resync = true;
        return;
    };
    let present: std::collections::HashSet<Uid> = msgs.iter().map(|m| m.uid).collect();
    for uid in sel.view.uids() {
        if !present.contains(uid) {
            sel.gone.insert(*uid);
        }
    }
    let max = sel.max_uid();
    for m in msgs {
        if m.uid > max {
            new.push(m);
        } else if !sel.gone.contains(&m.uid)
            && sel.view.set_flags(m.uid, &m.flags, m.modseq)
            && let Some(data) = sel.flags_response(ctx, m.uid)
        {
            ctx.data(data);
        }
    }
}
