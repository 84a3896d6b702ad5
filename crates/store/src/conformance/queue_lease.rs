//! Conformance checks for the queue shared by several processes: claims, leases, fairness and
//! the per-destination limit, with TWO handles on one store (two processes on one SQLite data
//! directory, two nodes on one PostgreSQL), and the sending log's check-and-count.
//!
//! Like `queue.rs`, each check uses domains of its own and deletes its messages at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::queue::{ALL, LATER, envelope, held, release_all};
use crate::{
    AccountId, AttemptResult, Claim, ClaimLimits, QueueId, QueueStore, RecipientStatus,
    SendingLimits, SendingLog, SendingUsage,
};

async fn enqueue_n(store: &dyn QueueStore, n: usize, rcpts: &[&str]) -> Vec<QueueId> {
    let body = Arc::new(b"Subject: lease\r\n\r\nshared queue\r\n".to_vec());
    let env = envelope("s@here.test", rcpts);
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(
            store
                .enqueue(Arc::clone(&body), &env)
                .await
                .expect("enqueue"),
        );
    }
    ids
}

async fn delete_all(store: &dyn QueueStore, ids: &[QueueId]) {
    for &id in ids {
        store.delete_queued(id).await.expect("delete");
    }
}

/// Claim rounds of `store` until one takes nothing; every claim's lease is checked against
/// `limits` and `holder`.
async fn claim_rounds(
    store: &dyn QueueStore,
    holder: &str,
    now: i64,
    limits: &ClaimLimits,
) -> Vec<Claim> {
    let mut all = Vec::new();
    loop {
        let round = store
            .claim_due(holder, now, 60, limits)
            .await
            .expect("claim");
        if round.is_empty() {
            return all;
        }
        assert!(round.len() <= limits.leases, "{round:?}");
        let mut domains = BTreeSet::new();
        for c in &round {
            assert!(
                domains.insert(c.lease.domain.clone()),
                "one lease per domain per round"
            );
            assert_eq!(c.lease.holder, holder);
            assert!(c.messages.len() <= limits.per_batch);
            for m in &c.messages {
                for r in &m.recipients {
                    let rcpt = m.message.recipients.iter().find(|x| x.id == *r);
                    assert_eq!(
                        rcpt.map(|x| x.domain.as_str()),
                        Some(c.lease.domain.as_str())
                    );
                }
            }
        }
        all.extend(round);
    }
}

/// Two handles claim at the same time, round after round: every due recipient is claimed by
/// exactly one of them, and the recipients of one message at one domain stay together.
pub async fn queue_claims_are_exclusive(a: &dyn QueueStore, b: &dyn QueueStore) {
    let mut ids = Vec::new();
    for d in ["d0", "d1", "d2", "d3"] {
        let r1 = format!("x@{d}.excl.test");
        let r2 = format!("y@{d}.excl.test");
        ids.extend(enqueue_n(a, 10, &[&r1, &r2]).await);
    }
    let limits = ClaimLimits {
        leases: 3,
        per_batch: 2,
        per_destination: 100,
        single_destination: false,
    };
    let (ca, cb) = tokio::join!(
        claim_rounds(a, "node-a", LATER, &limits),
        claim_rounds(b, "node-b", LATER, &limits)
    );
    let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
    for (holder, claims) in [("node-a", &ca), ("node-b", &cb)] {
        for c in claims.iter() {
            for m in &c.messages {
                assert_eq!(
                    m.recipients.len(),
                    2,
                    "both recipients at the domain together"
                );
                for &r in &m.recipients {
                    if let Some(other) = seen.insert(r, holder) {
                        panic!("recipient {r} claimed by {other} and {holder}");
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), 80, "every recipient claimed once");
    // The leases are the store's, visible to both handles.
    let live = b.leases(LATER).await.expect("leases");
    for c in ca.iter().chain(&cb) {
        assert!(live.contains(&c.lease), "{:?} not listed", c.lease);
    }
    release_all(a, &ca, LATER).await;
    release_all(b, &cb, LATER).await;
    assert!(
        !a.leases(LATER)
            .await
            .expect("leases")
            .iter()
            .any(|l| l.domain.ends_with(".excl.test"))
    );
    delete_all(a, &ids).await;
}

/// A lease that expires is claimable by the other handle; `renew` keeps it; the old holder's
/// late result is ignored; a released lease's recipients are due at once.
pub async fn queue_lease_expiry_and_renew(a: &dyn QueueStore, b: &dyn QueueStore) {
    let ids = enqueue_n(a, 1, &["u@lease.test"]).await;
    let id = ids[0];
    let t = LATER;
    let first = a.claim_due("node-a", t, 60, &ALL).await.expect("claim");
    let mine = held(&first, id);
    assert_eq!(mine.len(), 1);
    let (old, rcpts) = mine[0].clone();
    let rcpt = rcpts[0];

    // Live: nobody else gets it, before or after a renewal.
    let none = b
        .claim_due("node-b", t + 30, 60, &ALL)
        .await
        .expect("claim");
    assert!(held(&none, id).is_empty(), "claimed twice: {none:?}");
    release_all(b, &none, t + 30).await;
    assert!(a.renew(old, "node-a", t + 50, 60).await.expect("renew"));
    assert!(
        !b.renew(old, "node-b", t + 50, 60).await.expect("renew"),
        "not b's lease"
    );
    let none = b
        .claim_due("node-b", t + 100, 60, &ALL)
        .await
        .expect("claim");
    assert!(held(&none, id).is_empty(), "renewed until t+110: {none:?}");
    release_all(b, &none, t + 100).await;
    let listed = b.leases(t + 100).await.expect("leases");
    let lease = listed.iter().find(|l| l.id == old).expect("listed");
    assert_eq!((lease.holder.as_str(), lease.expires), ("node-a", t + 110));
    let m = b.queued_message(id).await.expect("read").expect("exists");
    assert_eq!(m.recipients[0].lease, Some(old));

    // Expired (node-a "crashed"): node-b takes it over under a new lease.
    let second = b
        .claim_due("node-b", t + 111, 60, &ALL)
        .await
        .expect("claim");
    let theirs = held(&second, id);
    assert_eq!(theirs.len(), 1, "{second:?}");
    let new = theirs[0].0;
    assert_ne!(new, old);
    assert!(
        !a.renew(old, "node-a", t + 112, 60).await.expect("renew"),
        "lease lost"
    );
    assert!(
        !a.leases(t + 112)
            .await
            .expect("leases")
            .iter()
            .any(|l| l.id == old)
    );
    // The old holder's late result is ignored: the recipient is node-b's now.
    a.record_attempts(
        old,
        &[AttemptResult {
            recipient: rcpt,
            status: RecipientStatus::Delivered,
            next_attempt: 0,
            error: None,
            at: t + 113,
        }],
    )
    .await
    .expect("record");
    let m = a.queued_message(id).await.expect("read").expect("exists");
    assert_eq!(m.recipients[0].status, RecipientStatus::Pending);
    assert_eq!(m.recipients[0].attempts, 0);
    assert_eq!(m.recipients[0].lease, Some(new));

    // The holder's result counts and ends its hold.
    b.record_attempts(
        new,
        &[AttemptResult {
            recipient: rcpt,
            status: RecipientStatus::Pending,
            next_attempt: t + 1000,
            error: Some("451 4.3.0 later".into()),
            at: t + 114,
        }],
    )
    .await
    .expect("record");
    b.release(new, t + 115).await.expect("release");
    let m = a.queued_message(id).await.expect("read").expect("exists");
    assert_eq!(m.recipients[0].attempts, 1);
    assert_eq!(
        m.recipients[0].next_attempt,
        t + 1000,
        "release keeps a recorded retry"
    );
    assert_eq!(m.recipients[0].lease, None);
    let early = a
        .claim_due("node-a", t + 500, 60, &ALL)
        .await
        .expect("claim");
    assert!(held(&early, id).is_empty());
    release_all(a, &early, t + 500).await;

    // Released without a result: due again at once, for anyone.
    let third = a
        .claim_due("node-a", t + 1000, 60, &ALL)
        .await
        .expect("claim");
    assert_eq!(held(&third, id).len(), 1);
    release_all(a, &third, t + 1001).await;
    let fourth = b
        .claim_due("node-b", t + 1001, 60, &ALL)
        .await
        .expect("claim");
    assert_eq!(held(&fourth, id).len(), 1, "released work is due at once");
    release_all(b, &fourth, t + 1001).await;
    delete_all(a, &ids).await;
}

/// Fairness: 1,000 messages for one domain and then 1 for another — the other is claimed in
/// the first round, and the big domain gets one batch per round.
pub async fn queue_fair_claims(store: &dyn QueueStore) {
    // Four writers at once share commits (group commit), so this takes seconds, not minutes.
    let (w, x, y, z) = tokio::join!(
        enqueue_n(store, 250, &["a@slow.fair.test"]),
        enqueue_n(store, 250, &["a@slow.fair.test"]),
        enqueue_n(store, 250, &["a@slow.fair.test"]),
        enqueue_n(store, 250, &["a@slow.fair.test"]),
    );
    let mut ids: Vec<QueueId> = [w, x, y, z].concat();
    ids.sort_unstable();
    let quick = enqueue_n(store, 1, &["b@quick.fair.test"]).await[0];
    let limits = ClaimLimits {
        leases: 2,
        per_batch: 50,
        per_destination: 20,
        single_destination: false,
    };
    let round = store
        .claim_due("node-a", LATER, 60, &limits)
        .await
        .expect("claim");
    assert_eq!(
        round.len(),
        2,
        "{:?}",
        round.iter().map(|c| &c.lease).collect::<Vec<_>>()
    );
    assert_eq!(
        held(&round, quick).len(),
        1,
        "the other domain waits for no one"
    );
    let slow = round
        .iter()
        .find(|c| c.lease.domain == "slow.fair.test")
        .expect("a slow batch");
    assert_eq!(slow.messages.len(), 50);
    let first: Vec<QueueId> = slow.messages.iter().map(|m| m.message.id).collect();
    assert_eq!(first, ids[..50], "oldest first");
    release_all(store, &round, LATER).await;
    ids.push(quick);
    delete_all(store, &ids).await;
}

/// The per-destination limit counts the live leases of every handle; a released lease frees
/// its slot. With one destination for all (a smarthost), domains share the limit.
pub async fn queue_destination_limit(a: &dyn QueueStore, b: &dyn QueueStore) {
    let mut ids = enqueue_n(a, 10, &["c@limit.test"]).await;
    ids.extend(enqueue_n(a, 1, &["c@other.limit.test"]).await);
    let limits = ClaimLimits {
        leases: 100,
        per_batch: 2,
        per_destination: 2,
        single_destination: false,
    };
    let ca = claim_rounds(a, "node-a", LATER, &limits).await;
    let on = |claims: &[Claim], d: &str| claims.iter().filter(|c| c.lease.domain == d).count();
    assert_eq!(on(&ca, "limit.test"), 2, "two connections' worth");
    assert_eq!(on(&ca, "other.limit.test"), 1);
    let cb = claim_rounds(b, "node-b", LATER, &limits).await;
    assert_eq!(
        on(&cb, "limit.test"),
        0,
        "node-a's leases count for node-b too"
    );
    let slot = ca
        .iter()
        .find(|c| c.lease.domain == "limit.test")
        .expect("a lease");
    a.release(slot.lease.id, LATER).await.expect("release");
    let cb = claim_rounds(b, "node-b", LATER, &limits).await;
    assert_eq!(on(&cb, "limit.test"), 1, "the freed slot");
    // An expired lease frees its slot too.
    let later = claim_rounds(b, "node-b", LATER + 61, &limits).await;
    assert_eq!(on(&later, "limit.test"), 2);
    release_all(a, &ca, LATER + 61).await;
    release_all(b, &cb, LATER + 61).await;
    release_all(b, &later, LATER + 61).await;

    // One destination for every domain: one lease in all.
    let single = ClaimLimits {
        per_destination: 1,
        single_destination: true,
        ..limits
    };
    let cs = claim_rounds(a, "node-a", LATER + 61, &single).await;
    let ours: Vec<_> = cs
        .iter()
        .filter(|c| c.lease.domain.ends_with("limit.test"))
        .collect();
    assert_eq!(ours.len(), 1, "{cs:?}");
    assert_eq!(ours[0].lease.destination, "");
    release_all(a, &cs, LATER + 61).await;
    delete_all(a, &ids).await;
}

/// Six check-and-counts of one message with two recipients, one after the other; the ids of
/// those counted.
async fn burst(s: &dyn SendingLog, account: AccountId, t: i64, limits: SendingLimits) -> Vec<i64> {
    let mut ok = Vec::new();
    for _ in 0..6 {
        if let Ok(id) = s
            .record_sending(account, 2, t, t - 3600, limits)
            .await
            .expect("record")
        {
            ok.push(id);
        }
    }
    ok
}

/// The sending log: parallel check-and-count through two handles never exceeds the allowance;
/// entries leave the window; a forgotten entry no longer counts.
pub async fn sending_log_limits(a: &dyn SendingLog, b: &dyn SendingLog) {
    let account = AccountId(9_000_001);
    let limits = SendingLimits {
        max_messages: Some(5),
        max_recipients: Some(100),
    };
    let t = 1_000_000;
    let (oa, ob) = tokio::join!(burst(a, account, t, limits), burst(b, account, t, limits));
    assert_eq!(
        oa.len() + ob.len(),
        5,
        "exactly the allowance: {oa:?} {ob:?}"
    );
    let used = SendingUsage {
        messages: 5,
        recipients: 10,
    };
    assert_eq!(
        a.sending_usage(account, t - 3600).await.expect("usage"),
        used
    );
    assert_eq!(
        b.record_sending(account, 1, t, t - 3600, limits)
            .await
            .expect("record"),
        Err(used)
    );
    let forgotten = oa.first().or(ob.first()).copied().expect("an entry");
    b.forget_sending(forgotten).await.expect("forget");
    assert_eq!(
        a.sending_usage(account, t - 3600)
            .await
            .expect("usage")
            .messages,
        4
    );
    // Recipients count too: 4 messages of 2, then 93 more would pass 100.
    let r = SendingLimits {
        max_messages: None,
        max_recipients: Some(100),
    };
    assert!(
        a.record_sending(account, 93, t, t - 3600, r)
            .await
            .expect("record")
            .is_err()
    );
    assert!(
        a.record_sending(account, 92, t, t - 3600, r)
            .await
            .expect("record")
            .is_ok()
    );
    // An hour later the window is empty again.
    let later = t + 3600;
    assert_eq!(
        b.sending_usage(account, later - 3600 + 1)
            .await
            .expect("usage"),
        SendingUsage::default()
    );
    assert!(
        b.record_sending(account, 100, later, later - 3600 + 1, r)
            .await
            .expect("record")
            .is_ok()
    );
}

/// Runs every two-handle check (each handle on the same store).
pub async fn run_queue_shared(a: &dyn QueueStore, b: &dyn QueueStore) {
    queue_claims_are_exclusive(a, b).await;
    queue_lease_expiry_and_renew(a, b).await;
    queue_destination_limit(a, b).await;
    queue_fair_claims(a).await;
}
