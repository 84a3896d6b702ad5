//! The RFCs' own command examples parse to the expected values, and bad input is a
//! `ParseError` with the tag when there is one.

use imap_proto::*;

const MESSAGE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

fn parse(s: &str) -> CommandBody {
    let line = format!("{s}\r\n");
    match parse_command(line.as_bytes()) {
        Ok(cmd) => cmd.body,
        Err(e) => panic!("{s:?}: {e:?}"),
    }
}

fn mailbox(s: &str) -> Mailbox {
    Mailbox::new(s)
}

fn seq(s: &str) -> SequenceSet {
    SequenceSet::parse(s).unwrap()
}

#[test]
fn any_state_and_auth_commands() {
    assert_eq!(parse("a001 CAPABILITY"), CommandBody::Capability);
    assert_eq!(parse("a002 noop"), CommandBody::Noop);
    assert_eq!(parse("A023 LOGOUT"), CommandBody::Logout);
    assert_eq!(parse("a002 STARTTLS"), CommandBody::StartTls);
    let cmd = parse_command(b"A001 AUTHENTICATE GSSAPI\r\n").unwrap();
    assert_eq!(cmd.tag.as_str(), "A001");
    assert!(
        matches!(cmd.body, CommandBody::Authenticate { ref mechanism, initial_response: None }
        if mechanism.as_str() == "GSSAPI")
    );
    // RFC 4959 §3.
    let CommandBody::Authenticate {
        initial_response: Some(ir),
        ..
    } = parse("a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=")
    else {
        panic!()
    };
    assert_eq!(ir.expose(), b"dGVzdAB0ZXN0AHRlc3Q=");
    assert!(format!("{ir:?}").contains(".."), "secrets are not printed");
    assert!(
        matches!(parse("a AUTHENTICATE PLAIN ="), CommandBody::Authenticate { initial_response: Some(ir), .. } if ir.expose() == b"=")
    );
    let CommandBody::Login { username, password } = parse("a001 LOGIN SMITH SESAME") else {
        panic!()
    };
    assert_eq!(
        (username.as_slice(), password.expose()),
        (&b"SMITH"[..], &b"SESAME"[..])
    );
    let CommandBody::Login { password, .. } = parse("a LOGIN \"fred\" {5}\r\np\"a s") else {
        panic!()
    };
    assert_eq!(password.expose(), b"p\"a s");
    let CommandBody::Enable(caps) = parse("t2 ENABLE CONDSTORE X-GOOD-IDEA") else {
        panic!()
    };
    assert_eq!(
        caps.iter().map(Atom::as_str).collect::<Vec<_>>(),
        ["CONDSTORE", "X-GOOD-IDEA"]
    );
    let CommandBody::Id(Some(params)) =
        parse("a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)")
    else {
        panic!()
    };
    assert_eq!(params.len(), 3);
    assert_eq!(params[2], (b"vendor".to_vec(), None));
    assert_eq!(parse("a ID NIL"), CommandBody::Id(None));
    assert_eq!(parse("a ID ()"), CommandBody::Id(Some(vec![])));
}

#[test]
fn mailbox_commands() {
    assert_eq!(
        parse("A142 SELECT INBOX"),
        CommandBody::Select {
            mailbox: mailbox("INBOX"),
            params: vec![]
        }
    );
    assert_eq!(
        parse("A932 EXAMINE blurdybloop"),
        CommandBody::Examine {
            mailbox: mailbox("blurdybloop"),
            params: vec![]
        }
    );
    assert_eq!(
        parse("a SELECT \"inbox\" (CONDSTORE)"),
        CommandBody::Select {
            mailbox: mailbox("inbox"),
            params: vec![SelectParam::CondStore]
        }
    );
    let CommandBody::Select { mailbox: m, .. } = parse("a select inbox") else {
        panic!()
    };
    assert!(m.is_inbox());
    assert_eq!(m.decode(false).as_deref(), Ok("INBOX"));
    assert_eq!(
        parse("A003 CREATE owatagusiam/"),
        CommandBody::Create {
            mailbox: mailbox("owatagusiam/"),
            special_use: vec![]
        }
    );
    // RFC 6154 §5.2.
    assert_eq!(
        parse("t1 CREATE \"Important Messages\" (USE (\\Important))"),
        CommandBody::Create {
            mailbox: mailbox("Important Messages"),
            special_use: vec![Atom::new("Important").unwrap()]
        }
    );
    assert_eq!(
        parse("A683 DELETE blurdybloop"),
        CommandBody::Delete(mailbox("blurdybloop"))
    );
    assert_eq!(
        parse("A684 RENAME blurdybloop sarasoop"),
        CommandBody::Rename {
            from: mailbox("blurdybloop"),
            to: mailbox("sarasoop")
        }
    );
    assert_eq!(
        parse("A002 SUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Subscribe(mailbox("#news.comp.mail.mime"))
    );
    assert_eq!(
        parse("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Unsubscribe(mailbox("#news.comp.mail.mime"))
    );
    assert_eq!(
        parse("A002 LSUB \"#news.\" \"comp.mail.*\""),
        CommandBody::Lsub {
            reference: mailbox("#news."),
            pattern: "comp.mail.*".into()
        }
    );
    assert_eq!(parse("A001 NAMESPACE"), CommandBody::Namespace);
    assert_eq!(
        parse("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        CommandBody::Status {
            mailbox: mailbox("blurdybloop"),
            attributes: vec![StatusAttribute::UidNext, StatusAttribute::Messages]
        }
    );
    let CommandBody::Status { attributes, .. } =
        parse("a STATUS x (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ)")
    else {
        panic!()
    };
    assert_eq!(attributes.len(), 8);
    assert_eq!(
        parse("G GETQUOTAROOT INBOX"),
        CommandBody::GetQuotaRoot(mailbox("INBOX"))
    );
    assert_eq!(parse("G GETQUOTA \"\""), CommandBody::GetQuota(vec![]));
    // RFC 9208 §4.1.3 example, and the empty list (every limit removed).
    assert_eq!(
        parse("S SETQUOTA \"\" (STORAGE 512)"),
        CommandBody::SetQuota {
            root: vec![],
            limits: vec![(Atom::new("STORAGE").unwrap(), 512)]
        }
    );
    assert_eq!(
        parse("S SETQUOTA bob@example.com (STORAGE 10 MESSAGE 5)"),
        CommandBody::SetQuota {
            root: b"bob@example.com".to_vec(),
            limits: vec![
                (Atom::new("STORAGE").unwrap(), 10),
                (Atom::new("MESSAGE").unwrap(), 5)
            ]
        }
    );
    assert_eq!(
        parse("S SETQUOTA \"\" ()"),
        CommandBody::SetQuota {
            root: vec![],
            limits: vec![]
        }
    );
    for bad in [
        "S SETQUOTA \"\"",
        "S SETQUOTA \"\" (STORAGE)",
        "S SETQUOTA \"\" (STORAGE x)",
        "S SETQUOTA \"\" (STORAGE 1",
        "S SETQUOTA \"\" (STORAGE 1 )",
    ] {
        assert!(
            parse_command(format!("{bad}\r\n").as_bytes()).is_err(),
            "{bad}"
        );
    }
    // Modified UTF-7 names decode for rev1 clients.
    let CommandBody::Create { mailbox: m, .. } = parse("a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    else {
        panic!()
    };
    assert_eq!(
        m.decode(false).as_deref(),
        Ok("~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}")
    );
    assert_eq!(
        m.decode(true).as_deref(),
        Ok("~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    );
}

#[test]
fn list_commands() {
    let list = |s| match parse(s) {
        CommandBody::List {
            selection,
            reference,
            patterns,
            return_opts,
        } => (selection, reference, patterns, return_opts),
        other => panic!("{other:?}"),
    };
    let (sel, r, p, ret) = list("A101 LIST \"\" \"\"");
    assert!(sel.is_empty() && ret.is_empty());
    assert_eq!((r.as_str(), p), ("", vec![String::new()]));
    let (_, r, p, _) = list("A202 LIST ~/Mail/ %");
    assert_eq!((r.as_str(), p), ("~/Mail/", vec!["%".to_owned()]));
    let (sel, _, p, ret) = list("A04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN)");
    assert_eq!(
        sel,
        [
            ListSelectOption::Subscribed,
            ListSelectOption::RecursiveMatch
        ]
    );
    assert_eq!(
        (p, ret),
        (vec!["%".to_owned()], vec![ListReturnOption::Children])
    );
    let (_, _, p, _) = list("A03 LIST () \"\" (\"foo\" \"foo/*\" bar%)");
    assert_eq!(p, ["foo", "foo/*", "bar%"]);
    // RFC 5819 §5.
    let (_, _, _, ret) = list("A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))");
    assert_eq!(
        ret,
        [ListReturnOption::Status(vec![
            StatusAttribute::Messages,
            StatusAttribute::Unseen
        ])]
    );
    // RFC 6154 §5.1.
    let (sel, _, _, _) = list("t3 LIST (SPECIAL-USE) \"\" \"*\"");
    assert_eq!(sel, [ListSelectOption::SpecialUse]);
    let (_, _, _, ret) = list("t1 LIST \"\" \"%\" RETURN (SPECIAL-USE SUBSCRIBED)");
    assert_eq!(
        ret,
        [ListReturnOption::SpecialUse, ListReturnOption::Subscribed]
    );
    // RFC 5258 §3: RECURSIVEMATCH alone is BAD.
    assert!(parse_command(b"a LIST (RECURSIVEMATCH) \"\" %\r\n").is_err());
}

#[test]
fn append_commands() {
    let line = format!("A003 APPEND saved-messages (\\Seen) {{326}}\r\n{MESSAGE}\r\n");
    let cmd = parse_command(line.as_bytes()).unwrap();
    let CommandBody::Append {
        mailbox: m,
        messages,
    } = cmd.body
    else {
        panic!()
    };
    assert_eq!(m.as_str(), "saved-messages");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].flags, [Flag::Seen]);
    assert_eq!(
        messages[0].data,
        AppendData::Literal {
            data: MESSAGE.as_bytes().to_vec(),
            binary: false
        }
    );
    assert!(messages[0].date_time.is_none());
    // MULTIAPPEND (RFC 3502 §6) with a date-time and LITERAL+.
    let line = format!(
        "A003 APPEND saved-messages {{326+}}\r\n{MESSAGE} (\\Seen $x) \" 7-Feb-1994 22:43:04 -0800\" {{3}}\r\nabc\r\n"
    );
    let CommandBody::Append { messages, .. } = parse_command(line.as_bytes()).unwrap().body else {
        panic!()
    };
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].data.literal(), Some(&b"abc"[..]));
    assert_eq!(
        messages[1].date_time.map(|d| d.unix_timestamp()),
        Some(760_689_784)
    );
    // Binary (RFC 3516 §4.4): literal8 may carry NUL, a plain literal may not.
    let CommandBody::Append { messages, .. } = parse("A APPEND foo ~{5}\r\na\0bcd") else {
        panic!()
    };
    assert_eq!(
        messages[0].data,
        AppendData::Literal {
            data: b"a\0bcd".to_vec(),
            binary: true
        }
    );
    assert!(parse_command(b"A APPEND foo {5}\r\na\0bcd\r\n").is_err());
    assert!(parse_command(b"A APPEND foo (\\Seen)\r\n").is_err());
    assert!(parse_command(b"A APPEND foo {5}\r\nabc\r\n").is_err());
}

#[test]
fn selected_state_commands() {
    assert_eq!(parse("FXXZ CHECK"), CommandBody::Check);
    assert_eq!(parse("A341 CLOSE"), CommandBody::Close);
    assert_eq!(parse("A342 UNSELECT"), CommandBody::Unselect);
    assert_eq!(parse("A202 EXPUNGE"), CommandBody::Expunge);
    assert_eq!(
        parse("A003 UID EXPUNGE 3000:3002"),
        CommandBody::UidExpunge(seq("3000:3002"))
    );
    assert_eq!(parse("a IDLE"), CommandBody::Idle);
    assert!(parse_idle_done(b"DONE\r\n") && parse_idle_done(b"done\n"));
    assert!(!parse_idle_done(b"DONE \r\n") && !parse_idle_done(b"a NOOP\r\n"));
    assert_eq!(
        parse("A003 COPY 2:4 MEETING"),
        CommandBody::Copy {
            uid: false,
            sequence_set: seq("2:4"),
            mailbox: mailbox("MEETING")
        }
    );
    assert_eq!(
        parse("a UID MOVE 42:69 foo"),
        CommandBody::Move {
            uid: true,
            sequence_set: seq("42:69"),
            mailbox: mailbox("foo")
        }
    );
    assert_eq!(
        parse("a MOVE $ Trash"),
        CommandBody::Move {
            uid: false,
            sequence_set: SequenceSet::saved(),
            mailbox: mailbox("Trash")
        }
    );
}

#[test]
fn store_commands() {
    let store = |s| match parse(s) {
        CommandBody::Store {
            uid,
            sequence_set,
            unchanged_since,
            action,
            flags,
        } => (
            uid,
            sequence_set.to_string(),
            unchanged_since,
            action,
            flags,
        ),
        other => panic!("{other:?}"),
    };
    let (uid, set, unch, action, flags) = store("A003 STORE 2:4 +FLAGS (\\Deleted)");
    assert_eq!((uid, set.as_str(), unch), (false, "2:4", None));
    assert_eq!(
        action,
        StoreAction {
            kind: StoreKind::Add,
            silent: false
        }
    );
    assert_eq!(flags, [Flag::Deleted]);
    // RFC 7162 §3.1.3 example.
    let (_, set, unch, action, _) =
        store("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)");
    assert_eq!((set.as_str(), unch), ("7,5,9", Some(320_162_338)));
    assert!(action.silent);
    let (uid, _, _, action, flags) = store("a UID STORE 1 -flags \\Seen \\Flagged $Junk");
    assert!(uid);
    assert_eq!(action.kind, StoreKind::Remove);
    assert_eq!(flags.len(), 3);
    let (_, _, _, action, flags) = store("a STORE 1 FLAGS ()");
    assert_eq!((action.kind, flags.len()), (StoreKind::Replace, 0));
}

#[test]
fn search_commands() {
    let CommandBody::Search {
        uid,
        return_opts,
        charset,
        criteria,
    } = parse("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert!(!uid && charset.is_none());
    assert_eq!(
        return_opts,
        Some(vec![SearchReturnOption::Min, SearchReturnOption::Count])
    );
    assert_eq!(
        criteria,
        SearchKey::And(vec![
            SearchKey::Flagged,
            SearchKey::Since(Date::new(1994, 2, 1).unwrap()),
            SearchKey::Not(Box::new(SearchKey::From(b"Smith".to_vec()))),
        ])
    );
    let CommandBody::Search { return_opts, .. } = parse("A283 SEARCH RETURN () FLAGGED") else {
        panic!()
    };
    assert_eq!(return_opts, Some(vec![]));
    let CommandBody::Search {
        charset, criteria, ..
    } = parse("A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{43e}\u{442}\u{43f}\u{443}\u{441}\u{43a}")
    else {
        panic!()
    };
    assert_eq!(charset.as_deref(), Some("UTF-8"));
    assert_eq!(
        criteria,
        SearchKey::Text(
            "\u{43e}\u{442}\u{43f}\u{443}\u{441}\u{43a}"
                .as_bytes()
                .to_vec()
        )
    );
    let CommandBody::Search {
        uid: true,
        return_opts: Some(r),
        criteria,
        ..
    } = parse(
        "a UID SEARCH RETURN (SAVE) 1:5 OR ANSWERED (FLAGGED NOT DELETED) UID $ MODSEQ 5 LARGER 100 SENTBEFORE \"2-Mar-2020\"",
    )
    else {
        panic!()
    };
    assert_eq!(r, [SearchReturnOption::Save]);
    let SearchKey::And(keys) = criteria else {
        panic!()
    };
    assert_eq!(keys.len(), 6);
    assert_eq!(keys[0], SearchKey::SequenceSet(seq("1:5")));
    assert_eq!(keys[2], SearchKey::Uid(SequenceSet::saved()));
    // Every simple key of RFC 9051 §6.4.4 and RFC 3501.
    let all = "a SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2000 BODY y CC z DELETED DRAFT FLAGGED FROM f \
               HEADER X-A b KEYWORD $k NEW OLD ON 1-Jan-2000 RECENT SEEN SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 \
               SINCE 1-Jan-2000 SMALLER 9 SUBJECT s TEXT t TO u UNANSWERED UNDELETED UNDRAFT UNFLAGGED \
               UNKEYWORD $k UNRECENT UNSEEN OLDER 60 YOUNGER 60 *";
    let CommandBody::Search {
        criteria: SearchKey::And(keys),
        ..
    } = parse(all)
    else {
        panic!()
    };
    assert_eq!(keys.len(), 34);
}

#[test]
fn fetch_commands() {
    let fetch = |s| match parse(s) {
        CommandBody::Fetch {
            uid,
            sequence_set,
            attributes,
            modifiers,
            partial: None,
        } => (uid, sequence_set.to_string(), attributes, modifiers),
        other => panic!("{other:?}"),
    };
    let (_, set, atts, _) = fetch("a FETCH 1:* (FLAGS BODY[HEADER.FIELDS (DATE FROM)]<0.100>)");
    assert_eq!(set, "1:*");
    let FetchAttributes::List(atts) = atts else {
        panic!()
    };
    assert_eq!(atts[0], FetchAttribute::Flags);
    let FetchAttribute::BodySection {
        section,
        partial,
        peek: false,
    } = &atts[1]
    else {
        panic!()
    };
    assert_eq!(
        section.text,
        Some(SectionText::HeaderFields(vec![
            "DATE".into(),
            "FROM".into()
        ]))
    );
    assert_eq!(*partial, Some((0, 100)));
    let (uid, set, atts, _) = fetch("A999 UID FETCH 4827313:4828442 FLAGS");
    assert!(uid);
    assert_eq!(
        (set.as_str(), atts),
        (
            "4827313:4828442",
            FetchAttributes::List(vec![FetchAttribute::Flags])
        )
    );
    assert_eq!(fetch("a FETCH 2 all").2.expand().len(), 4);
    assert_eq!(fetch("a FETCH 2 FAST").2, FetchAttributes::Fast);
    assert_eq!(fetch("a FETCH 2 FULL").2.expand().len(), 5);
    let (_, _, _, mods) = fetch("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)");
    assert_eq!(
        mods,
        [FetchModifier::ChangedSince(12345), FetchModifier::Vanished]
    );
    let (_, _, FetchAttributes::List(atts), _) = fetch(
        "a FETCH 1 (ENVELOPE INTERNALDATE RFC822.SIZE BODY BODYSTRUCTURE UID MODSEQ RFC822 RFC822.HEADER \
         RFC822.TEXT BODY.PEEK[1.2.MIME] BINARY[1] BINARY.PEEK[]<0.10> BINARY.SIZE[2] BODY[TEXT] BODY[]<5.6>)",
    ) else {
        panic!()
    };
    assert_eq!(atts.len(), 16);
}

#[test]
fn bad_input_is_an_error() {
    let tagged_bad = [
        "a FETCH 1 (FLAGS",
        "a FETCH 1 FLAGS)",
        "a SEARCH (ALL",
        "a SEARCH ALL)",
        "a STORE 1 FLAGS (\\Seen",
        "a FETCH 0 FLAGS",
        "a FETCH 1:0 FLAGS",
        "a COPY 0 x",
        "a FETCH 1 FL\u{e4}GS",
        "a STORE 1 +FLAGS (\\Se\u{e9}n)",
        "a ENABLE CONDST\u{d6}RE",
        "a SELECT",
        "a SELECT INBOX extra",
        "a LOGIN {99999999999}",
        "a LOGIN {5}\r\nab",
        "a LOGIN user",
        "a NOOP extra",
        "a UID FOO 1",
        "a SEARCH RETURN (BOGUS) ALL",
        "a STATUS x (BOGUS)",
        "a STATUS x ()",
        "a CREATE x (FOO (\\Sent))",
        "a AUTHENTICATE PLAIN abc",
        "a",
        "a ",
    ];
    for input in tagged_bad {
        let line = format!("{input}\r\n");
        match parse_command(line.as_bytes()) {
            Err(ParseError::Syntax { tag, .. }) => assert_eq!(tag.as_str(), "a", "{input}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    for input in [
        "",
        " NOOP",
        "+a NOOP",
        "(a) NOOP",
        "\u{e9} NOOP",
        "a\u{ff} NOOP",
        "{3}\r\nabc NOOP",
    ] {
        let line = format!("{input}\r\n");
        assert_eq!(
            parse_command(line.as_bytes()),
            Err(ParseError::MissingTag),
            "{input:?}"
        );
    }
    let err = parse_command(b"x1 FROBNICATE now\r\n").unwrap_err();
    assert_eq!(
        err,
        ParseError::UnknownCommand {
            tag: Tag::new("x1").unwrap()
        }
    );
    assert_eq!(err.tag().map(Tag::as_str), Some("x1"));
    // Raw 8-bit bytes (not UTF-8 at all).
    assert!(parse_command(b"a SELECT \xff\xfe\r\n").is_err());
    assert!(parse_command(b"a SELECT {2}\r\n\xff\xfe\r\n").is_err());
    assert!(parse_command(b"a NOOP\r\nb NOOP\r\n").is_err());
}
