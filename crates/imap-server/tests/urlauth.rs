//! URLAUTH (RFC 4467): GENURLAUTH → URLFETCH, RESETKEY revoking, ;EXPIRE=, access
//! identifiers and other users; URLAUTH=BINARY's extended URLFETCH (RFC 5524).

mod common;

use common::{Client, Env, env};

const ONE: &str = "Subject: one\r\n\r\nbody one\r\n";
const B64: &str = "Subject: b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29y\r\nbGQ=\r\n--b--\r\n";

async fn bob(env: &Env) -> Client {
    env.add_user("bob@example.org", "pw", Some(ONE)).await;
    let mut c = env.connect().await;
    let r = c.cmd("l", "LOGIN bob@example.org pw").await;
    assert!(r[0].starts_with("l OK"), "{r:?}");
    c
}

/// GENURLAUTH of `rump`: the authorized URL, checked to be the rump with `:INTERNAL:` and a
/// 66-digit token.
async fn authorize(c: &mut Client, rump: &str) -> String {
    let r = c.cmd("g", &format!("GENURLAUTH \"{rump}\" INTERNAL")).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1], "g OK GENURLAUTH completed");
    let url = r[0].strip_prefix("* GENURLAUTH ").expect("GENURLAUTH data");
    let token = url
        .strip_prefix(&format!("{rump}:INTERNAL:"))
        .expect("rump kept byte for byte");
    assert!(token.len() == 66 && token.starts_with("01"), "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    url.to_string()
}

fn fetched(url: &str, data: &str) -> [String; 2] {
    [
        format!("* URLFETCH {url} {{{}}}\r\n{data}", data.len()),
        "f OK URLFETCH completed".into(),
    ]
}

fn nil(url: &str) -> [String; 2] {
    [
        format!("* URLFETCH {url} NIL"),
        "f OK URLFETCH completed".into(),
    ]
}

#[tokio::test]
async fn genurlauth_urlfetch_round_trip_and_resetkey() {
    let env = env().await;
    env.deliver(ONE).await;
    let mut c = env.login().await;
    // The user's full address, or its local part with the domain as host.
    let whole = authorize(
        &mut c,
        "imap://alice@example.org@mail.example.org/INBOX/;uid=1;urlauth=user+alice@example.org",
    )
    .await;
    let text = authorize(
        &mut c,
        "imap://alice@example.org/INBOX/;UID=1/;SECTION=TEXT;URLAUTH=anonymous",
    )
    .await;
    assert_eq!(
        c.cmd("f", &format!("URLFETCH {whole}")).await,
        fetched(&whole, ONE)
    );
    assert_eq!(
        c.cmd("f", &format!("URLFETCH \"{text}\"")).await,
        fetched(&text, "body one\r\n")
    );
    // Both in one command, with a tampered token between them.
    let flipped = if text.ends_with('0') { '1' } else { '0' };
    let bad = format!("{}{flipped}", &text[..text.len() - 1]);
    assert_eq!(
        c.cmd("f", &format!("URLFETCH {whole} {bad} {text}")).await,
        [
            format!(
                "* URLFETCH {whole} {{{}}}\r\n{ONE} {bad} NIL {text} {{10}}\r\nbody one\r\n",
                ONE.len()
            ),
            "f OK URLFETCH completed".into()
        ]
    );
    // RFC 4467 §7: RESETKEY revokes the URLs of the mailbox.
    assert_eq!(
        c.cmd("r", "RESETKEY INBOX").await,
        ["r OK [URLMECH INTERNAL] key reset"]
    );
    assert_eq!(c.cmd("f", &format!("URLFETCH {whole}")).await, nil(&whole));
    assert_eq!(c.cmd("f", &format!("URLFETCH {text}")).await, nil(&text));
    // A new GENURLAUTH makes a new key; RESETKEY without a mailbox removes every key.
    let again = authorize(
        &mut c,
        "imap://alice@example.org/INBOX/;uid=1;urlauth=user+alice@example.org",
    )
    .await;
    assert_ne!(again, whole);
    assert_eq!(
        c.cmd("f", &format!("URLFETCH {again}")).await,
        fetched(&again, ONE)
    );
    assert_eq!(c.cmd("r", "RESETKEY").await, ["r OK All keys removed"]);
    assert_eq!(c.cmd("f", &format!("URLFETCH {again}")).await, nil(&again));
    assert_eq!(
        c.cmd("r", "RESETKEY Nope").await,
        ["r NO [NONEXISTENT] no such mailbox"]
    );
}

#[tokio::test]
async fn expired_urls_are_refused() {
    let env = env().await;
    env.deliver(ONE).await;
    let mut c = env.login().await;
    let past = authorize(
        &mut c,
        "imap://alice@example.org/INBOX/;uid=1;expire=2001-02-03T04:05:06Z;urlauth=anonymous",
    )
    .await;
    assert_eq!(c.cmd("f", &format!("URLFETCH {past}")).await, nil(&past));
    let future = authorize(
        &mut c,
        "imap://alice@example.org/INBOX/;uid=1;expire=2999-02-03T04:05:06+02:00;urlauth=anonymous",
    )
    .await;
    assert_eq!(
        c.cmd("f", &format!("URLFETCH {future}")).await,
        fetched(&future, ONE)
    );
}

#[tokio::test]
async fn access_identifiers_and_other_users() {
    let env = env().await;
    env.deliver(ONE).await;
    let mut a = env.login().await;
    let mine = authorize(
        &mut a,
        "imap://alice@example.org/INBOX/;uid=1;urlauth=user+alice@example.org",
    )
    .await;
    let any = authorize(
        &mut a,
        "imap://alice@example.org/INBOX/;uid=1;urlauth=authuser",
    )
    .await;
    let submit = authorize(
        &mut a,
        "imap://alice@example.org/INBOX/;uid=1;urlauth=submit+alice@example.org",
    )
    .await;
    let mut b = bob(&env).await;
    // user+alice: only alice; authuser: any logged-in user; submit+: nobody here has the
    // submission role.
    assert_eq!(b.cmd("f", &format!("URLFETCH {mine}")).await, nil(&mine));
    assert_eq!(
        b.cmd("f", &format!("URLFETCH {any}")).await,
        fetched(&any, ONE)
    );
    assert_eq!(
        b.cmd("f", &format!("URLFETCH {submit}")).await,
        nil(&submit)
    );
    assert_eq!(
        a.cmd("f", &format!("URLFETCH {mine}")).await,
        fetched(&mine, ONE)
    );
    // Without URLAUTH a URL is the session's own only.
    assert_eq!(
        b.cmd("f", "URLFETCH imap://alice@example.org/INBOX/;uid=1")
            .await,
        nil("imap://alice@example.org/INBOX/;uid=1")
    );
    assert_eq!(
        b.cmd("f", "URLFETCH imap://bob@example.org/INBOX/;uid=1")
            .await,
        fetched("imap://bob@example.org/INBOX/;uid=1", ONE)
    );
    // Alice cannot authorize URLs of Bob's mailboxes, nor rumps that are not one.
    for (rump, why) in [
        (
            "imap://bob@example.org/INBOX/;uid=1;urlauth=anonymous",
            "URL names another user's mailbox",
        ),
        (
            "imap://example.org/INBOX/;uid=1;urlauth=anonymous",
            "missing owner username in supplied URL",
        ),
        (
            "imap://alice@example.org/INBOX/;uid=1",
            "missing access identifier in supplied URL",
        ),
        (
            "imap://alice@example.org/Nope/;uid=1;urlauth=anonymous",
            "no such mailbox",
        ),
        (mine.as_str(), "URL is already authorized"),
    ] {
        assert_eq!(
            a.cmd("g", &format!("GENURLAUTH \"{rump}\" INTERNAL")).await,
            [format!("g BAD {why}")]
        );
    }
    assert_eq!(
        a.cmd(
            "g",
            "GENURLAUTH \"imap://alice@example.org/INBOX/;uid=1;urlauth=anonymous\" XSAMPLE"
        )
        .await,
        ["g BAD unsupported URLAUTH mechanism"]
    );
}

#[tokio::test]
async fn urlfetch_binary_and_bodypartstructure() {
    let env = env().await;
    env.deliver(B64).await;
    let mut c = env.login().await;
    let part = authorize(
        &mut c,
        "imap://alice@example.org/INBOX/;uid=1/;section=1;urlauth=user+alice@example.org",
    )
    .await;
    assert_eq!(
        c.cmd("f", &format!("URLFETCH ({part} BINARY BODYPARTSTRUCTURE)"))
            .await,
        [
            format!(
                "* URLFETCH {part} (BODYPARTSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"BASE64\" 11 0 NIL NIL NIL NIL) BINARY {{11}}\r\nhello world)"
            ),
            "f OK URLFETCH completed".into()
        ]
    );
    assert_eq!(
        c.cmd("f", &format!("URLFETCH ({part} BODY) ({part})"))
            .await,
        [
            format!(
                "* URLFETCH {part} (BODY {{18}}\r\naGVsbG8gd29y\r\nbGQ=) {part} {{18}}\r\naGVsbG8gd29y\r\nbGQ="
            ),
            "f OK URLFETCH completed".into()
        ]
    );
    assert_eq!(
        c.cmd("f", &format!("URLFETCH ({part} BINARY BODY)")).await,
        ["f BAD BODY and BINARY cannot both be requested"]
    );
    assert_eq!(
        c.cmd("f", &format!("URLFETCH ({part} X-NEW)")).await,
        ["f BAD unknown URLFETCH parameter"]
    );
}

/// A few short URLs may name large messages (or one octet of them, read whole all the same):
/// what one URLFETCH reads is bounded by the command size limit.
#[tokio::test]
async fn reading_is_bounded() {
    let mut env = env().await;
    env.reconfigure(|c| c.max_command_size = 200);
    env.deliver(&format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(80)))
        .await;
    let mut c = env.login().await;
    let one = "imap://alice@example.org/INBOX/;uid=1/;partial=0.1";
    assert_eq!(
        c.cmd("f", &format!("URLFETCH {one} {one}")).await,
        [
            format!("* URLFETCH {one} {{1}}\r\nS {one} {{1}}\r\nS"),
            "f OK URLFETCH completed".into()
        ]
    );
    assert_eq!(
        c.cmd("f", &format!("URLFETCH {one} {one} {one}")).await,
        ["f NO [LIMIT] URLFETCH data too large; fetch fewer URLs at once"]
    );
    // The same bound for CATENATE, as TOOBIG.
    let part = "URL \"/INBOX/;uid=1/;partial=0.1\"";
    assert_eq!(
        c.cmd(
            "a",
            &format!("APPEND INBOX CATENATE ({part} {part} {part})")
        )
        .await,
        ["a NO [TOOBIG] CATENATE result is too large"]
    );
}
