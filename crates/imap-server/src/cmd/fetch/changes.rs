//! The CONDSTORE and QRESYNC modifiers of FETCH: `CHANGEDSINCE n` keeps the messages whose
//! MODSEQ is above n (RFC 7162 §3.1.4.1), and `VANISHED` first reports the UIDs of the set
//! expunged since n (§3.2.6).

use imap_proto::{Data, FetchModifier, SequenceSet};
use store::{StoreError, Uid};

use crate::ctx::Ctx;
use crate::state::Selected;

/// The modifiers of one FETCH.
pub(super) struct Modifiers {
    pub changed_since: Option<u64>,
    vanished: bool,
}

impl Modifiers {
    /// The modifiers, or why the command is BAD.
    pub fn parse(ctx: &Ctx, uid: bool, list: &[FetchModifier]) -> Result<Modifiers, &'static str> {
        let mut m = Modifiers {
            changed_since: None,
            vanished: false,
        };
        for x in list {
            match x {
                FetchModifier::ChangedSince(n) => m.changed_since = Some(*n),
                FetchModifier::Vanished => m.vanished = true,
            }
        }
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, after ENABLE QRESYNC.
        if m.vanished && !(uid && m.changed_since.is_some() && ctx.qresync) {
            return Err("VANISHED needs ENABLE QRESYNC, UID FETCH and CHANGEDSINCE");
        }
        Ok(m)
    }

    /// Sends `VANISHED (EARLIER)` when asked and narrows `targets` to the messages changed
    /// since CHANGEDSINCE. The view's MODSEQs must be known (details read).
    pub async fn apply(
        &self,
        ctx: &mut Ctx,
        sel: &Selected,
        set: &SequenceSet,
        targets: &mut Vec<(u32, Uid)>,
    ) -> Result<(), StoreError> {
        let Some(n) = self.changed_since else {
            return Ok(());
        };
        if self.vanished {
            // RFC 7162 §3.2.6: first the UIDs of the set expunged since n. Those still in the
            // view (expunged elsewhere, not announced yet) are left to the VANISHED that
            // announces them.
            let max = sel.max_uid();
            let gone = match ctx.server.store.vanished_since(sel.id, n).await? {
                Some(expunged) => SequenceSet::from_ids(
                    expunged
                        .into_iter()
                        .filter(|u| set.contains(*u, max) && sel.view.index_of(*u).is_none()),
                ),
                // RFC 7162 §3.2.10 / §3.2.5.2: the expunge log was pruned past n: every UID of
                // the set that is not in the mailbox (some may never have existed).
                None => {
                    let last = set.highest_explicit().unwrap_or(0).max(max);
                    SequenceSet::from_ranges(
                        sel.view.absent(
                            set.resolve(max)
                                .filter(|r| *r.start() <= last)
                                .map(|r| (*r.start(), (*r.end()).min(last))),
                        ),
                    )
                }
            };
            if let Some(uids) = gone {
                ctx.data(Data::Vanished {
                    earlier: true,
                    uids,
                });
            }
        }
        // RFC 7162 §3.1.4.1: only the messages whose MODSEQ is above n.
        targets.retain(|(seqno, _)| {
            sel.view
                .at(*seqno as usize - 1)
                .is_some_and(|m| m.modseq > n)
        });
        Ok(())
    }
}
