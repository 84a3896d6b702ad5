//! Conformance checks for [`QueueStore`]: enqueue, claims, attempt results, admin actions and
//! cleanup. Each check works on messages it enqueued itself (at domains of its own) and
//! deletes them at the end, so checks may share a store as long as they do not run
//! concurrently. Claims with and leases of several processes: `queue_lease.rs`.

use std::sync::Arc;
use std::time::Duration;

use crate::{
    AttemptResult, Claim, ClaimLimits, DsnNotify, DsnRet, LeaseId, OutboundEnvelope,
    OutboundRecipient, QueueId, QueueStore, RecipientStatus, StoreError,
};

pub(super) fn envelope(sender: &str, rcpts: &[&str]) -> OutboundEnvelope {
    OutboundEnvelope {
        sender: sender.to_string(),
        recipients: rcpts
            .iter()
            .map(|a| OutboundRecipient {
                address: a.to_string(),
                orcpt: Some(format!("rfc822;{a}")),
                notify: DsnNotify::default(),
            })
            .collect(),
        envid: Some("env-1".into()),
        ret: Some(DsnRet::Headers),
        account: None,
        smtputf8: false,
    }
}

/// Far in the future, so every pending recipient counts as due.
pub(super) const LATER: i64 = 4_000_000_000;

/// Generous limits: every due destination gets a lease.
pub(super) const ALL: ClaimLimits = ClaimLimits {
    leases: 10_000,
    per_batch: 10_000,
    per_destination: 10_000,
    single_destination: false,
};

/// The claims of `claims` that hold message `id`: (lease, claimed recipient ids).
pub(super) fn held(claims: &[Claim], id: QueueId) -> Vec<(LeaseId, Vec<i64>)> {
    claims
        .iter()
        .flat_map(|c| {
            c.messages
                .iter()
                .filter(move |m| m.message.id == id)
                .map(move |m| (c.lease.id, m.recipients.clone()))
        })
        .collect()
}

/// Releases every lease of `claims`.
pub(super) async fn release_all(store: &dyn QueueStore, claims: &[Claim], now: i64) {
    for c in claims {
        store.release(c.lease.id, now).await.expect("release");
    }
}

/// Enqueue stores the envelope and body, notifies, and shows up as due work.
pub async fn queue_enqueue_and_read(store: &dyn QueueStore) {
    let notify = store.queue_notifier();
    let waiter = notify.notified();
    let body = Arc::new(b"Subject: q\r\n\r\nqueued\r\n".to_vec());
    let env = envelope("a@here.test", &["x@One.Test", "y@two.test"]);
    let id = store
        .enqueue(Arc::clone(&body), &env)
        .await
        .expect("enqueue");
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("enqueue notifies the scheduler");

    let m = store
        .queued_message(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.sender, "a@here.test");
    assert_eq!(m.envid.as_deref(), Some("env-1"));
    assert_eq!(m.ret, Some(DsnRet::Headers));
    assert_eq!(m.size, body.len() as u64);
    assert!(!m.delay_notified);
    assert_eq!(m.recipients.len(), 2);
    assert_eq!(m.recipients[0].address, "x@One.Test");
    assert_eq!(m.recipients[0].domain, "one.test");
    assert_eq!(m.recipients[0].orcpt.as_deref(), Some("rfc822;x@One.Test"));
    assert_eq!(m.recipients[0].notify, DsnNotify::default());
    assert!(
        m.recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Pending)
    );
    assert_eq!(store.queued_body(id).await.expect("body"), body);

    // Due: a claim takes each domain's recipient under a lease of its own.
    let claims = store
        .claim_due("node-1", LATER, 60, &ALL)
        .await
        .expect("claim");
    let mine = held(&claims, id);
    assert_eq!(mine.len(), 2, "one lease per domain: {claims:?}");
    let one = claims
        .iter()
        .find(|c| c.lease.domain == "one.test")
        .expect("a lease for one.test");
    assert_eq!(one.lease.destination, "one.test");
    assert_eq!(one.lease.holder, "node-1");
    assert_eq!(one.lease.expires, LATER + 60);
    assert_eq!(one.messages[0].recipients, [m.recipients[0].id]);
    assert_eq!(one.messages[0].message.recipients.len(), 2);
    assert_eq!(
        one.messages[0].message.recipients[0].lease,
        Some(one.lease.id)
    );
    release_all(store, &claims, LATER).await;
    assert!(
        store
            .list_queue()
            .await
            .expect("list")
            .iter()
            .any(|d| d.id == id)
    );
    assert!(store.next_due().await.expect("next_due").is_some());

    // No recipients: refused.
    let empty = envelope("", &[]);
    assert!(matches!(
        store.enqueue(body, &empty).await,
        Err(StoreError::Invalid(_))
    ));
    store.delete_queued(id).await.expect("delete");
}

/// Attempt results move recipients; finished messages are removed with their body.
pub async fn queue_attempts_and_cleanup(store: &dyn QueueStore) {
    let body = Arc::new(b"Subject: r\r\n\r\nretry\r\n".to_vec());
    let id = store
        .enqueue(Arc::clone(&body), &envelope("", &["a@r.test", "b@r.test"]))
        .await
        .expect("enqueue");
    let m = store
        .queued_message(id)
        .await
        .expect("read")
        .expect("exists");
    let (a, b) = (m.recipients[0].id, m.recipients[1].id);
    let claims = store
        .claim_due("node-1", LATER, 60, &ALL)
        .await
        .expect("claim");
    let lease = held(&claims, id)[0].0;
    store
        .record_attempts(
            lease,
            &[
                AttemptResult {
                    recipient: a,
                    status: RecipientStatus::Delivered,
                    next_attempt: 0,
                    error: None,
                    at: 100,
                },
                AttemptResult {
                    recipient: b,
                    status: RecipientStatus::Pending,
                    next_attempt: LATER - 10,
                    error: Some("451 4.3.0 try later".into()),
                    at: 100,
                },
            ],
        )
        .await
        .expect("record");
    let m = store
        .queued_message(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(m.recipients[0].attempts, 1);
    assert_eq!(m.recipients[1].status, RecipientStatus::Pending);
    assert_eq!(
        m.recipients[1].last_error.as_deref(),
        Some("451 4.3.0 try later")
    );
    assert_eq!(m.recipients[1].last_attempt, Some(100));
    // A recorded recipient is no longer held.
    assert_eq!(m.recipients[1].lease, None);
    release_all(store, &claims, LATER).await;
    // Not due before its retry time; due after it.
    let early = store
        .claim_due("node-1", LATER - 20, 60, &ALL)
        .await
        .expect("claim");
    assert!(held(&early, id).is_empty(), "{early:?}");
    release_all(store, &early, LATER - 20).await;
    let due = store
        .claim_due("node-1", LATER - 10, 60, &ALL)
        .await
        .expect("claim");
    assert_eq!(held(&due, id).len(), 1);
    // Held by a live lease: `retry` leaves it to its holder.
    assert_eq!(store.retry_queued(Some(id), 1000).await.expect("retry"), 0);
    release_all(store, &due, LATER - 10).await;
    store
        .record_attempts(
            held(&due, id)[0].0,
            &[AttemptResult {
                recipient: b,
                status: RecipientStatus::Pending,
                next_attempt: LATER - 10,
                error: Some("late".into()),
                at: 150,
            }],
        )
        .await
        .expect("a released lease's result is ignored, not an error");
    let m = store
        .queued_message(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.recipients[1].attempts, 1, "late result ignored");

    // Retry now makes it due; a finished recipient cannot be moved back.
    assert_eq!(store.retry_queued(Some(id), 1000).await.expect("retry"), 1);
    let due = store
        .claim_due("node-1", 1000, 60, &ALL)
        .await
        .expect("claim");
    let lease = held(&due, id)[0].0;
    assert!(matches!(
        store.retry_queued(Some(i64::MAX), 1000).await,
        Err(StoreError::NotFound(_))
    ));
    store.set_delay_notified(id).await.expect("delay");
    assert!(
        store
            .queued_message(id)
            .await
            .expect("read")
            .expect("exists")
            .delay_notified
    );

    // Still pending: not finished.
    store.remove_finished().await.expect("cleanup");
    assert!(store.queued_message(id).await.expect("read").is_some());
    store
        .record_attempts(
            lease,
            &[AttemptResult {
                recipient: b,
                status: RecipientStatus::Failed,
                next_attempt: 0,
                error: Some("550 5.1.1 no such user".into()),
                at: 200,
            }],
        )
        .await
        .expect("record");
    release_all(store, &due, 1000).await;
    // A late result for a finished recipient is ignored.
    store
        .record_attempts(
            lease,
            &[AttemptResult {
                recipient: a,
                status: RecipientStatus::Pending,
                next_attempt: 0,
                error: None,
                at: 300,
            }],
        )
        .await
        .expect("record");
    let m = store
        .queued_message(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(m.recipients[1].status, RecipientStatus::Failed);
    assert!(store.remove_finished().await.expect("cleanup") >= 1);
    assert!(store.queued_message(id).await.expect("read").is_none());
    assert!(matches!(
        store.queued_body(id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_queued(id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Runs every queue check.
pub async fn run_queue(store: &dyn QueueStore) {
    queue_enqueue_and_read(store).await;
    queue_attempts_and_cleanup(store).await;
}
