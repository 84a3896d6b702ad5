//! LIST/LSUB patterns (RFC 9051 §6.3.9): `*` matches any characters, `%` any but the
//! hierarchy delimiter. Matching runs in O(pattern × name) time and constant stack, whatever
//! the client sends: a pattern is compiled once per command, runs of wildcards collapse
//! (`**`, `*%`, `%*` are `*`; `%%` is `%`), and a name is matched by stepping the set of
//! reachable name positions through the pattern (an NFA simulation, no backtracking).
//! A pattern needing more literal characters than the longest name can hold matches nothing
//! and is not compiled further, so its size does not matter beyond one scan.
//!
//! `INBOX` is case-insensitive (RFC 9051 §5.1): the first five characters of the name
//! `INBOX` (or of `INBOX/...`) match a pattern's letters in any case.

use super::DELIM;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`
    Any,
    /// `%`
    Level,
}

/// A compiled pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
    literals: usize,
    /// Needs more characters than any name has.
    never: bool,
}

impl Pattern {
    /// Compiles `pattern` for names of at most `max_chars` characters.
    pub(crate) fn new(pattern: &str, max_chars: usize) -> Pattern {
        let mut toks: Vec<Tok> = Vec::new();
        let mut literals = 0usize;
        for c in pattern.chars() {
            let t = match c {
                '*' => Tok::Any,
                '%' => Tok::Level,
                c => {
                    literals += 1;
                    if literals > max_chars {
                        return Pattern {
                            toks: Vec::new(),
                            literals,
                            never: true,
                        };
                    }
                    Tok::Lit(c)
                }
            };
            match (toks.last_mut(), t) {
                (Some(Tok::Any), Tok::Any | Tok::Level) | (Some(Tok::Level), Tok::Level) => {}
                (Some(last @ Tok::Level), Tok::Any) => *last = Tok::Any,
                _ => toks.push(t),
            }
        }
        Pattern {
            toks,
            literals,
            never: false,
        }
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        if self.never {
            return false;
        }
        let chars: Vec<char> = name.chars().collect();
        let n = chars.len();
        if self.literals > n {
            return false;
        }
        // RFC 9051 §5.1: the INBOX part of a name matches in any case.
        let inbox = if name == store::INBOX || name.starts_with("INBOX/") {
            store::INBOX.len()
        } else {
            0
        };
        let eq = |k: usize, p: char| {
            chars
                .get(k)
                .is_some_and(|&c| c == p || (k < inbox && c.eq_ignore_ascii_case(&p)))
        };
        // cur[k]: the pattern so far can match the first k characters of the name.
        let mut cur = vec![false; n + 1];
        let mut next = vec![false; n + 1];
        cur[0] = true;
        for &t in &self.toks {
            match t {
                Tok::Lit(p) => {
                    next[0] = false;
                    for k in 0..n {
                        next[k + 1] = cur[k] && eq(k, p);
                    }
                }
                Tok::Any => {
                    let mut reached = false;
                    for k in 0..=n {
                        reached |= cur[k];
                        next[k] = reached;
                    }
                }
                Tok::Level => {
                    let mut reached = false;
                    for k in 0..=n {
                        reached |= cur[k];
                        next[k] = reached;
                        // `%` does not cross the delimiter.
                        if chars.get(k) == Some(&DELIM) {
                            reached = false;
                        }
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
            if !cur.contains(&true) {
                return false;
            }
        }
        cur[n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Pattern::new(p, 1024).matches(n)
    }

    #[test]
    fn rfc_9051_examples() {
        // §6.3.9: "foo*" matches foo, foo/bar; "foo%" matches foo but not foo/bar.
        assert!(m("foo*", "foo"));
        assert!(m("foo*", "foo/bar"));
        assert!(m("foo*", "foobar/baz"));
        assert!(m("foo%", "foo"));
        assert!(m("foo%", "foobar"));
        assert!(!m("foo%", "foo/bar"));
        assert!(m("foo/%", "foo/bar"));
        assert!(!m("foo/%", "foo/bar/baz"));
        assert!(m("%/%", "foo/bar"));
        assert!(m("*", "a/b/c"));
        assert!(m("%", "Sent"));
        assert!(!m("%", "a/b"));
        assert!(m("a*c", "a/b/c"));
        assert!(!m("Sen", "Sent"));
        assert!(m("S%t", "Sent"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("%", ""));
        assert!(m("a%%b", "ab"));
        assert!(m("a%*%b", "a/x/b"));
        assert!(!m("a%%b", "a/b"));
    }

    #[test]
    fn percent_needs_the_right_split() {
        // A greedy first choice of `b` fails here; the matcher must keep every choice.
        assert!(m("a*b%c", "ab/xbc"));
        assert!(!m("a*b%c", "ab/x/c"));
        assert!(m("*/%", "x/y/z"));
        assert!(!m("*/%/%/%", "x/y/z"));
    }

    #[test]
    fn inbox_in_any_case() {
        for p in ["inbox", "INBOX", "InBoX", "i*", "In%", "*box", "I*X", "*"] {
            assert!(m(p, "INBOX"), "{p}");
        }
        assert!(m("inbox/*", "INBOX/Sub"));
        assert!(!m("inbox/sub", "INBOX/Sub"));
        assert!(!m("inbox2", "INBOX"));
        // Only the name INBOX is special.
        assert!(!m("work/inbox", "work/INBOX"));
        assert!(!m("sent", "Sent"));
    }

    #[test]
    fn non_ascii() {
        assert!(m("Entw%rfe", "Entwürfe"));
        assert!(m("日*", "日本/東京"));
        assert!(!m("日%", "日本/東京"));
    }

    #[test]
    fn long_patterns_are_fast() {
        let start = std::time::Instant::now();
        let name = format!("{}y", "x".repeat(1000));
        // 10,000 wildcards collapse to one.
        let stars = format!("{}x", "*".repeat(10_000));
        assert!(!m(&stars, &name));
        assert!(m(&format!("{}y", "*%".repeat(5_000)), &name));
        // Alternating wildcards and letters: 10,000 characters, as many literals as fit.
        let alt = "*x".repeat(5_000);
        assert!(!m(&alt, &name));
        assert!(m(&"*x".repeat(1000), &format!("{}x", "x".repeat(999))));
        let pct = "%x".repeat(5_000);
        assert!(!m(&pct, "x/x"));
        // More literals than the longest name: matches nothing, compiled no further.
        let p = Pattern::new(&"x".repeat(10_000), 1024);
        assert!(p.never && !p.matches(&"x".repeat(1024)));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
}
