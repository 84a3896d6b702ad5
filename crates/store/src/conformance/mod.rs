//! The backend-independent conformance suite (cargo feature `conformance`).
//!
//! Every backend's tests call [`run_all`] (or the single checks) with a fresh, empty store. Each
//! check creates its own domain, so checks may share one store and run in any order. The checks
//! assert the trait contract as the protocol crates rely on it; panics are the failures.

use std::sync::Arc;
use std::time::Duration;

use mail_types::{Address, Domain};

mod batch;
mod check;
mod coordination;
mod dates;
mod deleted;
mod directory;
mod dkim;
mod expunge_log;
mod facts;
mod greylist;
mod isolation;
mod login_guard;
mod mailboxes;
mod messages;
mod queue;
mod queue_lease;
mod quota;
mod transfer;
mod two_handles;

pub use batch::*;
pub use check::*;
pub use coordination::*;
pub use dates::*;
pub use deleted::*;
pub use directory::*;
pub use dkim::*;
pub use expunge_log::*;
pub use facts::*;
pub use greylist::*;
pub use isolation::*;
pub use login_guard::*;
pub use mailboxes::*;
pub use messages::*;
pub use queue::*;
pub use queue_lease::*;
pub use quota::*;
pub use transfer::*;
pub use two_handles::*;

use crate::{AccountId, ChangeEvent, ChangeFeed, INBOX, MailboxId, Store};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn addr(s: &str) -> Address {
    Address::parse(s).expect("test address")
}

fn dom(s: &str) -> Domain {
    Domain::parse(s).expect("test domain")
}

fn msg(body: &str) -> Arc<Vec<u8>> {
    Arc::new(format!("Subject: test\r\n\r\n{body}\r\n").into_bytes())
}

/// Creates `domain` and the users `local@domain` for each of `locals`.
async fn setup(store: &dyn Store, domain: &str, locals: &[&str]) -> Vec<AccountId> {
    store.add_domain(&dom(domain)).await.expect("add_domain");
    let mut ids = Vec::new();
    for l in locals {
        let id = store
            .add_user(&addr(&format!("{l}@{domain}")), HASH)
            .await
            .expect("add_user");
        ids.push(id);
    }
    ids
}

async fn inbox(store: &dyn Store, account: AccountId) -> MailboxId {
    store
        .find_mailbox(account, INBOX)
        .await
        .expect("find_mailbox")
        .expect("INBOX exists")
        .id
}

/// The next event, failing after a few seconds.
async fn next_event(rx: &mut ChangeFeed) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5 s")
        .expect("event channel open")
}

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    domains_and_users(s).await;
    add_users_in_batches(s).await;
    aliases_and_catch_all(s).await;
    pop3_expire_choice(s).await;
    default_mailboxes(s).await;
    delivery_uids_and_dedup(s).await;
    append_and_blobs(s).await;
    flags(s).await;
    copy_and_expunge(s).await;
    conditional_store_and_expunge_log(s).await;
    expunge_log_pruning(s).await;
    mailbox_names(s).await;
    rename_and_delete(s).await;
    subscriptions(s).await;
    change_events(s).await;
    urlauth_keys(s).await;
    leases(s).await;
    lease_guard(store.clone()).await;
    shared_secrets(s, s).await;
    recent_claims(s, s).await;
    move_messages(s).await;
    append_many(s).await;
    message_facts_cache(s).await;
    expunge_deleted_and_counts(s).await;
    calls_are_scoped_to_the_account(s).await;
    dkim_keys(s).await;
    save_dates(s).await;
    retrievals_and_aged_messages(s).await;
    quota_limits_and_counters(s).await;
    quota_race(store.clone(), store.clone()).await;
    quota_warnings(s).await;
}
