//! `imap-users` and `imap-fill` through the store: many accounts with one password hash, and
//! their mailboxes filled across users, checked by reading the store back.

use std::io::Write;

use store::{Directory, MailStore};
use yubin_bench::{imap_fill, imap_users};

#[tokio::test]
async fn users_are_created_once_and_filled_across_users() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let users = imap_fill::users("idle{n}@bench.test", 30);
    let run = |users: Vec<String>| {
        imap_users::run(imap_users::UsersConfig {
            data_dir: data.clone(),
            users,
            password: "pw".into(),
            parallel: 8,
        })
    };
    let json = run(users.clone()).await.unwrap();
    assert!(json.contains("\"users\":30,\"created\":30"), "{json}");
    // A second run leaves the existing accounts alone.
    let json = run(users.clone()).await.unwrap();
    assert!(json.contains("\"users\":30,\"created\":0"), "{json}");

    let mbox = dir.path().join("m.mbox");
    let mut f = std::fs::File::create(&mbox).unwrap();
    for i in 0..3 {
        write!(
            f,
            "From x@y Thu Jan  1 00:00:00 2024\nSubject: m{i}\n\nbody {i}\n\n"
        )
        .unwrap();
    }
    drop(f);
    for (mailbox, n) in [("INBOX", 4), ("Archive", 2)] {
        imap_fill::run(imap_fill::FillConfig {
            target: imap_fill::Target::DataDir(data.clone()),
            users: users.clone(),
            messages: n,
            mbox: mbox.clone(),
            unique: false,
            mailbox: mailbox.into(),
            parallel: 16,
        })
        .await
        .unwrap();
    }

    let store = store_sqlite::open(&data).unwrap();
    let all = store.list_users().await.unwrap();
    assert_eq!(all.len(), 30);
    // One hash for all, and it verifies the password.
    assert!(all.iter().all(|u| u.password_hash == all[0].password_hash));
    assert!(auth::verify_password("pw", &all[0].password_hash));
    for u in &all {
        for (mailbox, n) in [("INBOX", 4), ("Archive", 2)] {
            let mb = store.find_mailbox(u.id, mailbox).await.unwrap().unwrap();
            assert_eq!(mb.messages, n, "{} {mailbox}", u.address);
        }
    }
}
