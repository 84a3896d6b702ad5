//! The identities of accounts and mailboxes.
//!
//! Both were interchangeable `i64`s; as types they cannot be mixed up, and a [`MailboxId`]
//! names the account it belongs to, so every mailbox and message call of
//! [`crate::MailStore`] is scoped to an account: a wrapper that authorises or charges quota
//! sees whose mailbox a call touches, and the backends answer `NotFound` for a mailbox that
//! is not that account's (see [`crate::backend::owners`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An account (a user's mailboxes and settings). The store hands these out; numbers of
/// deleted accounts are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A mailbox of an account: the account and the mailbox's number in the store (unique across
/// accounts, never reused after a DELETE). Only the store makes these, from its rows; a
/// mailbox id whose account is not the mailbox's owner reaches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId {
    pub account: AccountId,
    pub number: i64,
}

impl MailboxId {
    pub fn new(account: AccountId, number: i64) -> MailboxId {
        MailboxId { account, number }
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.number)
    }
}
