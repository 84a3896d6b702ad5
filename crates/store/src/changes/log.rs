//! What backends write to their change log, and its encoding.

use crate::{AccountId, ChangeEvent, StoreError, StoreResult};

/// The events one transaction made in one account, with the account's log sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedBatch {
    pub account: AccountId,
    /// Strictly increasing and gap-free per account, in commit order: backends allocate it
    /// from a per-account counter updated in the writing transaction (the row lock orders
    /// concurrent writers), so a reader that has seen `seq` n knows n + 1 is the next one.
    pub seq: u64,
    pub events: Vec<ChangeEvent>,
}

/// Groups a transaction's events by account, keeping their order within each account.
pub fn group_by_account(events: Vec<ChangeEvent>) -> Vec<(AccountId, Vec<ChangeEvent>)> {
    let mut groups: Vec<(AccountId, Vec<ChangeEvent>)> = Vec::new();
    for ev in events {
        match groups.iter_mut().find(|(a, _)| *a == ev.account()) {
            Some((_, list)) => list.push(ev),
            None => groups.push((ev.account(), vec![ev])),
        }
    }
    groups
}

/// The stored form of a batch's events: JSON, readable with `sqlite3` / `psql`.
pub fn encode_events(events: &[ChangeEvent]) -> String {
    // Serialising plain data with derived impls cannot fail.
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

pub fn decode_events(text: &str) -> StoreResult<Vec<ChangeEvent>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Temporary(format!("unreadable change log entry: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountId, Change, Flags, MailboxId, MessageSummary, SystemFlags};

    #[test]
    fn events_round_trip() {
        let events = vec![
            ChangeEvent {
                mailbox: MailboxId::new(AccountId(3), 9),
                change: Change::NewMessage(MessageSummary {
                    uid: 7,
                    size: 1234,
                    internal_date: 1_700_000_000,
                    flags: Flags {
                        system: SystemFlags::SEEN,
                        keywords: vec!["$Forwarded".into(), "ünï".into()],
                    },
                    modseq: 42,
                }),
            },
            ChangeEvent {
                mailbox: MailboxId::new(AccountId(3), 9),
                change: Change::Expunged {
                    uids: vec![1, 2, 5],
                    modseq: 43,
                },
            },
            ChangeEvent {
                mailbox: MailboxId::new(AccountId(3), 0),
                change: Change::AccountDeleted,
            },
        ];
        let text = encode_events(&events);
        assert_eq!(decode_events(&text).unwrap(), events);
        assert!(decode_events("{not json").is_err());
    }

    #[test]
    fn groups_keep_order_per_account() {
        let ev = |account, mailbox| ChangeEvent {
            mailbox: MailboxId::new(AccountId(account), mailbox),
            change: Change::MailboxCreated { name: "x".into() },
        };
        let groups = group_by_account(vec![ev(1, 1), ev(2, 5), ev(1, 2)]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, AccountId(1));
        assert_eq!(
            groups[0]
                .1
                .iter()
                .map(|e| e.mailbox.number)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(groups[1].1[0].mailbox.number, 5);
    }
}
