//! The session's snapshot of INBOX: message numbers 1..n, sizes, UIDs and deletion marks.
//!
//! RFC 1939 §5: messages are numbered from 1 when the maildrop is opened; numbers stay the
//! same for the whole session, and messages marked as deleted are not counted by STAT/LIST.
//! Mail that arrives during the session is not in the snapshot; it waits for the next one.

use pop3_proto::Reply;
use store::{BlobId, MailboxId, MessageMeta, Uid};

#[derive(Debug)]
pub(crate) struct Entry {
    pub uid: Uid,
    pub size: u64,
    pub blob: BlobId,
    pub deleted: bool,
}

pub(crate) struct Maildrop {
    pub mailbox: MailboxId,
    uid_validity: u32,
    messages: Vec<Entry>,
}

impl Maildrop {
    pub fn new(mailbox: MailboxId, uid_validity: u32, messages: Vec<MessageMeta>) -> Maildrop {
        Maildrop {
            mailbox,
            uid_validity,
            messages: messages
                .into_iter()
                .map(|m| Entry {
                    uid: m.uid,
                    size: m.size,
                    blob: m.blob,
                    deleted: false,
                })
                .collect(),
        }
    }

    /// Number and total size of the messages not marked as deleted (RFC 1939 §5 STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, size), (_, e)| (n + 1, size + e.size))
    }

    /// The messages not marked as deleted, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    /// Message `n`, if it exists and is not marked as deleted.
    pub fn get(&self, n: u32) -> Result<&Entry, Reply> {
        let index = (n as usize).checked_sub(1).ok_or_else(|| no_such(n))?;
        match self.messages.get(index) {
            None => Err(no_such(n)),
            // RFC 1939 §5: a deleted message may not be referred to.
            Some(e) if e.deleted => Err(Reply::err(format!("message {n} already deleted"))),
            Some(e) => Ok(e),
        }
    }

    pub fn delete(&mut self, n: u32) -> Result<(), Reply> {
        self.get(n)?;
        if let Some(e) = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.messages.get_mut(i))
        {
            e.deleted = true;
        }
        Ok(())
    }

    /// RFC 1939 §5 RSET: unmark every message.
    pub fn reset(&mut self) {
        for e in &mut self.messages {
            e.deleted = false;
        }
    }

    pub fn marked(&self) -> Vec<Uid> {
        self.messages
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect()
    }

    /// RFC 1939 §7 UIDL: 1–70 characters in 0x21–0x7E, the same for a message in every session.
    /// UIDVALIDITY and UID together name a message for good (RFC 9051 §2.3.1.1); 16 hex digits.
    pub fn unique_id(&self, entry: &Entry) -> String {
        format!("{:08x}{:08x}", self.uid_validity, entry.uid)
    }
}

fn no_such(n: u32) -> Reply {
    Reply::err(format!("no such message {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Flags;

    fn meta(uid: Uid, size: u64) -> MessageMeta {
        MessageMeta {
            uid,
            blob: BlobId(format!("{uid:064x}")),
            size,
            internal_date: 0,
            flags: Flags::default(),
            modseq: 1,
        }
    }

    #[test]
    fn numbering_deletion_and_reset() {
        let mut d = Maildrop::new(
            store::MailboxId::new(store::AccountId(1), 1),
            0x1234,
            vec![meta(3, 100), meta(7, 50), meta(9, 1)],
        );
        assert_eq!(d.stat(), (3, 151));
        assert!(d.get(0).is_err());
        assert!(d.get(4).is_err());
        assert_eq!(d.get(2).map(|e| e.uid).ok(), Some(7));
        d.delete(2).unwrap();
        assert_eq!(
            d.get(2).unwrap_err().to_bytes(),
            b"-ERR message 2 already deleted\r\n"
        );
        assert!(d.delete(2).is_err());
        assert_eq!(d.stat(), (2, 101));
        assert_eq!(d.live().map(|(n, _)| n).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(d.marked(), [7]);
        d.reset();
        assert_eq!(d.stat(), (3, 151));
        assert!(d.marked().is_empty());
        let e = d.get(1).unwrap();
        assert_eq!(d.unique_id(e), "0000123400000003");
    }
}
