//! SORT, THREAD, ESORT, CONTEXT and PARTIAL (RFC 5256, 5957, 5267, 9394): the RFCs' command
//! examples parse to the expected values, malformed commands are syntax errors carrying the
//! tag, the result is the same however the bytes arrive, and the responses encode as the
//! RFCs print them.

use imap_proto::*;

fn parse(s: &str) -> CommandBody {
    let line = format!("{s}\r\n");
    match parse_command(line.as_bytes()) {
        Ok(cmd) => cmd.body,
        Err(e) => panic!("{s:?}: {e:?}"),
    }
}

fn crit(reverse: bool, key: SortKey) -> SortCriterion {
    SortCriterion { reverse, key }
}

fn partial(low: u32, high: u32, from_end: bool) -> PartialRange {
    PartialRange {
        low,
        high,
        from_end,
    }
}

#[test]
fn rfc_5256_sort_examples() {
    // RFC 5256 §3: "SORT (DATE) UTF-8 SUBJECT {...}" and "SORT (SUBJECT REVERSE DATE)".
    let CommandBody::Sort {
        uid,
        return_opts,
        criteria,
        charset,
        search,
    } = parse("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994")
    else {
        panic!()
    };
    assert!(!uid);
    assert_eq!(return_opts, None);
    assert_eq!(criteria, [crit(false, SortKey::Subject)]);
    assert_eq!(charset, "UTF-8");
    assert_eq!(search, SearchKey::Since(Date::new(1994, 2, 1).unwrap()));
    let CommandBody::Sort {
        criteria, search, ..
    } = parse("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL")
    else {
        panic!()
    };
    assert_eq!(
        criteria,
        [crit(false, SortKey::Subject), crit(true, SortKey::Date)]
    );
    assert_eq!(search, SearchKey::All);
    let CommandBody::Sort { search, .. } =
        parse("A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"")
    else {
        panic!()
    };
    assert_eq!(search, SearchKey::Text(b"not in mailbox".to_vec()));
    // Every key, SORT=DISPLAY's too (RFC 5957), in any case, and the UID form.
    let CommandBody::Sort { uid, criteria, .. } = parse(
        "a uid sort (arrival cc date from size subject to displayfrom reverse displayto) utf-8 1:*",
    ) else {
        panic!()
    };
    assert!(uid);
    assert_eq!(criteria.len(), 9);
    assert_eq!(criteria[8], crit(true, SortKey::DisplayTo));
    // A literal charset is not allowed (`charset = atom / quoted`), a quoted one is.
    let CommandBody::Sort { charset, .. } = parse("a SORT (DATE) \"UTF-8\" ALL") else {
        panic!()
    };
    assert_eq!(charset, "UTF-8");
}

#[test]
fn rfc_5256_thread_examples() {
    let CommandBody::Thread {
        uid,
        algorithm,
        charset,
        search,
    } = parse("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000")
    else {
        panic!()
    };
    assert!(!uid);
    assert_eq!(algorithm, ThreadAlgorithm::OrderedSubject);
    assert_eq!(charset, "UTF-8");
    assert_eq!(search, SearchKey::Since(Date::new(2000, 3, 5).unwrap()));
    let CommandBody::Thread { uid, algorithm, .. } =
        parse("A284 UID THREAD REFERENCES US-ASCII TEXT \"gewp\"")
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(algorithm, ThreadAlgorithm::References);
}

#[test]
fn rfc_5267_and_9394_examples() {
    // RFC 5267 §3.3.
    let CommandBody::Sort {
        uid,
        return_opts,
        criteria,
        search,
        ..
    } = parse("E01 UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk")
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(return_opts, Some(vec![]));
    assert_eq!(criteria, [crit(true, SortKey::Date)]);
    assert!(matches!(search, SearchKey::And(ref k) if k.len() == 2));
    // RFC 5267 §4.2, §4.3, §4.4.
    let CommandBody::Search { return_opts, .. } =
        parse("A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk")
    else {
        panic!()
    };
    assert_eq!(
        return_opts,
        Some(vec![SearchReturnOption::Context, SearchReturnOption::Count])
    );
    let CommandBody::Search { return_opts, .. } =
        parse("B01 UID SEARCH RETURN (UPDATE) DELETED KEYWORD $Junk")
    else {
        panic!()
    };
    assert_eq!(return_opts, Some(vec![SearchReturnOption::Update]));
    let CommandBody::Sort { return_opts, .. } =
        parse("B02 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk")
    else {
        panic!()
    };
    assert_eq!(
        return_opts,
        Some(vec![SearchReturnOption::Update, SearchReturnOption::Count])
    );
    let CommandBody::Search { return_opts, .. } =
        parse("A02 UID SEARCH RETURN (PARTIAL 23500:24000) UNDELETED UNKEYWORD $Junk")
    else {
        panic!()
    };
    assert_eq!(
        return_opts,
        Some(vec![SearchReturnOption::Partial(partial(
            23500, 24000, false
        ))])
    );
    assert_eq!(
        parse("C04 CANCELUPDATE \"B01\" \"B02\""),
        CommandBody::CancelUpdate(vec!["B01".into(), "B02".into()])
    );
    // RFC 9394 §3.1: from the end, and reversed ends mean the same range.
    let CommandBody::Search { return_opts, .. } =
        parse("E01 UID SEARCH RETURN (PARTIAL -1:-100) UNDELETED UNKEYWORD $Junk")
    else {
        panic!()
    };
    assert_eq!(
        return_opts,
        Some(vec![SearchReturnOption::Partial(partial(1, 100, true))])
    );
    let CommandBody::Sort { return_opts, .. } =
        parse("a SORT RETURN (PARTIAL 4:2 COUNT SAVE) (ARRIVAL) US-ASCII ALL")
    else {
        panic!()
    };
    assert_eq!(
        return_opts,
        Some(vec![
            SearchReturnOption::Partial(partial(2, 4, false)),
            SearchReturnOption::Count,
            SearchReturnOption::Save
        ])
    );
}

#[test]
fn rfc_9394_fetch_modifier() {
    // RFC 9394 §3.3.
    let CommandBody::Fetch {
        uid,
        modifiers,
        partial: window,
        ..
    } = parse("10 UID FETCH 25900:26600 (UID FLAGS) (PARTIAL -1:-3)")
    else {
        panic!()
    };
    assert!(uid);
    assert!(modifiers.is_empty());
    assert_eq!(window, Some(partial(1, 3, true)));
    let CommandBody::Fetch {
        modifiers,
        partial: window,
        ..
    } = parse("a UID FETCH 1:* FLAGS (CHANGEDSINCE 5 PARTIAL 1:10)")
    else {
        panic!()
    };
    assert_eq!(modifiers, [FetchModifier::ChangedSince(5)]);
    assert_eq!(window, Some(partial(1, 10, false)));
    for bad in [
        "a UID FETCH 1:* FLAGS (PARTIAL)",
        "a UID FETCH 1:* FLAGS (PARTIAL 1:*)",
        "a UID FETCH 1:* FLAGS (PARTIAL 1:5 PARTIAL 1:2)",
        "a UID FETCH 1:* FLAGS (PARTIAL -1:3)",
    ] {
        let line = format!("{bad}\r\n");
        assert!(
            matches!(
                parse_command(line.as_bytes()),
                Err(ParseError::Syntax { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn partial_range_indexes() {
    let r = partial(2, 4, false);
    assert_eq!(r.indexes(5), 1..4);
    assert_eq!(r.indexes(3), 1..3);
    assert_eq!(r.indexes(1), 1..1, "starts past the end: nothing");
    assert_eq!(partial(6, 6, false).indexes(5), 5..5);
    // -1 is the last result: -1:-2 of five is the fourth and fifth.
    assert_eq!(partial(1, 2, true).indexes(5), 3..5);
    assert_eq!(partial(1, 100, true).indexes(5), 0..5);
    assert_eq!(partial(6, 9, true).indexes(5), 0..0);
    assert_eq!(partial(5, 9, true).indexes(5), 0..1);
    assert_eq!(
        partial(u32::MAX, u32::MAX, true).indexes(usize::MAX),
        (usize::MAX - u32::MAX as usize)..(usize::MAX - u32::MAX as usize + 1)
    );
    assert_eq!(partial(1, 100, true).to_string(), "-1:-100");
    assert_eq!(partial(2, 4, false).to_string(), "2:4");
}

#[test]
fn malformed_commands_are_bad() {
    for input in [
        "a SORT",
        "a SORT ALL",
        "a SORT () UTF-8 ALL",
        "a SORT (DATE) UTF-8",
        "a SORT (DATE) UTF-8 ",
        "a SORT (DATE)UTF-8 ALL",
        "a SORT (DATE) ALL",
        "a SORT (DATE ) UTF-8 ALL",
        "a SORT ( DATE) UTF-8 ALL",
        "a SORT (REVERSE) UTF-8 ALL",
        "a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        "a SORT (FLAGS) UTF-8 ALL",
        "a SORT (DATE) UTF-8 BOGUS",
        "a SORT (DATE) UTF-8 (ALL",
        "a SORT (DATE) {5}\r\nUTF-8 ALL",
        "a SORT RETURN (DATE) UTF-8 ALL",
        "a SORT RETURN (BOGUS) (DATE) UTF-8 ALL",
        "a SORT RETURN (ALL) UTF-8 ALL",
        "a UID SORT (DATE) UTF-8 ALL extra)",
        "a THREAD",
        "a THREAD REFERENCES",
        "a THREAD REFERENCES UTF-8",
        "a THREAD BOGUS UTF-8 ALL",
        "a THREAD (REFERENCES) UTF-8 ALL",
        "a UID THREAD REFERENCES UTF-8 NOT",
        "a CANCELUPDATE",
        "a CANCELUPDATE ",
        "a CANCELUPDATE \"x",
        // RFC 9394 §4: both ends, same sign, no "*", no 0, 32-bit.
        "a SEARCH RETURN (PARTIAL 1) ALL",
        "a SEARCH RETURN (PARTIAL 1:*) ALL",
        "a SEARCH RETURN (PARTIAL *:1) ALL",
        "a SEARCH RETURN (PARTIAL 0:5) ALL",
        "a SEARCH RETURN (PARTIAL -1:5) ALL",
        "a SEARCH RETURN (PARTIAL 1:-5) ALL",
        "a SEARCH RETURN (PARTIAL 1:4294967296) ALL",
        "a SEARCH RETURN (PARTIAL \"1:5\") ALL",
        "a SEARCH RETURN (PARTIAL) ALL",
        // RFC 5267 §4.4 / RFC 9394 §3.1: one PARTIAL or one ALL.
        "a SEARCH RETURN (PARTIAL 1:5 ALL) ALL",
        "a SEARCH RETURN (ALL PARTIAL 1:5) ALL",
        "a SEARCH RETURN (PARTIAL 1:5 PARTIAL 6:9) ALL",
        "a SEARCH RETURN (ALL ALL) ALL",
        "a SEARCH RETURN (UPDATE UPDATE) ALL",
        "a SORT RETURN (PARTIAL 1:*) (ARRIVAL) US-ASCII ALL",
    ] {
        let line = format!("{input}\r\n");
        match parse_command(line.as_bytes()) {
            Err(ParseError::Syntax { tag, .. }) => assert_eq!(tag.as_str(), "a", "{input}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

/// Runs `input` through the framer in chunks ending at `cuts`, answering continuation
/// requests as a session would, and parses what it frames.
fn frame(input: &[u8], cuts: &[usize]) -> Vec<Result<Command, ParseError>> {
    let mut framer = CommandFramer::new(FrameLimits::default());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match framer.decode(&buf) {
                Ok(Decoded::Complete {
                    line_with_literals,
                    consumed,
                }) => {
                    out.push(parse_command(line_with_literals));
                    buf.drain(..consumed);
                }
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::NeedsContinuation { .. }) => {}
                Ok(Decoded::Discard { consumed }) => {
                    buf.drain(..consumed);
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    assert!(buf.is_empty());
    out
}

#[test]
fn same_commands_at_every_split() {
    let stream: &[u8] = b"s1 UID SORT RETURN (MIN MAX PARTIAL -1:-10) (REVERSE SUBJECT DISPLAYFROM) UTF-8 SUBJECT {4}\r\nre x NOT SEEN\r\n\
t1 THREAD REFERENCES \"US-ASCII\" OR FROM a TO b\r\n\
t2 UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n\
c1 CANCELUPDATE \"s1\" {2+}\r\nt1\r\n\
s2 SEARCH RETURN (UPDATE CONTEXT PARTIAL 4:2) BODY {3}\r\nabc\r\n\
b1 SORT (DATE) UTF-8 BOGUS\r\n";
    let whole = frame(stream, &[]);
    assert_eq!(whole.len(), 6);
    assert!(whole[..5].iter().all(Result::is_ok), "{whole:?}");
    assert!(matches!(&whole[5], Err(ParseError::Syntax { tag, .. }) if tag.as_str() == "b1"));
    let Ok(Command {
        body: CommandBody::Sort {
            search: SearchKey::And(keys),
            ..
        },
        ..
    }) = &whole[0]
    else {
        panic!("{:?}", whole[0])
    };
    assert_eq!(keys[0], SearchKey::Subject(b"re x".to_vec()));
    assert_eq!(
        whole[3].as_ref().map(|c| c.body.clone()),
        Ok(CommandBody::CancelUpdate(vec!["s1".into(), "t1".into()]))
    );
    for cut in 0..=stream.len() {
        assert_eq!(frame(stream, &[cut]), whole, "split at {cut}");
    }
    let every: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(frame(stream, &every), whole);
}

fn enc(d: Data) -> String {
    String::from_utf8(Response::Data(d).to_bytes(EncodeOptions::default())).unwrap()
}

fn node(id: u32, children: u32) -> ThreadNode {
    ThreadNode {
        id: Some(id),
        children,
    }
}

#[test]
fn responses() {
    // RFC 5256 §4.
    assert_eq!(
        enc(Data::Sort {
            ids: vec![2, 84, 882],
            modseq: None
        }),
        "* SORT 2 84 882\r\n"
    );
    assert_eq!(
        enc(Data::Sort {
            ids: vec![],
            modseq: Some(5)
        }),
        "* SORT\r\n"
    );
    // RFC 7162 §3.1.5 with SORT.
    assert_eq!(
        enc(Data::Sort {
            ids: vec![5, 3],
            modseq: Some(917162500)
        }),
        "* SORT 5 3 (MODSEQ 917162500)\r\n"
    );
    assert_eq!(
        enc(Data::Thread(vec![
            node(2, 0),
            node(3, 1),
            node(6, 2),
            node(4, 1),
            node(23, 0),
            node(44, 1),
            node(7, 1),
            node(96, 0)
        ])),
        "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    );
    assert_eq!(enc(Data::Thread(vec![])), "* THREAD\r\n");
    // RFC 5267 §3.3: ALL in the requested order, ranges only where ascending.
    let all = SequenceSet::from_ids([23765, 23764, 23763, 23761]).unwrap();
    assert_eq!(
        enc(Data::ESearch {
            tag: Tag::new("E01"),
            uid: true,
            items: vec![ESearchItem::All(all)]
        }),
        "* ESEARCH (TAG \"E01\") UID ALL 23765,23764,23763,23761\r\n"
    );
    let set = |s| SequenceSet::parse(s).unwrap();
    // RFC 5267 §4.3.3, §4.3.4, §4.4.
    assert_eq!(
        enc(Data::ESearch {
            tag: Tag::new("C01"),
            uid: true,
            items: vec![
                ESearchItem::AddTo(vec![(1, set("2733")), (1, set("2731:2732"))]),
                ESearchItem::RemoveFrom(vec![(0, set("32768"))])
            ]
        }),
        "* ESEARCH (TAG \"C01\") UID ADDTO (1 2733 1 2731:2732) REMOVEFROM (0 32768)\r\n"
    );
    assert_eq!(
        enc(Data::ESearch {
            tag: Tag::new("A04"),
            uid: true,
            items: vec![ESearchItem::Partial {
                range: partial(24000, 24500, false),
                results: None
            }]
        }),
        "* ESEARCH (TAG \"A04\") UID PARTIAL (24000:24500 NIL)\r\n"
    );
    assert_eq!(
        enc(Data::ESearch {
            tag: Tag::new("E01"),
            uid: true,
            items: vec![ESearchItem::Partial {
                range: partial(1, 100, true),
                results: Some(set("55700:55799"))
            }]
        }),
        "* ESEARCH (TAG \"E01\") UID PARTIAL (-1:-100 55700:55799)\r\n"
    );
    assert_eq!(
        String::from_utf8(
            Response::Status(
                Status::no(None, "Too many contexts").with_code(Code::NoUpdate("B02".into()))
            )
            .to_bytes(EncodeOptions::default())
        )
        .unwrap(),
        "* NO [NOUPDATE \"B02\"] Too many contexts\r\n"
    );
}
