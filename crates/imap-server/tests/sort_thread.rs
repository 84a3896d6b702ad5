//! SORT, THREAD, ESORT, CONTEXT=SEARCH/SORT and PARTIAL (RFC 5256, 5957, 5267, 9394) against a
//! real store-sqlite in a temporary directory.

mod common;

use common::{Client, Env, env, message, plain};

/// Internal date of the n-th test message: 2024-01-01 00:00 UTC plus n minutes.
fn at(n: i64) -> i64 {
    1_704_067_200 + n * 60
}

/// A body making the n-th message larger than every one before it (headers stay under
/// 300 octets).
fn pad(n: usize) -> String {
    format!("{}\r\n", "x".repeat(300 * n))
}

/// Six messages for the SORT keys (sequence numbers in comments).
async fn sort_mailbox(env: &Env) -> Client {
    let msgs = [
        // 1: a reply, sent early; From with a display name.
        (
            message(
                &[
                    ("From", "Zed Alpha <carol@example.org>"),
                    ("To", "bob@example.org"),
                    ("Cc", "dave@example.org"),
                    ("Subject", "Re: [list] Lunch (fwd)"),
                    ("Date", "Mon, 1 Jan 2024 10:00:00 +0000"),
                ],
                &pad(1),
            ),
            at(50),
        ),
        // 2: no Date: the INTERNALDATE (00:30) is the sent date. RFC 2047 subject.
        (
            message(
                &[
                    ("From", "alice@example.org"),
                    ("To", "Yves <erin@example.org>"),
                    ("Subject", "=?UTF-8?Q?Re=3A_apples?="),
                ],
                &pad(2),
            ),
            at(30),
        ),
        // 3: same sent date as 1 in another zone; subject sorts with 1's.
        (
            message(
                &[
                    ("From", "BOB@example.org"),
                    ("To", "alice@example.org"),
                    ("Subject", "lunch"),
                    ("Date", "Mon, 1 Jan 2024 12:00:00 +0200"),
                ],
                &pad(3),
            ),
            at(10),
        ),
        // 4: no subject, no addresses, latest date.
        (
            message(&[("Date", "Tue, 2 Jan 2024 00:00:00 +0000")], &pad(4)),
            at(40),
        ),
        // 5: a group in To, a forward wrapper subject.
        (
            message(
                &[
                    ("From", "\"Bob\" <zoe@example.org>"),
                    ("To", "team: frank@example.org;"),
                    ("Cc", "Alice <alice@example.org>"),
                    ("Subject", "[Fwd: Apples]"),
                    ("Date", "Mon, 1 Jan 2024 09:00:00 +0000"),
                ],
                &pad(5),
            ),
            at(20),
        ),
        // 6: unparsable Date: the INTERNALDATE (00:05) again.
        (
            message(
                &[
                    ("From", "carol@example.org"),
                    ("Subject", "Fw: bananas"),
                    ("Date", "yesterday, around noon"),
                ],
                &pad(6),
            ),
            at(5),
        ),
    ];
    for (m, date) in &msgs {
        env.deliver_at(m, *date).await;
    }
    let mut c = env.login().await;
    c.cmd("s", "SELECT INBOX").await;
    c
}

#[tokio::test]
async fn sort_keys_and_reverse() {
    let env = env().await;
    let mut c = sort_mailbox(&env).await;
    let cases = [
        // Sent dates: 1 10:00Z, 2 00:30Z (internal), 3 10:00Z, 4 next day, 5 09:00Z, 6 00:05Z.
        ("SORT (DATE) UTF-8 ALL", "* SORT 6 2 5 1 3 4"),
        ("SORT (REVERSE DATE) UTF-8 ALL", "* SORT 4 1 3 5 2 6"),
        ("SORT (ARRIVAL) UTF-8 ALL", "* SORT 6 3 5 2 4 1"),
        ("SORT (REVERSE ARRIVAL) US-ASCII ALL", "* SORT 1 4 2 5 3 6"),
        ("SORT (SIZE) UTF-8 ALL", "* SORT 1 2 3 4 5 6"),
        ("SORT (REVERSE SIZE) UTF-8 ALL", "* SORT 6 5 4 3 2 1"),
        // Base subjects: "" (4), APPLES (2, 5), BANANAS (6), LUNCH (1, 3); ties by number.
        ("SORT (SUBJECT) UTF-8 ALL", "* SORT 4 2 5 6 1 3"),
        ("SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 1 3 6 2 5 4"),
        (
            "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
            "* SORT 4 5 2 6 1 3",
        ),
        ("SORT (SUBJECT DATE) UTF-8 ALL", "* SORT 4 2 5 6 1 3"),
        (
            "SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL",
            "* SORT 4 2 5 6 1 3",
        ),
        // addr-mailbox, case-insensitive: "" (4), alice, BOB, carol (1, 6), zoe.
        ("SORT (FROM) UTF-8 ALL", "* SORT 4 2 3 1 6 5"),
        // To: "" (4, 6), alice (3), bob (1), erin (2), team (group name, 5).
        ("SORT (TO) UTF-8 ALL", "* SORT 4 6 3 1 2 5"),
        ("SORT (CC) UTF-8 ALL", "* SORT 2 3 4 6 5 1"),
        // DISPLAYFROM: "" (4), alice@.., Bob (a name), BOB@.. (no name), carol@.., Zed Alpha.
        ("SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 4 2 5 3 6 1"),
        ("SORT (DISPLAYTO) UTF-8 ALL", "* SORT 4 6 3 1 5 2"),
        ("SORT (REVERSE DISPLAYTO) UTF-8 ALL", "* SORT 2 5 1 3 4 6"),
        // The search criteria pick the messages first.
        ("SORT (DATE) UTF-8 SUBJECT lunch", "* SORT 1 3"),
        ("SORT (DATE) UTF-8 2:5 NOT FROM zoe", "* SORT 2 3 4"),
        ("SORT (DATE) UTF-8 SUBJECT nothing", "* SORT"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.one("a", cmd, "* SORT").await, want, "{cmd}");
    }
    // UID SORT answers with UIDs; expunge the first so they differ from sequence numbers.
    c.cmd("d", "STORE 6 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("e", "EXPUNGE").await;
    assert_eq!(
        c.one("u", "UID SORT (DATE) UTF-8 ALL", "* SORT").await,
        "* SORT 2 5 1 3 4"
    );
    assert_eq!(
        c.one("u", "UID SORT (DATE) UTF-8 UID 3:*", "* SORT").await,
        "* SORT 5 3 4"
    );
}

#[tokio::test]
async fn esort_partial_and_save() {
    let env = env().await;
    let mut c = sort_mailbox(&env).await;
    // RFC 5267 §3.1: MIN and MAX are the first and last in the sort order; ALL keeps it.
    assert_eq!(
        c.one(
            "e1",
            "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL",
            "* ESEARCH"
        )
        .await,
        "* ESEARCH (TAG \"e1\") MIN 6 MAX 4 ALL 6,2,5,1,3:4 COUNT 6"
    );
    assert_eq!(
        c.one("e2", "SORT RETURN () (REVERSE SIZE) UTF-8 ALL", "* ESEARCH")
            .await,
        "* ESEARCH (TAG \"e2\") ALL 6,5,4,3,2,1"
    );
    assert_eq!(
        c.one(
            "e3",
            "UID SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT zzz",
            "* ESEARCH"
        )
        .await,
        "* ESEARCH (TAG \"e3\") UID COUNT 0"
    );
    // RFC 9394: windows over the sorted result, from either end, and past its end.
    let partials = [
        (
            "SORT RETURN (PARTIAL 2:4) (DATE) UTF-8 ALL",
            "PARTIAL (2:4 2,5,1)",
        ),
        (
            "SORT RETURN (PARTIAL 4:2) (DATE) UTF-8 ALL",
            "PARTIAL (2:4 2,5,1)",
        ),
        (
            "SORT RETURN (PARTIAL -1:-2) (DATE) UTF-8 ALL",
            "PARTIAL (-1:-2 3:4)",
        ),
        (
            "SORT RETURN (PARTIAL -3:-1) (DATE) UTF-8 ALL",
            "PARTIAL (-1:-3 1,3:4)",
        ),
        (
            "SORT RETURN (PARTIAL 5:100) (DATE) UTF-8 ALL",
            "PARTIAL (5:100 3:4)",
        ),
        (
            "SORT RETURN (PARTIAL 7:9) (DATE) UTF-8 ALL",
            "PARTIAL (7:9 NIL)",
        ),
        (
            "SORT RETURN (PARTIAL -7:-9) (DATE) UTF-8 ALL",
            "PARTIAL (-7:-9 NIL)",
        ),
        (
            "SORT RETURN (PARTIAL -5:-9) (DATE) UTF-8 ALL",
            "PARTIAL (-5:-9 6,2)",
        ),
        ("SEARCH RETURN (PARTIAL 2:3) ALL", "PARTIAL (2:3 2:3)"),
        (
            "SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL",
            "PARTIAL (-1:-2 5:6) COUNT 6",
        ),
        ("SEARCH RETURN (PARTIAL 1:10) NOT ALL", "PARTIAL (1:10 NIL)"),
    ];
    for (i, (cmd, want)) in partials.iter().enumerate() {
        let tag = format!("p{i}");
        assert_eq!(
            c.one(&tag, cmd, "* ESEARCH").await,
            format!("* ESEARCH (TAG \"{tag}\") {want}"),
            "{cmd}"
        );
    }
    // SAVE with SORT saves the set; with PARTIAL only the window (RFC 9394 §3.1).
    c.cmd("v1", "SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT lunch")
        .await;
    let r = c.cmd("f1", "FETCH $ (UID)").await;
    assert_eq!(
        r,
        [
            "* 1 FETCH (UID 1)",
            "* 3 FETCH (UID 3)",
            "f1 OK FETCH completed"
        ]
    );
    c.cmd("v2", "SORT RETURN (SAVE PARTIAL -1:-1) (DATE) UTF-8 ALL")
        .await;
    let r = c.cmd("f2", "FETCH $ (UID)").await;
    assert_eq!(r, ["* 4 FETCH (UID 4)", "f2 OK FETCH completed"]);
}

#[tokio::test]
async fn malformed_and_refused() {
    let env = env().await;
    let mut c = sort_mailbox(&env).await;
    for cmd in [
        "SORT",
        "SORT (DATE)",
        "SORT (DATE) UTF-8",
        "SORT DATE UTF-8 ALL",
        "SORT () UTF-8 ALL",
        "SORT (BOGUS) UTF-8 ALL",
        "SORT (REVERSE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 1) (DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 1:*) (DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 0:1) (DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 1:2 ALL) (DATE) UTF-8 ALL",
        "THREAD REFERENCES",
        "THREAD BOGUS UTF-8 ALL",
        "THREAD REFERENCES UTF-8 (ALL",
        "UID THREAD",
        "SEARCH RETURN (PARTIAL -1:2) ALL",
        "CANCELUPDATE",
    ] {
        let r = c.cmd("b", cmd).await;
        assert_eq!(r.len(), 1, "{cmd}: {r:?}");
        assert!(r[0].starts_with("b BAD "), "{cmd}: {r:?}");
    }
    // RFC 5256 §3: an unknown charset is NO [BADCHARSET].
    let r = c.cmd("n", "SORT (DATE) KOI8-R ALL").await;
    assert_eq!(
        r,
        ["n NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset"]
    );
    let r = c.cmd("n", "THREAD REFERENCES X-UNKNOWN ALL").await;
    assert!(r[0].starts_with("n NO [BADCHARSET"), "{r:?}");
    assert_eq!(
        c.cmd("n", "CANCELUPDATE \"nosuch\"").await,
        ["n NO no updating search with tag \"nosuch\""]
    );
    // Only when a mailbox is selected.
    c.cmd("u", "UNSELECT").await;
    for cmd in [
        "SORT (DATE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "CANCELUPDATE \"x\"",
    ] {
        assert_eq!(
            c.cmd("w", cmd).await,
            ["w BAD command not valid in this state"],
            "{cmd}"
        );
    }
}

/// RFC 5256 §3's example structure: threads, dummies and subject merging over the wire.
#[tokio::test]
async fn thread_references_and_orderedsubject() {
    let env = env().await;
    let msgs = [
        // 1: the original.
        message(
            &[
                ("Message-ID", "<1@t>"),
                ("Subject", "plans"),
                ("Date", "Mon, 1 Jan 2024 10:00:00 +0000"),
            ],
            "",
        ),
        // 2: a reply to 1.
        message(
            &[
                ("Message-ID", "<2@t>"),
                ("References", "<1@t>"),
                ("Subject", "Re: plans"),
                ("Date", "Mon, 1 Jan 2024 11:00:00 +0000"),
            ],
            "",
        ),
        // 3: replies to a message not in the mailbox.
        message(
            &[
                ("Message-ID", "<3@t>"),
                ("In-Reply-To", "<missing@t>"),
                ("Subject", "Re: other"),
                ("Date", "Mon, 1 Jan 2024 09:00:00 +0000"),
            ],
            "",
        ),
        // 4: a reply to 2, whose References lost 1 (truncated).
        message(
            &[
                ("Message-ID", "<4@t>"),
                ("References", "<2@t>"),
                ("Subject", "Re: Re: plans"),
                ("Date", "Mon, 1 Jan 2024 12:00:00 +0000"),
            ],
            "",
        ),
        // 5: the same missing parent as 3: the two stay under a dummy.
        message(
            &[
                ("Message-ID", "<5@t>"),
                ("References", "<missing@t>"),
                ("Subject", "Re: other"),
                ("Date", "Mon, 1 Jan 2024 08:00:00 +0000"),
            ],
            "",
        ),
        // 6: no references, but a forward of "plans": merged under 1 by subject.
        message(
            &[
                ("Message-ID", "<6@t>"),
                ("Subject", "Fwd: plans"),
                ("Date", "Mon, 1 Jan 2024 10:30:00 +0000"),
            ],
            "",
        ),
        // 7: unrelated, no Message-ID, no Date (INTERNALDATE, the earliest).
        message(&[("Subject", "solo")], ""),
    ];
    for (i, m) in msgs.iter().enumerate() {
        env.deliver_at(m, if i == 6 { at(-10_000) } else { at(i as i64) })
            .await;
    }
    let mut c = env.login().await;
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        c.one("t1", "THREAD REFERENCES UTF-8 ALL", "* THREAD").await,
        "* THREAD (7)((5)(3))(1 (6)(2 4))"
    );
    assert_eq!(
        c.one("t2", "THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD")
            .await,
        "* THREAD (7)(5 3)(1 (6)(2)(4))"
    );
    // Only the searched messages are threaded; UIDs for UID THREAD.
    c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("e", "EXPUNGE").await;
    assert_eq!(
        c.one("t3", "UID THREAD REFERENCES UTF-8 ALL", "* THREAD")
            .await,
        // 1 is gone: 2 no longer hangs under it, and two replies of the same subject, 6 and
        // 2, get a dummy parent (RFC 5256 §3 step 5D).
        "* THREAD (7)((5)(3))((6)(2 4))"
    );
    assert_eq!(
        c.one("t4", "THREAD REFERENCES UTF-8 SUBJECT other", "* THREAD")
            .await,
        "* THREAD ((4)(2))"
    );
    assert_eq!(
        c.one("t5", "THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD")
            .await,
        "* THREAD"
    );
}

/// One message of the generated mailbox: thread `t`, position `j` in a binary reply tree
/// (the parent of `j` is `(j - 1) / 2`); `None` is the extra forward.
#[derive(Clone, Copy, PartialEq)]
struct Gen {
    t: usize,
    j: Option<usize>,
}

const THREADS: usize = 5;
const PER_THREAD: usize = 7;

/// Sent time in minutes: threads 1000 minutes apart, replies 10 minutes apart; the forward
/// of thread 3 comes after all of it.
fn sent(g: Gen) -> i64 {
    (g.t * 1000 + g.j.map_or(100, |j| j * 10)) as i64
}

fn generated(g: Gen, with_date: bool) -> String {
    let subject = match g.j {
        None => format!("Fwd: topic {}", g.t),
        Some(0) => format!("topic {}", g.t),
        Some(j) => match j % 3 {
            0 => format!("Re: topic {}", g.t),
            1 => format!("[list] Re: Topic {} (fwd)", g.t),
            _ => format!("Fwd: RE: topic {}", g.t),
        },
    };
    let mut headers = vec![("Subject".to_string(), subject)];
    if let Some(j) = g.j {
        headers.push(("Message-ID".into(), format!("<{}.{j}@gen>", g.t)));
        let mut chain = Vec::new();
        let mut p = j;
        while p > 0 {
            p = (p - 1) / 2;
            chain.push(format!("<{}.{p}@gen>", g.t));
        }
        chain.reverse();
        if !chain.is_empty() {
            headers.push(("References".into(), chain.join("\r\n ")));
        }
    }
    if with_date {
        let secs = at(sent(g)) - 1_704_067_200;
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        // Days past the first are written as hours past 24 would not parse; use the day.
        let (day, h) = (1 + h / 24, h % 24);
        headers.push((
            "Date".into(),
            format!("{day} Jan 2024 {h:02}:{m:02}:00 +0000"),
        ));
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    message(&pairs, "generated\r\n")
}

/// A mailbox of reply trees delivered out of order, a third of them without a Date (their
/// INTERNALDATE is the sent time then; the others arrive in a scrambled order), thread 0
/// without its first message, and a forward merged into thread 3 by its subject: SORT and
/// THREAD checked against orders derived from how it was built.
#[tokio::test]
async fn generated_mailbox() {
    let env = env().await;
    let mut all: Vec<Gen> = Vec::new();
    for t in 0..THREADS {
        for j in 0..PER_THREAD {
            if (t, j) != (0, 0) {
                all.push(Gen { t, j: Some(j) });
            }
        }
    }
    all.push(Gen { t: 3, j: None });
    // A fixed shuffle.
    let mut state = 12_345u64;
    for i in (1..all.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        all.swap(i, (state >> 33) as usize % (i + 1));
    }
    let mut internal = Vec::new();
    for (i, g) in all.iter().enumerate() {
        let with_date = i % 3 != 0;
        let date = if with_date {
            at(-(i as i64) * 7)
        } else {
            at(sent(*g))
        };
        internal.push(date);
        env.deliver_at(&generated(*g, with_date), date).await;
    }
    let seq = |g: Gen| all.iter().position(|x| *x == g).unwrap() + 1;
    let mut c = env.login().await;
    c.cmd("s", "SELECT INBOX").await;
    let list = |v: Vec<usize>| v.iter().map(|n| format!(" {n}")).collect::<String>();

    // SORT (DATE): sent time, ties by number.
    let mut by_date: Vec<usize> = (0..all.len()).collect();
    by_date.sort_by_key(|&i| (sent(all[i]), i));
    assert_eq!(
        c.one("d", "SORT (DATE) UTF-8 ALL", "* SORT").await,
        format!("* SORT{}", list(by_date.iter().map(|i| i + 1).collect()))
    );
    // SORT (REVERSE ARRIVAL): INTERNALDATE descending, ties by number ascending.
    let mut by_arrival: Vec<usize> = (0..all.len()).collect();
    by_arrival.sort_by_key(|&i| (-internal[i], i));
    assert_eq!(
        c.one("a", "SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT")
            .await,
        format!("* SORT{}", list(by_arrival.iter().map(|i| i + 1).collect()))
    );
    // SORT (SUBJECT): every message of thread t has base subject "topic t".
    let mut by_subject: Vec<usize> = (0..all.len()).collect();
    by_subject.sort_by_key(|&i| (all[i].t, i));
    assert_eq!(
        c.one("j", "SORT (SUBJECT) UTF-8 ALL", "* SORT").await,
        format!("* SORT{}", list(by_subject.iter().map(|i| i + 1).collect()))
    );

    // THREAD REFERENCES: the trees as built, children by sent time (= by position j).
    fn tree(t: usize, j: usize, seq: &dyn Fn(Gen) -> usize, extra: Option<usize>) -> String {
        let mut out = seq(Gen { t, j: Some(j) }).to_string();
        let mut kids: Vec<String> = [2 * j + 1, 2 * j + 2]
            .into_iter()
            .filter(|&k| k < PER_THREAD)
            .map(|k| tree(t, k, seq, None))
            .collect();
        kids.extend(extra.map(|n| n.to_string()));
        match kids.len() {
            0 => {}
            1 => out.push_str(&format!(" {}", kids[0])),
            _ => {
                out.push(' ');
                for k in kids {
                    out.push_str(&format!("({k})"));
                }
            }
        }
        out
    }
    let mut want = String::from("* THREAD ");
    // Thread 0 lost its first message: a dummy holds its two replies.
    want.push_str(&format!(
        "(({})({}))",
        tree(0, 1, &seq, None),
        tree(0, 2, &seq, None)
    ));
    for t in 1..THREADS {
        let extra = (t == 3).then(|| seq(Gen { t: 3, j: None }));
        want.push_str(&format!("({})", tree(t, 0, &seq, extra)));
    }
    assert_eq!(
        c.one("r", "THREAD REFERENCES UTF-8 ALL", "* THREAD").await,
        want
    );

    // THREAD ORDEREDSUBJECT: one thread per subject, the earliest message first.
    let mut want = String::from("* THREAD ");
    for t in 0..THREADS {
        let mut members: Vec<usize> = (0..all.len()).filter(|&i| all[i].t == t).collect();
        members.sort_by_key(|&i| (sent(all[i]), i));
        want.push_str(&format!("({} ", members[0] + 1));
        for m in &members[1..] {
            want.push_str(&format!("({})", m + 1));
        }
        want.push(')');
    }
    assert_eq!(
        c.one("o", "THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD")
            .await,
        want
    );
}

/// RFC 9394 §3.3: UID FETCH (PARTIAL range) fetches a window of the messages the set names —
/// with CHANGEDSINCE, of those changed since.
#[tokio::test]
async fn uid_fetch_partial() {
    let env = env().await;
    for s in ["a", "b", "c", "d", "e"] {
        env.deliver(&plain(s)).await;
    }
    let mut c = env.login().await;
    c.cmd("en", "ENABLE IMAP4rev2").await;
    c.cmd("s", "SELECT INBOX").await;
    c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("e", "EXPUNGE").await;
    // UIDs 2..5 at 1..4.
    assert_eq!(
        c.cmd("f1", "UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)").await,
        [
            "* 3 FETCH (UID 4 FLAGS ())",
            "* 4 FETCH (UID 5 FLAGS ())",
            "f1 OK UID FETCH completed"
        ]
    );
    assert_eq!(
        c.cmd("f2", "UID FETCH 3:* UID (PARTIAL 2:1)").await,
        [
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 4)",
            "f2 OK UID FETCH completed"
        ]
    );
    assert_eq!(
        c.cmd("f3", "UID FETCH 1:* UID (PARTIAL 9:10)").await,
        ["f3 OK UID FETCH completed"]
    );
    assert_eq!(
        c.cmd("f4", "FETCH 1:* UID (PARTIAL 1:2)").await,
        ["f4 BAD PARTIAL needs UID FETCH"]
    );
    // Change 2 and 3 (UIDs 3 and 4): the window is over the changed ones.
    let r = c.cmd("m", "FETCH 1:* (MODSEQ)").await;
    let modseq: u64 = r
        .iter()
        .filter_map(|l| l.rsplit_once("MODSEQ ("))
        .filter_map(|(_, m)| m.trim_end_matches("))").parse().ok())
        .max()
        .expect("a MODSEQ");
    c.cmd("t", "STORE 2:3 +FLAGS.SILENT (\\Seen)").await;
    let r = c
        .cmd(
            "f5",
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} PARTIAL -1:-1)"),
        )
        .await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r[0].starts_with("* 3 FETCH (UID 4 MODSEQ (") && r[0].ends_with(") FLAGS (\\Seen))"),
        "{r:?}"
    );
}

/// A large mailbox (`SORT_MESSAGES`, default 20,000): SORT and THREAD answer, and another
/// session's commands are answered meanwhile (the CPU work is off the async workers). Run
/// with `cargo test -p imap-server --test sort_thread -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: times SORT/THREAD over a large mailbox"]
async fn large_mailbox() {
    use store::MailStore;
    let n: usize = std::env::var("SORT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let env = env().await;
    let t = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = env.store.clone();
        let account = env.account;
        let parent = if i % 10 == 0 {
            None
        } else {
            Some(i - i % 10 + (i % 10 - 1))
        };
        let mut headers = vec![
            (
                "Subject".to_string(),
                format!(
                    "{}topic {}",
                    if parent.is_some() { "Re: " } else { "" },
                    i / 10
                ),
            ),
            ("Message-ID".to_string(), format!("<{i}@big>")),
            (
                "Date".to_string(),
                format!("{} Jan 2024 10:00:00 +0000", 1 + (i * 7919) % 28),
            ),
        ];
        if let Some(p) = parent {
            headers.push(("References".to_string(), format!("<{p}@big>")));
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let raw = message(&pairs, "x\r\n");
        tasks.spawn(async move {
            store
                .deliver(
                    std::sync::Arc::new(raw.into_bytes()),
                    at(i as i64),
                    &[account],
                )
                .await
                .unwrap();
        });
        if tasks.len() >= 256 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    eprintln!("delivered {n} in {:?}", t.elapsed());
    let mut a = env.login().await;
    let mut b = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    for cmd in [
        "SORT RETURN (COUNT) (ARRIVAL) UTF-8 ALL",
        "SORT RETURN (COUNT) (SUBJECT) UTF-8 ALL",
        "SORT RETURN (COUNT) (REVERSE DATE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
    ] {
        let t = std::time::Instant::now();
        a.send(&format!("x {cmd}\r\n")).await;
        // Meanwhile the other session is served.
        let mut worst = std::time::Duration::ZERO;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            b.cmd("n", "NOOP").await;
            worst = worst.max(t.elapsed());
        }
        let r = a.until("x").await;
        assert!(r.last().unwrap().starts_with("x OK"), "{r:?}");
        eprintln!(
            "{cmd}: {:?}; NOOP meanwhile at worst {worst:?}",
            t.elapsed()
        );
        assert!(
            worst < std::time::Duration::from_secs(1),
            "{cmd}: NOOP took {worst:?}"
        );
    }
}
