//! Deterministic mutation testing of the framer and the parser: 240 000 inputs derived from
//! valid commands by flipping, inserting, deleting and splicing bytes and grammar tokens.
//! Nothing may panic, loop forever, or make the framer hand out more bytes than it was given.
//! (The `fuzz/` cargo-fuzz target does the same with coverage guidance where nightly exists.)

use imap_proto::*;

const SEEDS: &[&[u8]] = &[
    b"a1 NOOP\r\n",
    b"A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nHello\r\n",
    b"A003 APPEND x {3+}\r\nabc (\\Seen $x) ~{2}\r\n\0a\r\n",
    b"a FETCH 1:* (FLAGS BODY[HEADER.FIELDS (DATE FROM)]<0.100>)\r\n",
    b"a UID FETCH 1:*,5 (BODY.PEEK[1.2.MIME] BINARY[1]<0.5> BINARY.SIZE[] ENVELOPE) (CHANGEDSINCE 5 VANISHED)\r\n",
    b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
    b"a UID SEARCH CHARSET UTF-8 OR (TEXT {3}\r\nabc UID $) NOT HEADER X-A \"b\" MODSEQ \"/flags/\\\\seen\" all 5\r\n",
    b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
    b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1:2 3:4)) CONDSTORE)\r\n",
    b"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"foo\" %) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
    b"a CREATE \"Sent &U,BTFw-\" (USE (\\Sent))\r\n",
    b"a LOGIN {4}\r\nuser \"pa\\\"ss\"\r\n",
    b"a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
    b"a ID (\"name\" \"x\" \"v\" NIL)\r\n",
    b"a STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ)\r\n",
    b"a UID MOVE 42:69 foo\r\n",
    b"a RENAME {3}\r\nold new\r\n",
    b"a ENABLE CONDSTORE UTF8=ACCEPT\r\n",
    b"a SORT (DATE) UTF-8 ALL\r\n",
    b"a UID THREAD REFERENCES UTF-8 ALL\r\n",
    b"a SEARCH RETURN (PARTIAL -1:-9) 1\r\n",
    b"a CANCELUPDATE \"t1\"\r\n",
    b"DONE\r\n",
    b"a APPEND Drafts (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {3}\r\nabc URL \"/x/;uid=1/;partial=0.5\") CATENATE (TEXT ~{1}\r\n\0)\r\n",
    b"a GENURLAUTH \"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred\" INTERNAL\r\n",
    b"a URLFETCH (\"imap://a@b/INBOX/;uid=1;expire=2009-02-13T23:31:30Z;urlauth=authuser:internal:0123456789abcdef0123456789abcdef\" BINARY BODYPARTSTRUCTURE) imap://x@y/z/;uid=2\r\n",
    b"a RESETKEY INBOX INTERNAL\r\n",
    b"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree (Lists \"a b\") MessageNew) (personal NONE)\r\n",
    b"a NOTIFY NONE\r\n",
];

const TOKENS: &[&[u8]] = &[
    b"{5}\r\n",
    b"{0}\r\n",
    b"{4294967296+}\r\n",
    b"{99999999999999999999999}\r\n",
    b"~{2}\r\n",
    b"(",
    b")",
    b"((((((((((((((((((((((((((((((((((((((((",
    b"\"",
    b"\\",
    b"*",
    b":",
    b"$",
    b"0",
    b"\xff",
    b"\xc3\xa9",
    b"NIL",
    b" ",
    b"\r\n",
    b"\n",
    b"[",
    b"]",
    b"<",
    b">",
    b".",
    b"NOT NOT NOT NOT ",
    b"&",
    b"&-",
    b"\0",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if pos < input.len() => input[pos] ^= 1 << rng.below(8),
            1 => input.insert(pos, rng.next() as u8),
            2 if pos < input.len() => {
                input.remove(pos);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(pos..pos, token.iter().copied());
            }
            4 => input.truncate(pos),
            5 => {
                let other = SEEDS[rng.below(SEEDS.len())];
                let at = rng.below(other.len());
                input.splice(pos..pos, other[at..].iter().copied());
            }
            _ if pos < input.len() => {
                let end = (pos + rng.below(16)).min(input.len());
                let chunk = input[pos..end].to_vec();
                input.splice(pos..pos, chunk);
            }
            _ => {}
        }
    }
}

/// Frames `input` (cut in two at `cut`) like a session, parsing every complete command.
fn frame_and_parse(input: &[u8], cut: usize, limits: FrameLimits) -> usize {
    let mut framer = CommandFramer::new(limits);
    let mut buf = Vec::new();
    let mut parsed = 0;
    for part in [&input[..cut], &input[cut..]] {
        buf.extend_from_slice(part);
        // Every step either drops bytes or waits; a bound catches a framer that spins.
        for step in 0.. {
            assert!(step < 10_000, "framer does not make progress");
            match framer.decode(&buf) {
                Ok(Decoded::Complete {
                    line_with_literals,
                    consumed,
                }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    let _ = parse_command(line_with_literals);
                    parsed += 1;
                    buf.drain(..consumed);
                }
                Ok(Decoded::Discard { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedsContinuation { .. }) => {}
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    assert!(e.skip() <= buf.len());
                    buf.drain(..e.skip());
                }
            }
        }
        assert!(buf.len() <= limits.max_line + limits.max_literal as usize + 64);
    }
    parsed
}

#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let limits = [
        FrameLimits::default(),
        FrameLimits {
            max_line: 40,
            max_literal: 16,
            max_command: 80,
            max_non_sync_literal: 8,
        },
    ];
    let mut complete = 0;
    let mut ok = 0;
    for i in 0..240_000 {
        let mut input = SEEDS[rng.below(SEEDS.len())].to_vec();
        mutate(&mut rng, &mut input);
        if parse_command(&input).is_ok() {
            ok += 1;
        }
        let _ = parse_idle_done(&input);
        let cut = rng.below(input.len() + 1);
        complete += frame_and_parse(&input, cut, limits[i % 2]);
        if let Ok(s) = std::str::from_utf8(&input) {
            let _ = decode_mutf7(s);
            let _ = SequenceSet::parse(s);
            let base = UrlBase {
                user: Some("u".into()),
                host: None,
                mailbox: Some("a/b".into()),
            };
            let _ = ImapUrl::parse_relative(s, Some(&base));
            let _ = ImapUrl::split_rump(s);
            // The URL inside a command, up to its closing quote.
            for start in ["imap://", "\"/", ";"] {
                if let Some(i) = s.find(start) {
                    let url = s[i..].trim_start_matches('"');
                    let url = url.split(['"', ' ', ')']).next().unwrap_or_default();
                    let _ = ImapUrl::parse_relative(url, Some(&base));
                }
            }
        }
    }
    // The mutations keep enough inputs valid to reach deep into the parsers.
    assert!(ok > 10_000, "only {ok} inputs parsed");
    assert!(complete > 100_000, "only {complete} commands framed");
}
