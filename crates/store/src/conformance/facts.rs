//! Conformance checks for the message facts cache: bodies and sizes by UID, facts kept per
//! blob (shared by copies), versions, and entries that go with their blob.

use super::{inbox, msg, setup};
use crate::{BlobId, MessageFacts, Store};

fn facts(version: u32, tag: &str) -> MessageFacts {
    MessageFacts {
        version,
        header: b"Subject: test\r\n\r\n".to_vec(),
        envelope: format!("(NIL \"{tag}\")").into_bytes(),
        envelope_utf8: Some("(NIL \"t\u{e9}\")".as_bytes().to_vec()),
        body: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 6 1)".to_vec(),
        body_utf8: None,
        bodystructure: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 6 1 NIL NIL NIL NIL)".to_vec(),
        bodystructure_utf8: None,
    }
}

/// `message_bodies` gives each message's blob and size in UID order; facts put for a blob are
/// returned for every message with that blob, only for the version asked for; a newer put
/// replaces an older one; a put for a blob that does not exist is accepted and ignored.
pub async fn message_facts_cache(s: &dyn Store) {
    let ids = setup(s, "facts.conformance.test", &["f1"]).await;
    let inbox = inbox(s, ids[0]).await;
    let one = msg("facts conformance one");
    s.deliver(one.clone(), 1, &[ids[0]]).await.unwrap();
    s.deliver(msg("facts conformance two"), 1, &[ids[0]])
        .await
        .unwrap();
    s.deliver(one.clone(), 1, &[ids[0]]).await.unwrap();

    let bodies = s.message_bodies(inbox, &[3, 9, 1, 2], 1).await.unwrap();
    let uids: Vec<_> = bodies.iter().map(|b| b.uid).collect();
    assert_eq!(uids, [1, 2, 3], "UID order, missing UIDs skipped");
    assert!(
        bodies.iter().all(|b| b.facts.is_none()),
        "nothing cached yet"
    );
    assert_eq!(bodies[0].blob, bodies[2].blob, "the same bytes, one blob");
    assert_eq!(bodies[0].size, one.len() as u64);
    let meta = s.get_messages(inbox, &[2]).await.unwrap();
    assert_eq!(bodies[1].blob, meta[0].blob);

    let blob = bodies[0].blob.clone();
    s.put_message_facts(vec![
        (blob.clone(), facts(1, "v1")),
        (BlobId("0".repeat(64)), facts(1, "none")),
    ])
    .await
    .unwrap();
    let bodies = s.message_bodies(inbox, &[1, 2, 3], 1).await.unwrap();
    assert_eq!(bodies[0].facts.as_deref(), Some(&facts(1, "v1")));
    assert_eq!(bodies[1].facts, None, "another blob");
    assert_eq!(
        bodies[2].facts.as_deref(),
        Some(&facts(1, "v1")),
        "shared by the copy"
    );
    assert_eq!(
        s.message_bodies(inbox, &[1], 2).await.unwrap()[0].facts,
        None,
        "another version is a miss"
    );
    s.put_message_facts(vec![(blob.clone(), facts(2, "v2"))])
        .await
        .unwrap();
    let hit = s.message_bodies(inbox, &[1], 2).await.unwrap();
    assert_eq!(
        hit[0].facts.as_deref(),
        Some(&facts(2, "v2")),
        "replaced by the newer"
    );

    // Facts are a function of the bytes: once no message uses the blob, a new delivery of the
    // same bytes may find them again (or not), never others.
    s.expunge(inbox, &[1, 3]).await.unwrap();
    s.deliver(one, 1, &[ids[0]]).await.unwrap();
    let again = s.message_bodies(inbox, &[4], 2).await.unwrap();
    assert_eq!(again[0].blob, blob);
    assert!(
        again[0]
            .facts
            .as_deref()
            .is_none_or(|f| *f == facts(2, "v2")),
        "only the facts of these bytes"
    );
}
