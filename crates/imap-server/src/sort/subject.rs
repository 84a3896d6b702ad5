//! Base subject extraction — RFC 5256 §2.1, with the grammar of §5:
//!
//! ```text
//! subj-refwd   = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//! subj-blob    = "[" *BLOBCHAR "]" *WSP
//! subj-fwd-hdr = "[fwd:"
//! subj-fwd-trl = "]"
//! subj-leader  = (*subj-blob subj-refwd) / WSP
//! subj-trailer = "(fwd)" / WSP
//! subj-base    = NONWSP *(*WSP NONWSP)
//! BLOBCHAR     = %x01-5a / %x5c / %x5e-ff   ; any CHAR8 except '[' and ']'
//! ```
//!
//! The text is already decoded (RFC 2047 encoded-words, step 1). The work is linear in the
//! length of the subject: the steps move two indexes inward instead of rebuilding strings,
//! and a run of blobs is scanned once however many of them step (4) then removes one by one.

/// The base subject and whether extracting it removed a reply or forward marker (a
/// `subj-refwd`, a `(fwd)` trailer or a `[fwd: ...]` wrapper), which the REFERENCES
/// algorithm asks for (RFC 5256 §3, step 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseSubject {
    pub text: String,
    pub reply: bool,
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Step (1) after decoding: tabs and line breaks (continuations) become spaces, runs of
/// spaces one space.
fn normalize_whitespace(subject: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(subject.len());
    for &b in subject.as_bytes() {
        let b = if matches!(b, b'\t' | b'\r' | b'\n') {
            b' '
        } else {
            b
        };
        if !(b == b' ' && out.last() == Some(&b' ')) {
            out.push(b);
        }
    }
    out
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `subj-blob` at `s[i..end]`: the index after it (and its trailing WSP).
fn blob_at(s: &[u8], i: usize, end: usize) -> Option<usize> {
    if s.get(i) != Some(&b'[') || i >= end {
        return None;
    }
    let mut j = i + 1;
    while j < end {
        match s[j] {
            b']' => {
                j += 1;
                while j < end && is_wsp(s[j]) {
                    j += 1;
                }
                return Some(j);
            }
            b'[' => return None,
            _ => j += 1,
        }
    }
    None
}

/// `subj-refwd` at `s[i..end]`: the index after its `:`. Of `"fw" ["d"]` only the longer
/// match can succeed where "fwd" is written: after "fw", a "d" is neither WSP, "[" nor ":".
fn refwd_at(s: &[u8], i: usize, end: usize) -> Option<usize> {
    let s = &s[..end];
    let rest = s.get(i..)?;
    let mut j = if starts_with_ci(rest, b"re") {
        i + 2
    } else if starts_with_ci(rest, b"fwd") {
        i + 3
    } else if starts_with_ci(rest, b"fw") {
        i + 2
    } else {
        return None;
    };
    while j < end && is_wsp(s[j]) {
        j += 1;
    }
    if let Some(after) = blob_at(s, j, end) {
        j = after;
    }
    (s.get(j) == Some(&b':')).then_some(j + 1)
}

/// RFC 5256 §2.1 steps (1) to (7).
pub(crate) fn base_subject(subject: &str) -> BaseSubject {
    let s = normalize_whitespace(subject);
    let mut start = 0;
    let mut end = s.len();
    let mut reply = false;
    // A run of blobs from `chain.0` ends at `chain.1`, and what follows it is (or is not) a
    // subj-refwd ending at `chain.2`; valid while `start` lies inside the run (step 4 removes
    // its blobs one at a time, and neither the run's end nor what follows it changes).
    let mut chain: Option<(usize, usize, Option<usize>)> = None;
    loop {
        // (2) Trailers: "(fwd)" or WSP, as long as any is left.
        loop {
            if end > start && is_wsp(s[end - 1]) {
                end -= 1;
            } else if end - start >= 5 && s[end - 5..end].eq_ignore_ascii_case(b"(fwd)") {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        // The last non-WSP character, for "removing that prefix leaves a non-empty
        // subj-base" in step (4).
        let last_text = s[start..end]
            .iter()
            .rposition(|&b| !is_wsp(b))
            .map(|p| start + p);
        // (3), (4), repeated as (5) says.
        loop {
            if start >= end {
                break;
            }
            // (3) subj-leader = WSP ...
            if is_wsp(s[start]) {
                start += 1;
                continue;
            }
            // ... / (*subj-blob subj-refwd).
            let refwd = match chain {
                Some((from, to, refwd)) if from <= start && start <= to => refwd,
                _ => {
                    let mut j = start;
                    while let Some(next) = blob_at(&s, j, end) {
                        j = next;
                    }
                    let refwd = refwd_at(&s, j, end);
                    chain = Some((start, j, refwd));
                    refwd
                }
            };
            if let Some(after) = refwd {
                start = after;
                reply = true;
                chain = None;
                continue;
            }
            // (4) A leading blob goes if text remains after it.
            if let Some(after) = blob_at(&s, start, end)
                && last_text.is_some_and(|last| last >= after)
            {
                start = after;
                continue;
            }
            break;
        }
        // (6) "[fwd:" ... "]" around the whole: unwrap and start again at (2).
        if end - start >= 6 && starts_with_ci(&s[start..end], b"[fwd:") && s[end - 1] == b']' {
            start += 5;
            end -= 1;
            reply = true;
            chain = None;
            continue;
        }
        break;
    }
    let text = String::from_utf8_lossy(&s[start.min(end)..end]).into_owned();
    BaseSubject { text, reply }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> String {
        base_subject(s).text
    }

    /// The cases of imaptest's sort-subject mailbox and RFC 5256 §2.1's rules one by one.
    #[test]
    fn rfc_5256_rules() {
        assert_eq!(base(""), "");
        assert_eq!(base(" "), "");
        assert_eq!(base("a"), "a");
        assert_eq!(base("Re: foo"), "foo");
        assert_eq!(base("RE:foo"), "foo");
        assert_eq!(base("re : foo"), "foo");
        assert_eq!(base("Fw: foo"), "foo");
        assert_eq!(base("FWD: foo"), "foo");
        assert_eq!(base("Re: Re: Fwd: foo"), "foo");
        assert_eq!(base("Re[2]: foo"), "foo", "a blob inside subj-refwd");
        assert_eq!(base("Re [2]: foo"), "foo");
        assert_eq!(base("[list] Re: foo"), "foo", "blobs before subj-refwd");
        assert_eq!(base("[list] foo"), "foo", "step (4)");
        assert_eq!(base("[list]"), "[list]", "a blob alone is the subject");
        assert_eq!(base("[a][b]"), "[b]", "the last blob stays");
        assert_eq!(base("foo (fwd)"), "foo");
        assert_eq!(base("foo (FWD) (fwd) "), "foo");
        assert_eq!(base("foo(fwd)"), "foo");
        assert_eq!(base("[Fwd: foo]"), "foo");
        assert_eq!(base("Re: [FWD: c]"), "c");
        assert_eq!(base("[fwd: [fwd: re: [fwd: babylon]]]"), "babylon");
        assert_eq!(base("re: [fwd: [fwd: re: [fwd: babylon]]]"), "babylon");
        assert_eq!(
            base("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"),
            "b",
            "imaptest sort-subject message 5"
        );
        assert_eq!(base("Ad: Re: Ad: Re: Ad: x"), "Ad: Re: Ad: Re: Ad: x");
        assert_eq!(base("b (a)"), "b (a)");
        assert_eq!(base("Reply: x"), "Reply: x", "not a subj-refwd");
        assert_eq!(base("Rex"), "Rex");
        assert_eq!(base("a\t\tb\r\n c"), "a b c", "step (1) whitespace");
        assert_eq!(base("  Re:  Re:   x  y  "), "x y");
        assert_eq!(base("Re: "), "");
        assert_eq!(base("Re: [x]"), "[x]");
        assert_eq!(base("[fwd: ]"), "");
        assert_eq!(base("[fwd:x"), "[fwd:x");
        assert_eq!(base("Re: caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn reply_or_forward() {
        assert!(!base_subject("foo").reply);
        assert!(base_subject("Re: foo").reply);
        assert!(base_subject("foo (fwd)").reply);
        assert!(base_subject("[Fwd: foo]").reply);
        assert!(
            !base_subject("[list] foo").reply,
            "a blob is no reply marker"
        );
        assert!(!base_subject("Re").reply);
    }

    /// Hostile subjects stay linear: many blobs before the text, many markers.
    #[test]
    fn linear_time() {
        let blobs = "[a]".repeat(200_000) + "x";
        let t = std::time::Instant::now();
        assert_eq!(base(&blobs), "x");
        let res = "Re: ".repeat(200_000) + "x";
        assert_eq!(base(&res), "x");
        let fwds = "[fwd: ".repeat(50_000) + "x" + &"]".repeat(50_000);
        assert_eq!(base(&fwds), "x");
        let trailers = "x".to_string() + &" (fwd)".repeat(200_000);
        assert_eq!(base(&trailers), "x");
        let unclosed = "[".repeat(100_000) + "x";
        assert_eq!(base(&unclosed), unclosed);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
