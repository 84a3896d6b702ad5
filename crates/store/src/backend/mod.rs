//! Pieces every backend needs the same way: mailbox name rules, keyword rules, the in-memory
//! cache of message facts, the mailbox-owner check. Protocol crates do not use them.

pub mod check_sql;
pub mod facts_cache;
pub mod flags;
pub mod keywords;
pub mod names;
pub mod owners;
