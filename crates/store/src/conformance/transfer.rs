//! `yubin migrate`: a copy keeps every identity a client or the queue relies on.

use super::{HASH, addr, dom, inbox, msg};
use crate::transfer::{TransferStore, copy_store};
use crate::{
    AttemptResult, ClaimLimits, DkimAlgorithm, DkimKey, DsnNotify, FlagOp, Flags, OutboundEnvelope,
    OutboundRecipient, RecipientStatus, StoreError, SystemFlags,
};

/// Fills `from`, copies it into the empty `to`, and compares what clients would see.
pub async fn transfer_round_trip(from: &dyn TransferStore, to: &dyn TransferStore) {
    // --- a small installation ---------------------------------------------------------------
    from.add_domain(&dom("move.test")).await.unwrap();
    let alice = from.add_user(&addr("alice@move.test"), HASH).await.unwrap();
    let bob = from.add_user(&addr("bob@move.test"), HASH).await.unwrap();
    from.set_scram(&addr("alice@move.test"), "SCRAM-SHA-256$4096:c2FsdA==$a:b")
        .await
        .unwrap();
    from.set_pop3_expire(&addr("bob@move.test"), Some(crate::Pop3Expire::Days(7)))
        .await
        .unwrap();
    from.add_alias(
        "team@move.test",
        &[addr("alice@move.test"), addr("bob@move.test")],
    )
    .await
    .unwrap();
    let ib = inbox(from, alice).await;
    for i in 0..5 {
        from.deliver(msg(&format!("m{i}")), 1_000 + i, &[alice, bob])
            .await
            .unwrap();
    }
    let seen = Flags {
        system: SystemFlags(SystemFlags::SEEN.0 | SystemFlags::FLAGGED.0),
        keywords: vec!["$Forwarded".into(), "Work".into()],
    };
    from.store_flags(ib, &[2, 4], FlagOp::Add, &seen)
        .await
        .unwrap();
    from.expunge(ib, &[3]).await.unwrap();
    from.expunge(ib, &[5]).await.unwrap();
    // The log keeps 5 only: a copy must not claim to know what went before.
    let keep_one = crate::ExpungeLogLimits {
        max_per_mailbox: 1,
        max_age_secs: 0,
    };
    from.prune_expunge_log(keep_one, 0).await.unwrap();
    assert_eq!(from.vanished_since(ib, 0).await.unwrap(), None);
    // Retrieved by POP3 long ago: a copy must not restart "leave a copy for N days".
    from.mark_retrieved(ib, &[1, 4], 1_234).await.unwrap();
    let archive = from.create_mailbox(alice, "Lists/rust").await.unwrap();
    from.copy_messages(ib, &[1, 2], archive.id).await.unwrap();
    from.set_subscribed(alice, "Lists/rust", true)
        .await
        .unwrap();
    let queued = from
        .enqueue(
            msg("outbound"),
            &OutboundEnvelope {
                sender: "alice@move.test".into(),
                recipients: vec![
                    OutboundRecipient {
                        address: "x@far.test".into(),
                        orcpt: None,
                        notify: DsnNotify::default(),
                    },
                    OutboundRecipient {
                        address: "y@far.test".into(),
                        orcpt: Some("rfc822;y@far.test".into()),
                        notify: DsnNotify::NEVER,
                    },
                ],
                envid: Some("E1".into()),
                ret: None,
                account: Some(alice),
                smtputf8: false,
            },
        )
        .await
        .unwrap();
    let q = from.queued_message(queued).await.unwrap().unwrap();
    // One attempt on the first recipient (claimed, as the delivery engine does).
    let claims = from
        .claim_due(
            "transfer-test",
            i64::MAX / 4,
            60,
            &ClaimLimits {
                leases: 10,
                per_batch: 10,
                per_destination: 10,
                single_destination: false,
            },
        )
        .await
        .unwrap();
    let lease = claims[0].lease.id;
    from.record_attempts(
        lease,
        &[AttemptResult {
            recipient: q.recipients[0].id,
            status: RecipientStatus::Pending,
            next_attempt: 4_000_000_000,
            error: Some("451 4.7.1 try later".into()),
            at: 1_700_000_000,
        }],
    )
    .await
    .unwrap();

    // DKIM keys: two of one second (the later one signs) and one of another domain.
    let dkim = |domain: &str, selector: &str, created_at| DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm: DkimAlgorithm::Ed25519,
        private_key_pem: format!(
            "-----BEGIN PRIVATE KEY-----\n{selector}\n-----END PRIVATE KEY-----\n"
        ),
        created_at,
    };
    for (domain, selector) in [("move.test", "b"), ("move.test", "a"), ("far.test", "f")] {
        from.add_dkim_key(&dkim(domain, selector, 1_600_000_000))
            .await
            .unwrap();
    }
    // A target holding a different key under a copied name is refused before anything is
    // written; one holding the same key is fine (that key is not copied twice).
    let mut other = dkim("far.test", "f", 1);
    other.private_key_pem.push('x');
    to.add_dkim_key(&other).await.unwrap();
    match copy_store(from, to, &mut |_, _| {}).await {
        Err(StoreError::Invalid(e)) => assert!(e.contains("far.test selector f"), "{e}"),
        other => panic!("a conflicting DKIM key must stop the copy, got {other:?}"),
    }
    assert!(to.is_empty().await.unwrap(), "nothing copied");
    to.remove_dkim_key("far.test", "f").await.unwrap();
    to.add_dkim_key(&dkim("far.test", "f", 1_600_000_000))
        .await
        .unwrap();

    // Bans: one in force is copied as it is; one that has ended is not.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let banned = crate::Ban {
        ip: "192.0.2.66".into(),
        until: now + 3600,
        created: now - 60,
        reason: "failures".into(),
    };
    from.add_ban(&banned).await.unwrap();
    from.add_ban(&crate::Ban {
        ip: "192.0.2.67".into(),
        until: now - 1,
        created: now - 3600,
        reason: "manual".into(),
    })
    .await
    .unwrap();

    // --- copy --------------------------------------------------------------------------------
    let report = copy_store(from, to, &mut |_, _| {}).await.unwrap();
    assert_eq!((report.accounts, report.queued), (2, 1));
    assert_eq!(report.bans, 1);
    assert_eq!(to.active_bans(now).await.unwrap(), vec![banned]);
    assert_eq!(report.dkim_keys, 2);
    assert_eq!(
        to.dkim_signing_key("move.test", None)
            .await
            .unwrap()
            .map(|k| k.selector),
        Some("a".to_string()),
        "the key that signed before signs after"
    );
    assert_eq!(report.messages, 5 + 3 + 2);

    // --- compare -----------------------------------------------------------------------------
    assert_same_contents(from, to).await;
    assert_eq!(
        to.pop3_expire_choices().await.unwrap(),
        vec![(addr("bob@move.test"), crate::Pop3Expire::Days(7))]
    );
    // The queue keeps its recipients' state.
    let copied = to.list_queue().await.unwrap();
    assert_eq!(copied.len(), 1);
    let (a, b) = (&q, &copied[0]);
    assert_eq!(
        (&a.sender, &a.envid, a.created),
        (&b.sender, &b.envid, b.created)
    );
    let state = |m: &crate::QueuedMessage| {
        m.recipients
            .iter()
            .map(|r| {
                (
                    r.address.clone(),
                    r.orcpt.clone(),
                    r.notify,
                    r.status,
                    r.next_attempt,
                )
            })
            .collect::<Vec<_>>()
    };
    let now = from.queued_message(queued).await.unwrap().unwrap();
    assert_eq!(state(&now), state(b));
    assert_eq!(b.recipients[0].attempts, now.recipients[0].attempts);
    assert_eq!(b.recipients[0].last_error, now.recipients[0].last_error);
    assert_eq!(
        to.queued_body(b.id).await.unwrap(),
        from.queued_body(queued).await.unwrap()
    );

    // New mailboxes never reuse an imported UIDVALIDITY; new mail continues the UIDs.
    let d = to
        .find_user(&addr("alice@move.test"))
        .await
        .unwrap()
        .unwrap();
    let fresh = to.create_mailbox(d.id, "After").await.unwrap();
    let max = to
        .list_mailboxes(d.id)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.id != fresh.id)
        .map(|m| m.uid_validity)
        .max()
        .unwrap();
    assert!(fresh.uid_validity > max);
    let st = to.deliver(msg("after"), 9, &[d.id]).await.unwrap();
    assert_eq!(st[0].uid, 6);

    // A second copy into a store that is no longer empty is refused.
    assert!(matches!(
        copy_store(from, to, &mut |_, _| {}).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Copies `from` (already filled, e.g. the target of [`transfer_round_trip`]) into the empty
/// `to` and compares everything clients and the queue see: a copy *from* a backend without
/// claiming queue work in it.
pub async fn transfer_copy_again(from: &dyn TransferStore, to: &dyn TransferStore) {
    let report = copy_store(from, to, &mut |_, _| {}).await.unwrap();
    assert!(report.accounts > 0 && report.messages > 0 && report.queued > 0);
    assert_same_contents(from, to).await;
    let (a, b) = (
        from.list_queue().await.unwrap(),
        to.list_queue().await.unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(
            (&a.sender, &a.envid, a.created, a.delay_notified, a.size),
            (&b.sender, &b.envid, b.created, b.delay_notified, b.size)
        );
        let state = |m: &crate::QueuedMessage| {
            m.recipients
                .iter()
                .map(|r| {
                    (
                        r.address.clone(),
                        r.orcpt.clone(),
                        r.notify,
                        r.status,
                        r.attempts,
                        r.next_attempt,
                        r.last_error.clone(),
                        r.last_attempt,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(state(a), state(b));
        assert_eq!(
            to.queued_body(b.id).await.unwrap(),
            from.queued_body(a.id).await.unwrap()
        );
    }
}

/// Directories, quotas, mailboxes (identities, counts, subscriptions), messages and expunge
/// logs of `from` and `to` are the same.
async fn assert_same_contents(from: &dyn TransferStore, to: &dyn TransferStore) {
    let (src, dst) = (
        from.export_directory().await.unwrap(),
        to.export_directory().await.unwrap(),
    );
    assert_eq!(dst.domains, src.domains);
    assert_eq!(
        to.dkim_keys(None).await.unwrap(),
        from.dkim_keys(None).await.unwrap()
    );
    assert_eq!(dst.aliases, src.aliases);
    assert_eq!(src.accounts.len(), dst.accounts.len());
    for (a, b) in src.accounts.iter().zip(&dst.accounts) {
        assert_eq!(
            (
                &a.address,
                &a.password_hash,
                &a.scram,
                a.quota_limit,
                a.created_at
            ),
            (
                &b.address,
                &b.password_hash,
                &b.scram,
                b.quota_limit,
                b.created_at
            )
        );
    }
    assert_eq!(src.subscriptions.len(), dst.subscriptions.len());
    for account in &src.accounts {
        let user = account.address.to_string();
        let s = from.find_user(&account.address).await.unwrap().unwrap();
        let d = to.find_user(&account.address).await.unwrap().unwrap();
        assert_eq!(
            from.quota(s.id).await.unwrap(),
            to.quota(d.id).await.unwrap()
        );
        let (sb, db) = (
            from.list_mailboxes(s.id).await.unwrap(),
            to.list_mailboxes(d.id).await.unwrap(),
        );
        assert_eq!(sb.len(), db.len(), "{user}");
        for (m, n) in sb.iter().zip(&db) {
            assert_eq!(
                (
                    &m.name,
                    m.uid_validity,
                    m.uid_next,
                    m.highest_modseq,
                    m.special_use,
                    m.subscribed
                ),
                (
                    &n.name,
                    n.uid_validity,
                    n.uid_next,
                    n.highest_modseq,
                    n.special_use,
                    n.subscribed
                ),
                "{user}"
            );
            assert_eq!(m.messages, n.messages);
            assert_eq!(
                from.list_messages(m.id).await.unwrap(),
                to.list_messages(n.id).await.unwrap()
            );
            assert_eq!(
                from.expunged_since(m.id, 0).await.unwrap(),
                to.expunged_since(n.id, 0).await.unwrap()
            );
            // And as far back as the log reaches (pruning, `ExpungeLogLimits`).
            for since in [0, m.highest_modseq.saturating_sub(2)] {
                assert_eq!(
                    from.vanished_since(m.id, since).await.unwrap(),
                    to.vanished_since(n.id, since).await.unwrap()
                );
            }
            // Save dates and first POP3 retrievals are kept (retention goes by them).
            let uids: Vec<_> = (1..m.uid_next).collect();
            assert_eq!(
                from.save_dates(m.id, &uids).await.unwrap(),
                to.save_dates(n.id, &uids).await.unwrap()
            );
            assert_eq!(
                from.retrieved_dates(m.id, &uids).await.unwrap(),
                to.retrieved_dates(n.id, &uids).await.unwrap()
            );
            for meta in to.list_messages(n.id).await.unwrap() {
                let bytes = to.read_blob(&meta.blob, meta.size).await.unwrap();
                assert_eq!(bytes.len() as u64, meta.size);
            }
        }
    }
}
