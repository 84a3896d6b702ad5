//! RFC 5322 §3.4 address lists for ENVELOPE (RFC 9051 §7.5.2), parsed liberally from the raw
//! field value: groups become a start marker `(NIL NIL "name" NIL)`, their members and an end
//! marker `(NIL NIL NIL NIL)` (an empty group is just the two markers, a group left open
//! is closed at the end); `<@route:addr>` fills `addr-adl`; comments are dropped, but one
//! after a bare `addr-spec` names it (`a@b (Real Name)`); empty list elements are skipped
//! (RFC 5322 §4.4); a missing local part or domain reads `MISSING_MAILBOX` /
//! `MISSING_DOMAIN` (as Dovecot sends), because a NIL host would mark a group to the client.
//! RFC 2047 encoded words in display names are decoded; 8-bit text is kept as it is.

use imap_proto::Address;
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An atom or dot-atom (any run of bytes that are not specials, space or controls), or
    /// the content of a quoted string, or a domain literal with its brackets.
    Word(Vec<u8>, WordKind),
    /// `( ... )`, nesting and quoted pairs resolved.
    Comment(Vec<u8>),
    /// One of `< > @ , ; : .` (`.` only outside words, e.g. `a . b`).
    Special(u8),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum WordKind {
    Atom,
    Quoted,
    Literal,
}

/// Splits a field value into tokens, each with whether white space or a comment came before
/// it.
fn tokens(v: &[u8]) -> Vec<(Tok, bool)> {
    let mut toks = Vec::new();
    let mut space = false;
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                space = true;
                i += 1;
                continue;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while let Some(&c) = v.get(i) {
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            if let Some(&n) = v.get(i) {
                                s.push(n);
                                i += 1;
                            }
                        }
                        b'\r' | b'\n' => {}
                        _ => s.push(c),
                    }
                }
                toks.push((Tok::Word(s, WordKind::Quoted), space));
            }
            b'(' => {
                let mut s = Vec::new();
                let mut depth = 1usize;
                i += 1;
                while let Some(&c) = v.get(i) {
                    i += 1;
                    match c {
                        b'(' => {
                            depth += 1;
                            s.push(c);
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            s.push(c);
                        }
                        b'\\' => {
                            if let Some(&n) = v.get(i) {
                                s.push(n);
                                i += 1;
                            }
                        }
                        b'\r' | b'\n' => {}
                        _ => s.push(c),
                    }
                }
                toks.push((Tok::Comment(s), true));
                space = true;
                continue;
            }
            b'[' => {
                let end = v
                    .get(i..)
                    .and_then(|r| r.iter().position(|&c| c == b']'))
                    .map_or(v.len(), |p| i + p + 1);
                let lit: Vec<u8> = v
                    .get(i..end)
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .filter(|&c| c != b'\r' && c != b'\n')
                    .collect();
                toks.push((Tok::Word(lit, WordKind::Literal), space));
                i = end;
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' => {
                toks.push((Tok::Special(b), space));
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&c) = v.get(i) {
                    if matches!(
                        c,
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'"'
                            | b'('
                            | b')'
                            | b'['
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                    ) {
                        break;
                    }
                    i += 1;
                }
                if i == start {
                    // A stray `)` or `]`.
                    i += 1;
                    continue;
                }
                toks.push((
                    Tok::Word(v.get(start..i).unwrap_or_default().to_vec(), WordKind::Atom),
                    space,
                ));
            }
        }
        space = false;
    }
    toks
}

/// A phrase (display name): its words joined by single spaces where the header had white
/// space (RFC 5322 §3.2.5), RFC 2047 words decoded.
fn phrase(toks: &[(Tok, bool)]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut encoded = false;
    for (t, spaced) in toks {
        let text: &[u8] = match t {
            Tok::Word(w, WordKind::Atom) => {
                encoded |= w.windows(2).any(|p| p == b"=?");
                w
            }
            Tok::Word(w, _) => w,
            Tok::Special(b) => std::slice::from_ref(b),
            Tok::Comment(_) => continue,
        };
        if *spaced && !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(text);
    }
    if out.is_empty() {
        return None;
    }
    if encoded {
        out.push(b'\n');
        if let HeaderValue::Text(t) = MessageStream::new(&out).parse_unstructured() {
            return Some(t.trim().as_bytes().to_vec());
        }
        out.pop();
    }
    Some(out)
}

/// The last non-empty comment, as a name.
fn comment_name(toks: &[(Tok, bool)]) -> Option<Vec<u8>> {
    toks.iter().rev().find_map(|(t, _)| match t {
        Tok::Comment(c) if !c.trim_ascii().is_empty() => {
            phrase(&[(Tok::Word(c.trim_ascii().to_vec(), WordKind::Atom), false)])
        }
        _ => None,
    })
}

/// Text of tokens written without spaces (a local part, a domain, a route).
fn joined(toks: &[(Tok, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, _) in toks {
        match t {
            Tok::Word(w, _) => out.extend_from_slice(w),
            Tok::Special(b) => out.push(*b),
            Tok::Comment(_) => {}
        }
    }
    out
}

/// `addr-spec = local-part "@" domain` (the first `@` splits; more are dropped).
fn addr_spec(toks: &[(Tok, bool)]) -> (Vec<u8>, Vec<u8>) {
    let at = toks.iter().position(|(t, _)| *t == Tok::Special(b'@'));
    match at {
        Some(i) => {
            let rest = toks.get(i + 1..).unwrap_or_default();
            let end = rest
                .iter()
                .position(|(t, _)| *t == Tok::Special(b'@'))
                .unwrap_or(rest.len());
            (
                joined(toks.get(..i).unwrap_or_default()),
                joined(rest.get(..end).unwrap_or_default()),
            )
        }
        None => (joined(toks), Vec::new()),
    }
}

/// One mailbox from the tokens of a list element (no `,` `;` or group `:` in it).
fn mailbox(el: &[(Tok, bool)]) -> Option<Address> {
    if el.iter().all(|(t, _)| matches!(t, Tok::Comment(_))) {
        return None;
    }
    let open = el.iter().position(|(t, _)| *t == Tok::Special(b'<'));
    let (name, adl, (local, domain)) = match open {
        Some(o) => {
            let inner = el.get(o + 1..).unwrap_or_default();
            let close = inner
                .iter()
                .position(|(t, _)| *t == Tok::Special(b'>'))
                .unwrap_or(inner.len());
            let inner = inner.get(..close).unwrap_or_default();
            let before = el.get(..o).unwrap_or_default();
            let name = phrase(before).or_else(|| comment_name(el));
            // `<@a,@b:local@domain>`: the route is what comes before the last `:`.
            let colon = inner.iter().rposition(|(t, _)| *t == Tok::Special(b':'));
            let (adl, spec) = match colon {
                Some(c) => (
                    Some(joined(inner.get(..c).unwrap_or_default())).filter(|r| !r.is_empty()),
                    inner.get(c + 1..).unwrap_or_default(),
                ),
                None => (None, inner),
            };
            (name, adl, addr_spec(spec))
        }
        None => (comment_name(el), None, addr_spec(el)),
    };
    if local.is_empty() && domain.is_empty() && name.is_none() {
        return None;
    }
    Some(Address {
        name,
        adl,
        mailbox: Some(if local.is_empty() {
            MISSING_MAILBOX.to_vec()
        } else {
            local
        }),
        host: Some(if domain.is_empty() {
            MISSING_DOMAIN.to_vec()
        } else {
            domain
        }),
    })
}

/// The ENVELOPE address list of a raw (unfolded) field value.
pub(crate) fn parse_list(value: &[u8]) -> Vec<Address> {
    let toks = tokens(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut start = 0;
    let mut angle = false;
    for (i, (t, _)) in toks.iter().enumerate() {
        let el = || toks.get(start..i).unwrap_or_default();
        match t {
            Tok::Special(b'<') => angle = true,
            Tok::Special(b'>') if angle => {
                // `name <addr>` is complete: what follows before the next `,` (a comment, or
                // another address where a comma was forgotten) is an element of its own.
                angle = false;
                out.extend(mailbox(toks.get(start..=i).unwrap_or_default()));
                start = i + 1;
            }
            // Inside `<...>` a `:` ends a route and a `,` separates route hops.
            _ if angle => {}
            Tok::Special(b':') if !in_group => {
                // RFC 5322 §3.4: `group = display-name ":" [group-list] ";"`.
                let name = phrase(el()).unwrap_or_default();
                out.push(Address::group_start(name));
                in_group = true;
                start = i + 1;
            }
            Tok::Special(b',') => {
                out.extend(mailbox(el()));
                start = i + 1;
            }
            Tok::Special(b';') => {
                out.extend(mailbox(el()));
                if in_group {
                    out.push(Address::group_end());
                    in_group = false;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out.extend(mailbox(toks.get(start..).unwrap_or_default()));
    if in_group {
        out.push(Address::group_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(v: &str) -> String {
        let s = |x: &Option<Vec<u8>>| match x {
            Some(v) => format!("\"{}\"", String::from_utf8_lossy(v)),
            None => "NIL".into(),
        };
        parse_list(v.as_bytes())
            .iter()
            .map(|a| {
                format!(
                    "({} {} {} {})",
                    s(&a.name),
                    s(&a.adl),
                    s(&a.mailbox),
                    s(&a.host)
                )
            })
            .collect()
    }

    #[test]
    fn groups() {
        // imaptest fetch-envelope, message 4.
        assert_eq!(
            show("group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;"),
            "(NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)\
(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)"
        );
        assert_eq!(
            show("group:;, group2: (foo) ;"),
            "(NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)"
        );
        assert_eq!(
            show("undisclosed-recipients:;"),
            "(NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)"
        );
        // RFC 5322 Appendix A.1.3, and a group left open.
        assert_eq!(
            show(
                "A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)"
            ),
            "(NIL NIL \"A Group\" NIL)(\"Chris Jones\" NIL \"c\" \"public.example\")(NIL NIL \"joe\" \"example.org\")\
(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)"
        );
        assert_eq!(
            show("group: a@b.c"),
            "(NIL NIL \"group\" NIL)(NIL NIL \"a\" \"b.c\")(NIL NIL NIL NIL)"
        );
        // A colon inside a quoted display name is no group.
        assert_eq!(
            show("\"group: not\" <x@y>"),
            "(\"group: not\" NIL \"x\" \"y\")"
        );
    }

    #[test]
    fn mailboxes() {
        assert_eq!(
            show("user@domain (Real Name)"),
            "(\"Real Name\" NIL \"user\" \"domain\")"
        );
        assert_eq!(
            show("<@route:user@domain>"),
            "(NIL \"@route\" \"user\" \"domain\")"
        );
        assert_eq!(show("<@r1,@r2:u@d>"), "(NIL \"@r1,@r2\" \"u\" \"d\")");
        assert_eq!(
            show("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            "(\"Pete\" NIL \"pete\" \"silly.test\")"
        );
        assert_eq!(
            show("\"Joe Q. Public\" <john.q.public@example.com>"),
            "(\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")"
        );
        assert_eq!(
            show("Real   Spaced\t Name <x@y.z>"),
            "(\"Real Spaced Name\" NIL \"x\" \"y.z\")"
        );
        assert_eq!(show("\"a\\\"b\" <x@y.z>"), "(\"a\"b\" NIL \"x\" \"y.z\")");
        assert_eq!(show("\"\" <x@y.z>"), "(NIL NIL \"x\" \"y.z\")");
        assert_eq!(
            show("=?utf-8?q?J=C3=B6rg?= Smith <j@x.y>"),
            "(\"J\u{f6}rg Smith\" NIL \"j\" \"x.y\")"
        );
        assert_eq!(show("x@[1.2.3.4]"), "(NIL NIL \"x\" \"[1.2.3.4]\")");
        assert_eq!(
            show("\"local part\"@example.com"),
            "(NIL NIL \"local part\" \"example.com\")"
        );
        assert_eq!(
            show("a@b.c, , d@e.f"),
            "(NIL NIL \"a\" \"b.c\")(NIL NIL \"d\" \"e.f\")"
        );
        assert_eq!(show("user"), "(NIL NIL \"user\" \"MISSING_DOMAIN\")");
        assert_eq!(
            show("Name <>"),
            "(\"Name\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
        );
        assert_eq!(show("<>"), "");
        assert_eq!(show(""), "");
        assert_eq!(show("<a@b.c"), "(NIL NIL \"a\" \"b.c\")");
        assert_eq!(show("Jörg <j@x.y>"), "(\"Jörg\" NIL \"j\" \"x.y\")");
        // A forgotten comma between two addresses.
        assert_eq!(
            show("A <a@b.c> =?utf-8?q?=2C?= B <b@c.d>, C <c@d.e>"),
            "(\"A\" NIL \"a\" \"b.c\")(\", B\" NIL \"b\" \"c.d\")(\"C\" NIL \"c\" \"d.e\")"
        );
    }

    #[test]
    fn hostile_input_is_linear_and_safe() {
        for v in [
            "(((((",
            "\"",
            "[",
            "<<<<>>>>",
            ":::;;;,,,",
            "@@@",
            "\\",
            ")))]]]",
        ] {
            parse_list(v.repeat(10_000).as_bytes());
        }
    }
}
