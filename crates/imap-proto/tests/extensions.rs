//! CATENATE (RFC 4469), URLAUTH (RFC 4467, RFC 5524) and NOTIFY (RFC 5465): the RFCs'
//! examples parse, malformed commands are refused with their tag, the same bytes give the same
//! commands however they are split, and the responses are written as the grammars say.

use imap_proto::*;

fn parse(s: &[u8]) -> CommandBody {
    match parse_command(s) {
        Ok(cmd) => cmd.body,
        Err(e) => panic!("{:?}: {e:?}", String::from_utf8_lossy(s)),
    }
}

fn bad(s: &[u8]) {
    match parse_command(s) {
        Err(ParseError::Syntax { tag, .. }) => assert_eq!(tag.as_str(), "t"),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
    }
}

/// RFC 4469 Appendix A, example 1 (the literals as the client sends them).
const CATENATE_EXAMPLE: &[u8] = b"A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE \
(URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {42}\r\n\
\r\n--------------030308070208000400050907\r\n \
URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME\" \
URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1\" TEXT {42}\r\n\
\r\n--------------030308070208000400050907\r\n \
URL \"/Drafts;UIDVALIDITY=385759045/;UID=30\" TEXT {44}\r\n\
\r\n--------------030308070208000400050907--\r\n)\r\n";

#[test]
fn rfc4469_example() {
    let CommandBody::Append { mailbox, messages } = parse(CATENATE_EXAMPLE) else {
        panic!()
    };
    assert_eq!(mailbox.as_str(), "Drafts");
    let [m] = &messages[..] else { panic!() };
    assert_eq!(m.flags.len(), 3);
    let AppendData::Catenate(parts) = &m.data else {
        panic!()
    };
    assert_eq!(parts.len(), 7);
    assert_eq!(
        parts[0],
        CatPart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".into())
    );
    assert_eq!(
        parts[1],
        CatPart::Text {
            data: b"\r\n--------------030308070208000400050907\r\n".to_vec(),
            binary: false
        }
    );
    let base = UrlBase {
        user: Some("bob".into()),
        host: Some("mx.test".into()),
        mailbox: None,
    };
    for p in parts {
        if let CatPart::Url(u) = p {
            let url = ImapUrl::parse_relative(u, Some(&base)).unwrap();
            assert_eq!(url.mailbox, "Drafts");
            assert_eq!(url.uid_validity, Some(385_759_045));
        }
    }
}

/// Frames `input` delivered in two pieces and parses the commands, as a session does.
fn frame_all(input: &[u8], cut: usize) -> Vec<Command> {
    let mut framer = CommandFramer::new(FrameLimits::default());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in [&input[..cut], &input[cut..]] {
        buf.extend_from_slice(piece);
        loop {
            match framer.decode(&buf).unwrap() {
                Decoded::Complete {
                    line_with_literals,
                    consumed,
                } => {
                    out.push(parse_command(line_with_literals).unwrap());
                    buf.drain(..consumed);
                }
                Decoded::NeedsContinuation { .. } => {}
                Decoded::Incomplete => break,
                Decoded::Discard { .. } => panic!("nothing is refused here"),
            }
        }
    }
    assert!(buf.is_empty());
    out
}

#[test]
fn split_at_every_byte() {
    let mut stream = CATENATE_EXAMPLE.to_vec();
    stream.extend_from_slice(
        b"m APPEND x CATENATE (TEXT ~{2+}\r\n\0a URL {10}\r\n/x/;uid=11) (\\Seen) {1}\r\nz\r\n\
g GENURLAUTH \"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred\" INTERNAL\r\n\
u URLFETCH (\"imap://a@b/INBOX/;uid=1;urlauth=anonymous:internal:0123456789abcdef0123456789abcdef\" BINARY) x\r\n\
n NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree {5}\r\nLists (MessageNew))\r\n",
    );
    let whole = frame_all(&stream, 0);
    assert_eq!(whole.len(), 5);
    for cut in 1..=stream.len() {
        assert_eq!(frame_all(&stream, cut), whole, "split at {cut}");
    }
    let CommandBody::Append { messages, .. } = &whole[1].body else {
        panic!()
    };
    assert_eq!(
        messages[0].data,
        AppendData::Catenate(vec![
            CatPart::Text {
                data: b"\0a".to_vec(),
                binary: true
            },
            CatPart::Url("/x/;uid=11".into()),
        ])
    );
    assert_eq!(messages[1].data.literal(), Some(&b"z"[..]));
}

#[test]
fn urlauth_commands() {
    // RFC 4467 §7 examples.
    assert_eq!(
        parse(b"a777 GENURLAUTH \"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred\" INTERNAL\r\n"),
        CommandBody::GenUrlAuth(vec![(
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred".into(),
            Atom::new("INTERNAL").unwrap()
        )])
    );
    assert_eq!(
        parse(b"a31 RESETKEY\r\n"),
        CommandBody::ResetKey {
            mailbox: None,
            mechanisms: vec![]
        }
    );
    assert_eq!(
        parse(b"a33 RESETKEY INBOX XSAMPLE\r\n"),
        CommandBody::ResetKey {
            mailbox: Some(Mailbox::new("INBOX")),
            mechanisms: vec![Atom::new("XSAMPLE").unwrap()]
        }
    );
    let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038";
    assert_eq!(
        parse(format!("a002 URLFETCH \"{url}\"\r\n").as_bytes()),
        CommandBody::UrlFetch(vec![UrlFetchArg {
            url: url.into(),
            params: None
        }])
    );
    // RFC 5524 §4.
    assert_eq!(
        parse(
            format!(
                "A001 URLFETCH (\"{url}\" BINARY BODYPARTSTRUCTURE) ({url}) (x body X-FOO)\r\n"
            )
            .as_bytes()
        ),
        CommandBody::UrlFetch(vec![
            UrlFetchArg {
                url: url.into(),
                params: Some(vec![
                    UrlFetchParam::Binary,
                    UrlFetchParam::BodyPartStructure
                ])
            },
            UrlFetchArg {
                url: url.into(),
                params: Some(vec![])
            },
            UrlFetchArg {
                url: "x".into(),
                params: Some(vec![
                    UrlFetchParam::Body,
                    UrlFetchParam::Other(Atom::new("X-FOO").unwrap())
                ])
            },
        ])
    );
    for b in [
        &b"t GENURLAUTH\r\n"[..],
        b"t GENURLAUTH \"imap://a@b/x/;uid=1;urlauth=anonymous\"\r\n",
        b"t GENURLAUTH imap://a@b/x/;uid=1;urlauth=anonymous INTER*NAL\r\n",
        b"t URLFETCH\r\n",
        b"t URLFETCH (x BINARY\r\n",
        b"t URLFETCH (x (BINARY))\r\n",
        b"t URLFETCH \"caf\xc3\xa9\"\r\n",
        b"t RESETKEY INBOX (INTERNAL)\r\n",
    ] {
        bad(b);
    }
}

#[test]
fn notify_commands() {
    // RFC 5465 §3.1's example leaves out the parentheses around the events, which the
    // grammar (§8: `events = ( "(" event *(SP event) ")" ) / "NONE"`) requires.
    bad(b"t notify set status (selected MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge) (subtree Lists MessageNew)\r\n");
    let CommandBody::Notify(Some(set)) = parse(
        b"b notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew))\r\n",
    ) else {
        panic!()
    };
    assert!(set.status);
    assert_eq!(set.groups.len(), 2);
    assert_eq!(set.groups[0].filter, NotifyFilter::Selected);
    let NotifyEvent::MessageNew(atts) = &set.groups[0].events[0] else {
        panic!()
    };
    assert_eq!(atts.len(), 2);
    assert_eq!(set.groups[0].events[1], NotifyEvent::MessageExpunge);
    assert_eq!(
        set.groups[1].filter,
        NotifyFilter::Subtree(vec![Mailbox::new("Lists")])
    );
    assert_eq!(set.groups[1].events, vec![NotifyEvent::MessageNew(vec![])]);
}

#[test]
fn notify_forms_and_errors() {
    assert_eq!(parse(b"a NOTIFY NONE\r\n"), CommandBody::Notify(None));
    let CommandBody::Notify(Some(set)) = parse(
        b"a notify set (mailboxes (INBOX \"a b\") (Messagenew messageExpunge)) (personal (SubscriptionChange MailboxName)) (selected-delayed NONE) (inboxes (FlagChange X-New))\r\n",
    ) else {
        panic!()
    };
    assert!(!set.status);
    assert_eq!(
        set.groups[0].filter,
        NotifyFilter::Mailboxes(vec![Mailbox::new("INBOX"), Mailbox::new("a b")])
    );
    assert_eq!(
        set.groups[1].events,
        vec![NotifyEvent::SubscriptionChange, NotifyEvent::MailboxName]
    );
    assert_eq!(set.groups[2].filter, NotifyFilter::SelectedDelayed);
    assert!(set.groups[2].events.is_empty());
    assert_eq!(
        set.groups[3].events[1],
        NotifyEvent::Other(Atom::new("X-New").unwrap())
    );
    assert_eq!(set.groups[3].events[1].name(), "X-New");
    for b in [
        &b"t NOTIFY\r\n"[..],
        b"t NOTIFY SET\r\n",
        b"t NOTIFY SET STATUS\r\n",
        b"t NOTIFY SET (selected)\r\n",
        b"t NOTIFY SET (selected ())\r\n",
        b"t NOTIFY SET (anything (MessageNew))\r\n",
        b"t NOTIFY SET (mailboxes (MessageNew))\r\n",
        b"t NOTIFY SET (mailboxes () (MessageNew))\r\n",
        b"t NOTIFY SET (personal (MessageNew (nope)))\r\n",
        b"t NOTIFY SET (personal MessageNew)\r\n",
        b"t NOTIFY SET (personal (MessageNew)\r\n",
        b"t NOTIFY SET (personal (MessageNew))(inboxes NONE)\r\n",
        b"t NOTIFY NONE (personal (MessageNew))\r\n",
    ] {
        bad(b);
    }
}

#[test]
fn response_codes() {
    let enc = |s: Status| {
        String::from_utf8(Response::Status(s).to_bytes(EncodeOptions::default())).unwrap()
    };
    assert_eq!(
        enc(
            Status::no(Tag::new("A003"), "CATENATE append has failed").with_code(Code::BadUrl(
                "/INBOX;UIDVALIDITY=785799047/;UID=113330;section=1.5.9".into()
            ))
        ),
        "A003 NO [BADURL /INBOX;UIDVALIDITY=785799047/;UID=113330;section=1.5.9] CATENATE append has failed\r\n"
    );
    // `url-resp-text` cannot hold "]".
    assert_eq!(
        enc(Status::no(None, "x").with_code(Code::BadUrl("a]b\r\n".into()))),
        "* NO [BADURL ab] x\r\n"
    );
    assert_eq!(
        enc(Status::ok(Tag::new("a32"), "mechs").with_code(Code::UrlMech(vec!["INTERNAL".into()]))),
        "a32 OK [URLMECH INTERNAL] mechs\r\n"
    );
    assert_eq!(
        enc(Status::ok(None, "...").with_code(Code::NotificationOverflow)),
        "* OK [NOTIFICATIONOVERFLOW] ...\r\n"
    );
    assert_eq!(
        enc(
            Status::no(Tag::new("n"), "x").with_code(Code::BadEvent(vec![
                "MessageNew".into(),
                "MessageExpunge".into()
            ]))
        ),
        "n NO [BADEVENT (MessageNew MessageExpunge)] x\r\n"
    );
}

#[test]
fn urlauth_responses() {
    let enc = |d: Data| {
        String::from_utf8_lossy(&Response::Data(d).to_bytes(EncodeOptions::default())).into_owned()
    };
    let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038";
    assert_eq!(
        enc(Data::GenUrlAuth(vec![url.into()])),
        format!("* GENURLAUTH {url}\r\n")
    );
    assert_eq!(
        enc(Data::UrlFetch(vec![UrlFetchData {
            url: url.into(),
            value: UrlFetchValue::Simple(Some(b"Si vis pacem, para bellum.\r\n".to_vec()))
        }])),
        format!("* URLFETCH {url} {{28}}\r\nSi vis pacem, para bellum.\r\n\r\n")
    );
    assert_eq!(
        enc(Data::UrlFetch(vec![
            UrlFetchData {
                url: "a b".into(),
                value: UrlFetchValue::Simple(None)
            },
            UrlFetchData {
                url: "c".into(),
                value: UrlFetchValue::Extended(None)
            }
        ])),
        "* URLFETCH \"a b\" NIL c NIL\r\n"
    );
    let png = BodyStructure::Single {
        fields: BodyFields {
            media_type: "IMAGE".into(),
            media_subtype: "PNG".into(),
            params: vec![],
            id: None,
            description: None,
            encoding: "BINARY".into(),
            octets: 3,
        },
        kind: SingleKind::Basic,
        extension: None,
    };
    assert_eq!(
        enc(Data::UrlFetch(vec![UrlFetchData {
            url: "u".into(),
            value: UrlFetchValue::Extended(Some(Box::new(UrlMetadata {
                body_part_structure: Some(png),
                binary: Some(Some(b"a\0b".to_vec())),
                body: None,
            })))
        }])),
        "* URLFETCH u (BODYPARTSTRUCTURE (\"IMAGE\" \"PNG\" NIL NIL NIL \"BINARY\" 3) BINARY ~{3}\r\na\0b)\r\n"
    );
    assert_eq!(
        enc(Data::UrlFetch(vec![UrlFetchData {
            url: "u".into(),
            value: UrlFetchValue::Extended(Some(Box::new(UrlMetadata {
                body_part_structure: None,
                binary: Some(None),
                body: Some(Some(b"x".to_vec())),
            })))
        }])),
        "* URLFETCH u (BINARY NIL BODY {1}\r\nx)\r\n"
    );
}

/// RFC 8514 §3–4 SAVEDATE: the FETCH attribute and the search keys parse (the RFC's example
/// `UID FETCH 1:* SAVEDATE` and `SEARCH SAVEDBEFORE ...`), a missing date is refused, and
/// the response item is written with a date-time or NIL.
#[test]
fn rfc8514_savedate() {
    let CommandBody::Fetch {
        attributes: FetchAttributes::List(a),
        ..
    } = parse(b"t UID FETCH 1:* (UID SAVEDATE)\r\n")
    else {
        panic!()
    };
    assert_eq!(a, [FetchAttribute::Uid, FetchAttribute::SaveDate]);
    let CommandBody::Search { criteria, .. } =
        parse(b"t SEARCH SAVEDBEFORE 1-Jan-2019 OR SAVEDON 2-Jan-2019 SAVEDSINCE 3-Jan-2019 SAVEDATESUPPORTED\r\n")
    else {
        panic!()
    };
    let d = |day| Date::new(2019, 1, day).unwrap();
    assert_eq!(
        criteria,
        SearchKey::And(vec![
            SearchKey::SavedBefore(d(1)),
            SearchKey::Or(
                Box::new(SearchKey::SavedOn(d(2))),
                Box::new(SearchKey::SavedSince(d(3)))
            ),
            SearchKey::SaveDateSupported,
        ])
    );
    bad(b"t SEARCH SAVEDSINCE\r\n");
    bad(b"t SEARCH SAVEDON yesterday\r\n");
    let date = DateTime::new(d(4), 10, 0, 0, 60).unwrap();
    let mut out = Vec::new();
    Response::Data(Data::Fetch {
        seq: 1,
        items: vec![FetchItem::SaveDate(Some(date)), FetchItem::Uid(9)],
    })
    .encode(&mut out, EncodeOptions::default());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* 1 FETCH (SAVEDATE \" 4-Jan-2019 10:00:00 +0100\" UID 9)\r\n"
    );
    let mut out = Vec::new();
    Response::Data(Data::Fetch {
        seq: 2,
        items: vec![FetchItem::SaveDate(None)],
    })
    .encode(&mut out, EncodeOptions::default());
    assert_eq!(out, b"* 2 FETCH (SAVEDATE NIL)\r\n");
}
