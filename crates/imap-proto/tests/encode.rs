//! Response encoding: the RFCs' example responses, byte for byte, and round trips.

use imap_proto::*;

fn enc(r: Response) -> String {
    String::from_utf8(r.to_bytes(EncodeOptions::default())).unwrap()
}

fn enc_utf8(r: Response) -> String {
    String::from_utf8(r.to_bytes(EncodeOptions { utf8: true })).unwrap()
}

fn tag(s: &str) -> Option<Tag> {
    Tag::new(s)
}

fn set(s: &str) -> SequenceSet {
    SequenceSet::parse(s).unwrap()
}

#[test]
fn status_responses() {
    assert_eq!(
        enc(Response::Status(Status::ok(tag("a001"), "LOGIN completed"))),
        "a001 OK LOGIN completed\r\n"
    );
    assert_eq!(
        enc(Response::Status(Status::ok(None, "Limited").with_code(
            Code::PermanentFlags {
                flags: vec![Flag::Deleted, Flag::Seen],
                keywords: true
            }
        ))),
        "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
    );
    assert_eq!(
        enc(Response::Status(
            Status::ok(tag("A003"), "APPEND completed").with_code(Code::AppendUid {
                uid_validity: 38505,
                uids: set("3955")
            })
        )),
        "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
    );
    assert_eq!(
        enc(Response::Status(Status::ok(tag("A004"), "Done").with_code(
            Code::CopyUid {
                uid_validity: 38505,
                source: set("304,319:320"),
                destination: set("3956:3958")
            }
        ))),
        "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
    );
    assert_eq!(
        enc(Response::Status(
            Status::no(tag("A1"), "too big").with_code(Code::TooBig)
        )),
        "A1 NO [TOOBIG] too big\r\n"
    );
    assert_eq!(
        enc(Response::Status(Status::bad(None, "line\r\nbreak"))),
        "* BAD line  break\r\n",
        "text can never end the line early"
    );
    assert_eq!(
        enc(Response::Status(Status::bye("Logging out"))),
        "* BYE Logging out\r\n"
    );
    assert_eq!(
        enc(Response::Status(
            Status::preauth("hi").with_code(Code::Capability(vec!["IMAP4rev2".into()]))
        )),
        "* PREAUTH [CAPABILITY IMAP4rev2] hi\r\n"
    );
    assert_eq!(
        enc(Response::Status(Status::no(tag("a"), "x").with_code(
            Code::BadCharset(vec!["UTF-8".into(), "a b".into()])
        ))),
        "a NO [BADCHARSET (UTF-8 \"a b\")] x\r\n"
    );
    assert_eq!(
        enc(Response::Status(
            Status::ok(tag("a"), "").with_code(Code::Modified(set("7,9")))
        )),
        "a OK [MODIFIED 7,9] done\r\n"
    );
    assert_eq!(
        enc(Response::Continue("Ready for literal data".into())),
        "+ Ready for literal data\r\n"
    );
    assert_eq!(enc(Response::Continue(String::new())), "+ \r\n");
}

#[test]
fn data_responses() {
    let d = |data| enc(Response::Data(data));
    assert_eq!(
        d(Data::Capability(vec![
            "IMAP4rev2".into(),
            "STARTTLS".into()
        ])),
        "* CAPABILITY IMAP4rev2 STARTTLS\r\n"
    );
    assert_eq!(
        d(Data::Enabled(vec!["CONDSTORE".into()])),
        "* ENABLED CONDSTORE\r\n"
    );
    assert_eq!(d(Data::Exists(172)), "* 172 EXISTS\r\n");
    assert_eq!(d(Data::Recent(1)), "* 1 RECENT\r\n");
    assert_eq!(d(Data::Expunge(44)), "* 44 EXPUNGE\r\n");
    assert_eq!(
        d(Data::Flags(vec![
            Flag::Answered,
            Flag::parse("$Junk").unwrap()
        ])),
        "* FLAGS (\\Answered $Junk)\r\n"
    );
    assert_eq!(
        d(Data::Vanished {
            earlier: true,
            uids: set("300:310,405,411")
        }),
        "* VANISHED (EARLIER) 300:310,405,411\r\n"
    );
    assert_eq!(
        d(Data::Search {
            ids: vec![2, 84, 882],
            modseq: None
        }),
        "* SEARCH 2 84 882\r\n"
    );
    assert_eq!(
        d(Data::Search {
            ids: vec![],
            modseq: Some(5)
        }),
        "* SEARCH\r\n"
    );
    assert_eq!(
        d(Data::Search {
            ids: vec![2],
            modseq: Some(917_162_500)
        }),
        "* SEARCH 2 (MODSEQ 917162500)\r\n"
    );
    assert_eq!(
        d(Data::ESearch {
            tag: tag("A282"),
            uid: false,
            items: vec![ESearchItem::Min(2), ESearchItem::Count(3)]
        }),
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
    );
    assert_eq!(
        d(Data::ESearch {
            tag: tag("a"),
            uid: true,
            items: vec![ESearchItem::All(set("1:3,5"))]
        }),
        "* ESEARCH (TAG \"a\") UID ALL 1:3,5\r\n"
    );
    assert_eq!(
        d(Data::Status {
            mailbox: "blurdybloop".into(),
            items: vec![StatusItem::Messages(231), StatusItem::UidNext(44292)]
        }),
        "* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292)\r\n"
    );
    assert_eq!(
        d(Data::Namespace {
            personal: vec![NamespaceDesc {
                prefix: String::new(),
                delimiter: Some('/')
            }],
            other: vec![],
            shared: vec![]
        }),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
    );
    assert_eq!(
        d(Data::Id(Some(vec![
            ("name".into(), Some("yubin".into())),
            ("os".into(), None)
        ]))),
        "* ID (\"name\" \"yubin\" \"os\" NIL)\r\n"
    );
    assert_eq!(d(Data::Id(None)), "* ID NIL\r\n");
    assert_eq!(
        d(Data::Quota {
            root: String::new(),
            resources: vec![(Atom::new("STORAGE").unwrap(), 10, 512)]
        }),
        "* QUOTA \"\" (STORAGE 10 512)\r\n"
    );
    assert_eq!(
        d(Data::QuotaRoot {
            mailbox: "INBOX".into(),
            roots: vec![String::new()]
        }),
        "* QUOTAROOT \"INBOX\" \"\"\r\n"
    );
}

#[test]
fn list_responses() {
    let item = ListItem {
        attributes: vec![MailboxAttribute::HasNoChildren, MailboxAttribute::Sent],
        delimiter: Some('/'),
        name: "Gesendete Objekte/\u{53f0}\u{5317}".into(),
        extended: vec![],
    };
    assert_eq!(
        enc(Response::Data(Data::List(item.clone()))),
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Gesendete Objekte/&U,BTFw-\"\r\n"
    );
    assert_eq!(
        enc_utf8(Response::Data(Data::List(item))),
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Gesendete Objekte/\u{53f0}\u{5317}\"\r\n"
    );
    let item = ListItem {
        attributes: vec![MailboxAttribute::NonExistent],
        delimiter: None,
        name: "Foo \"quoted\"".into(),
        extended: vec![ListExtended::ChildInfo(vec!["SUBSCRIBED".into()])],
    };
    assert_eq!(
        enc(Response::Data(Data::Lsub(item))),
        "* LSUB (\\NonExistent) NIL \"Foo \\\"quoted\\\"\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
    );
    let item = ListItem {
        attributes: vec![],
        delimiter: Some('\\'),
        name: "new".into(),
        extended: vec![ListExtended::OldName("old".into())],
    };
    assert_eq!(
        enc(Response::Data(Data::List(item))),
        "* LIST () \"\\\\\" \"new\" (\"OLDNAME\" (\"old\"))\r\n"
    );
}

#[test]
fn fetch_responses() {
    let date = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
    let section = match parse_command(b"a FETCH 1 BODY[HEADER.FIELDS (DATE FROM)]<0.100>\r\n")
        .unwrap()
        .body
    {
        CommandBody::Fetch {
            attributes: FetchAttributes::List(mut a),
            ..
        } => match a.remove(0) {
            FetchAttribute::BodySection { section, .. } => section,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let items = vec![
        FetchItem::Flags(vec![Flag::Seen, Flag::recent()]),
        FetchItem::InternalDate(date),
        FetchItem::Rfc822Size(4286),
        FetchItem::Uid(4827313),
        FetchItem::ModSeq(12121231000),
        FetchItem::BodySection {
            section,
            origin: Some(0),
            data: Some(b"Date: x\r\n\r\n".to_vec()),
        },
        FetchItem::Binary {
            part: Part(vec![1]),
            origin: None,
            data: Some(b"a\0b".to_vec()),
        },
        FetchItem::BinarySize {
            part: Part(vec![1, 2]),
            size: 77,
        },
        FetchItem::Rfc822Header(None),
    ];
    assert_eq!(
        enc(Response::Data(Data::Fetch { seq: 12, items })),
        "* 12 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" \
         RFC822.SIZE 4286 UID 4827313 MODSEQ (12121231000) \
         BODY[HEADER.FIELDS (DATE FROM)]<0> {11}\r\nDate: x\r\n\r\n \
         BINARY[1] ~{3}\r\na\0b BINARY.SIZE[1.2] 77 RFC822.HEADER NIL)\r\n"
    );
}

/// A small deterministic generator (xorshift64*), so the round trips cover many shapes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn sequence_set_round_trips() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5000 {
        let n = 1 + rng.next() % 6;
        let mut text = String::new();
        for i in 0..n {
            if i > 0 {
                text.push(',');
            }
            let num = |rng: &mut Rng| match rng.next() % 5 {
                0 => "*".to_owned(),
                1 => u32::MAX.to_string(),
                _ => (1 + rng.next() % 1000).to_string(),
            };
            text.push_str(&num(&mut rng));
            if rng.next().is_multiple_of(2) {
                text.push(':');
                text.push_str(&num(&mut rng));
            }
        }
        let parsed = SequenceSet::parse(&text).unwrap_or_else(|| panic!("{text}"));
        // Encoding is canonical (`5:5` is written `5`) and parses back to the same set.
        let wire = parsed.to_string();
        assert_eq!(SequenceSet::parse(&wire).as_ref(), Some(&parsed), "{text}");
        // Through a whole command and back through an encoded response code.
        let cmd = format!("t UID FETCH {text} UID\r\n");
        let CommandBody::Fetch { sequence_set, .. } = parse_command(cmd.as_bytes()).unwrap().body
        else {
            panic!()
        };
        assert_eq!(sequence_set, parsed);
        let code = enc(Response::Status(
            Status::ok(tag("t"), "x").with_code(Code::Modified(parsed.clone())),
        ));
        assert_eq!(code, format!("t OK [MODIFIED {wire}] x\r\n"));
        // Resolution agrees with membership.
        let max = (rng.next() % 1200) as u32;
        for v in parsed.iter(max).take(2000) {
            assert!(v >= 1 && v <= max && parsed.contains(v, max));
        }
    }
    // from_ids compresses and parses back to the same numbers.
    let ids = [1, 2, 3, 7, 9, 10, 4_000_000_000];
    let s = SequenceSet::from_ids(ids).unwrap();
    assert_eq!(
        SequenceSet::parse(&s.to_string())
            .unwrap()
            .iter(u32::MAX)
            .collect::<Vec<_>>(),
        ids
    );
}

#[test]
fn mutf7_round_trips() {
    // RFC 3501 §5.1.3.
    assert_eq!(
        decode_mutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
        "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"
    );
    let mut rng = Rng(42);
    let alphabet: Vec<char> = "aZ09 &-~/.\u{e9}\u{fc}\u{53f0}\u{1f600}\u{7f}\u{1}"
        .chars()
        .collect();
    for _ in 0..5000 {
        let len = rng.next() % 12;
        let s: String = (0..len)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect();
        let wire = encode_mutf7(&s);
        assert!(wire.bytes().all(|b| (0x20..0x7f).contains(&b)), "{wire:?}");
        assert_eq!(decode_mutf7(&wire).as_deref(), Ok(s.as_str()));
    }
}
