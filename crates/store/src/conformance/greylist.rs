//! Greylisting state (`Greylist`): through two handles (two processes on one data directory,
//! two nodes on one PostgreSQL) a triple waits, passes after the delay, stays passed, is
//! forgotten when stale, and parallel attempts never lose the pass.

use crate::{Greylist, GreylistPolicy, GreylistTriple};

const POLICY: GreylistPolicy = GreylistPolicy {
    delay: 60,
    retry_window: 3600,
    pass_ttl: 86400,
};

fn triple(n: u32) -> GreylistTriple {
    GreylistTriple {
        network: format!("192.0.2.{n}/24"),
        sender: format!("s{n}@sender.test"),
        recipient: "r@greylist.test".to_string(),
    }
}

pub async fn greylist_triples(a: &dyn Greylist, b: &dyn Greylist) {
    let t = 2_000_000;
    let one = triple(1);
    let first = a.greylist_attempt(&one, t, POLICY).await.expect("attempt");
    assert_eq!(
        (first.first_seen, first.last_seen, first.passed),
        (t, t, None)
    );
    // Too early, through the other handle: still waiting, first attempt kept.
    let early = b
        .greylist_attempt(&one, t + 59, POLICY)
        .await
        .expect("attempt");
    assert_eq!((early.first_seen, early.passed), (t, None));
    // Another triple (other sender) is independent.
    let other = b
        .greylist_attempt(&triple(2), t + 60, POLICY)
        .await
        .expect("attempt");
    assert_eq!((other.first_seen, other.passed), (t + 60, None));
    // After the delay: passed, and seen so by the other handle at once.
    let passed = b
        .greylist_attempt(&one, t + 60, POLICY)
        .await
        .expect("attempt");
    assert_eq!(passed.passed, Some(t + 60));
    let again = a
        .greylist_attempt(&one, t + 61, POLICY)
        .await
        .expect("attempt");
    assert_eq!((again.passed, again.last_seen), (Some(t + 60), t + 61));
    // Parallel first attempts of a new triple: one row, one first_seen.
    let three = triple(3);
    let (x, y) = tokio::join!(
        a.greylist_attempt(&three, t, POLICY),
        b.greylist_attempt(&three, t, POLICY)
    );
    assert_eq!(x.expect("attempt").first_seen, t);
    assert_eq!(y.expect("attempt").first_seen, t);
    // Parallel retries after the delay both pass.
    let (x, y) = tokio::join!(
        a.greylist_attempt(&three, t + 100, POLICY),
        b.greylist_attempt(&three, t + 100, POLICY)
    );
    assert_eq!(x.expect("attempt").passed, Some(t + 100));
    assert_eq!(y.expect("attempt").passed, Some(t + 100));
    // Purge at t + 3661: triple 2 (waiting since t + 60) is not stale yet; nothing else is.
    assert_eq!(a.greylist_purge(t + 3660, POLICY).await.expect("purge"), 0);
    assert_eq!(
        b.greylist_purge(t + 3661, POLICY).await.expect("purge"),
        1,
        "the triple that never retried"
    );
    // Gone: it starts again.
    let restart = a
        .greylist_attempt(&triple(2), t + 3662, POLICY)
        .await
        .expect("attempt");
    assert_eq!((restart.first_seen, restart.passed), (t + 3662, None));
    // A passed triple not seen for longer than pass_ttl is forgotten at its next attempt too.
    let late = t + 61 + 86401;
    let forgotten = b
        .greylist_attempt(&one, late, POLICY)
        .await
        .expect("attempt");
    assert_eq!((forgotten.first_seen, forgotten.passed), (late, None));
    // Clean up for other checks sharing the store.
    a.greylist_purge(i64::MAX / 2, POLICY).await.expect("purge");
}
