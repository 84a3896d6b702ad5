//! Conformance checks for [`QueueStore`]: enqueue, due work, attempt results, admin actions
//! and cleanup. Each check works on messages it enqueued itself, so checks may share a store
//! as long as they do not run concurrently.

use std::sync::Arc;
use std::time::Duration;

use crate::{
    AttemptResult, DsnNotify, DsnRet, OutboundEnvelope, OutboundRecipient, QueueStore,
    RecipientStatus, StoreError,
};

fn envelope(sender: &str, rcpts: &[&str]) -> OutboundEnvelope {
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
const LATER: i64 = 4_000_000_000;

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

    let due = store.due_messages(LATER, 1000).await.expect("due");
    assert!(due.iter().any(|d| d.id == id));
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
    store
        .record_attempts(&[
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
        ])
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
    assert!(
        !store
            .due_messages(1000, 1000)
            .await
            .expect("due")
            .iter()
            .any(|d| d.id == id)
    );
    assert!(
        store
            .due_messages(LATER, 1000)
            .await
            .expect("due")
            .iter()
            .any(|d| d.id == id)
    );

    // Retry now makes it due; a finished recipient cannot be moved back.
    assert_eq!(store.retry_queued(Some(id), 1000).await.expect("retry"), 1);
    assert!(
        store
            .due_messages(1000, 1000)
            .await
            .expect("due")
            .iter()
            .any(|d| d.id == id)
    );
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
        .record_attempts(&[AttemptResult {
            recipient: b,
            status: RecipientStatus::Failed,
            next_attempt: 0,
            error: Some("550 5.1.1 no such user".into()),
            at: 200,
        }])
        .await
        .expect("record");
    // A late result for a finished recipient is ignored.
    store
        .record_attempts(&[AttemptResult {
            recipient: a,
            status: RecipientStatus::Pending,
            next_attempt: 0,
            error: None,
            at: 300,
        }])
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
