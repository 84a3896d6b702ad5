//! The mbox format (RFC 4155, and the mboxrd/mboxo variants it describes in its appendix):
//! reading with `From ` line dates and the Status/X-Status/X-Keywords flag headers, and
//! writing mboxrd.
//!
//! - A line starting with `From ` starts a message: writers of both variants quote every such
//!   line of a body, so no other line can. The empty line before it belongs to the format,
//!   not to the message, and is removed.
//! - Unquoting: mboxrd (the default, and what `yubin export mbox` writes) removes one `>`
//!   from every `>…>From ` line; mboxo removes it from `>From ` lines only. An mboxo writer
//!   quoted `From ` but left `>From ` alone, so no reader can tell them apart: reading mboxo as
//!   mboxrd differs only for body lines that began with `>From ` or `>>From ` (rare).
//! - The `From ` line's date (asctime, `Sat Jan  1 08:00:00 2023`, UTC unless an offset
//!   follows the time) is the internal date; without one, the `Date:` header's, else now.
//! - Flags (the conventions of mutt, Dovecot and Thunderbird): `Status:` R → `\Seen`;
//!   `X-Status:` A → `\Answered`, F → `\Flagged`, T → `\Draft`, D → `\Deleted`; `X-Keywords:`
//!   → keywords. Like Dovecot, these headers and its `X-UID`, `X-IMAP`, `X-IMAPbase` are
//!   removed from the stored message: they are the mailbox format's, not the message's.
//!   `Content-Length:` is kept.

use std::io::{self, BufRead, Write};

use store::{Flags, SystemFlags};

/// How `>From ` lines are unquoted (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    Mboxrd,
    Mboxo,
}

/// One message read from an mbox: its bytes as in the file (LF line ends, unquoted, without
/// the `From ` line and the separating empty line) and the `From ` line's date.
pub struct Raw {
    pub bytes: Vec<u8>,
    pub from_date: Option<i64>,
    /// Bytes of the file this message took, for progress.
    pub file_bytes: u64,
}

/// Reads messages one by one from an mbox stream.
pub struct Reader<R> {
    input: R,
    variant: Variant,
    /// The `From ` line that starts the next message, once read.
    pending: Option<Vec<u8>>,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, variant: Variant) -> Reader<R> {
        Reader {
            input,
            variant,
            pending: None,
            done: false,
        }
    }

    /// The next message, or `None` at the end. Text before the first `From ` line is not
    /// a message and is skipped.
    pub fn next_message(&mut self) -> io::Result<Option<Raw>> {
        let mut line = Vec::new();
        while self.pending.is_none() && !self.done {
            line.clear();
            if self.input.read_until(b'\n', &mut line)? == 0 {
                self.done = true;
            } else if line.starts_with(b"From ") {
                self.pending = Some(line.clone());
            }
        }
        let Some(from_line) = self.pending.take() else {
            return Ok(None);
        };
        let mut file_bytes = from_line.len() as u64;
        let mut bytes = Vec::new();
        loop {
            line.clear();
            let n = self.input.read_until(b'\n', &mut line)?;
            if n == 0 {
                self.done = true;
                break;
            }
            if line.starts_with(b"From ") {
                self.pending = Some(line.clone());
                break;
            }
            file_bytes += n as u64;
            bytes.extend_from_slice(unquote(&line, self.variant));
        }
        // The empty line that separates messages (RFC 4155 §2).
        if bytes.ends_with(b"\r\n\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n\n") || bytes == b"\n" {
            bytes.pop();
        }
        Ok(Some(Raw {
            bytes,
            from_date: from_line_date(&from_line),
            file_bytes,
        }))
    }
}

/// `line` without its quoting `>` (see the module doc).
fn unquote(line: &[u8], variant: Variant) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    let quoted = quotes > 0 && line[quotes..].starts_with(b"From ");
    match variant {
        Variant::Mboxrd if quoted => &line[1..],
        Variant::Mboxo if quoted && quotes == 1 => &line[1..],
        _ => line,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The date of a `From sender Www Mmm dd hh:mm:ss [zone] yyyy` line (asctime, as RFC 4155
/// §2 describes; UTC unless a `+hhmm`/`-hhmm` offset is given).
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let tokens: Vec<&str> = text.split_whitespace().collect();
    // tokens[0] = "From", tokens[1] = the sender; the date follows.
    let m = (2..tokens.len()).find(|&i| MONTHS.contains(&tokens[i]))?;
    let month = MONTHS.iter().position(|x| *x == tokens[m])? as u32 + 1;
    let day: u32 = tokens.get(m + 1)?.parse().ok()?;
    let mut hms = tokens.get(m + 2)?.split(':').map(|p| p.parse::<u32>());
    let (h, mi) = (hms.next()?.ok()?, hms.next()?.ok()?);
    let s = hms.next().transpose().ok()?.unwrap_or(0);
    let mut offset = 0i64;
    let mut year = None;
    for t in tokens.iter().skip(m + 3).take(2) {
        if let Ok(y) = t.parse::<i32>()
            && t.len() == 4
        {
            year = Some(y);
        } else if (t.starts_with('+') || t.starts_with('-')) && t.len() == 5 {
            let v: i64 = t[1..].parse().ok()?;
            offset = (v / 100 * 3600 + v % 100 * 60) * if t.starts_with('-') { -1 } else { 1 };
        }
    }
    let date = chrono::NaiveDate::from_ymd_opt(year?, month, day)?.and_hms_opt(h, mi, s)?;
    Some(date.and_utc().timestamp() - offset)
}

/// Header fields that hold mailbox state, not message content (Dovecot hides the same).
const STATE_HEADERS: &[&str] = &[
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imap",
    "x-imapbase",
];

/// Takes the flag headers out of `msg` (see the module doc): the message without them, and
/// the flags and keywords they held. Keywords that are not IMAP atoms are dropped.
pub fn take_state_headers(msg: &[u8]) -> (Vec<u8>, Flags) {
    let mut flags = Flags::default();
    let mut out = Vec::with_capacity(msg.len());
    let mut pos = 0;
    let mut dropping = false;
    while pos < msg.len() {
        let end = msg[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(msg.len(), |i| pos + i + 1);
        let line = &msg[pos..end];
        if line == b"\n" || line == b"\r\n" {
            out.extend_from_slice(&msg[pos..]);
            return (out, flags);
        }
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation {
            dropping = false;
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase();
                if STATE_HEADERS.contains(&name.as_str()) {
                    dropping = true;
                    apply_state(&name, &line[colon + 1..], &mut flags);
                }
            }
        } else if dropping {
            // A folded X-Keywords continues its list.
            let name = "x-keywords-continued";
            apply_state(name, line, &mut flags);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        pos = end;
    }
    (out, flags)
}

fn apply_state(name: &str, value: &[u8], flags: &mut Flags) {
    let value = String::from_utf8_lossy(value);
    match name {
        "status" if value.contains('R') => flags.system.insert(SystemFlags::SEEN),
        "x-status" => {
            for (c, f) in [
                ('A', SystemFlags::ANSWERED),
                ('F', SystemFlags::FLAGGED),
                ('T', SystemFlags::DRAFT),
                ('D', SystemFlags::DELETED),
            ] {
                if value.contains(c) {
                    flags.system.insert(f);
                }
            }
        }
        "x-keywords" | "x-keywords-continued" => {
            for k in value.split([' ', '\t', ',', '\r', '\n']) {
                if store::backend::keywords::check_keyword(k).is_ok()
                    && !flags.keywords.iter().any(|o| o.eq_ignore_ascii_case(k))
                {
                    flags.keywords.push(k.to_string());
                }
            }
        }
        _ => {}
    }
}

/// Writes one message as mboxrd: the `From ` line with `date`, the message with LF line ends,
/// its flags in `Status`/`X-Status`/`X-Keywords` and its UID in `X-UID` at the end of the
/// header (where Dovecot puts them), `From ` lines quoted, and the separating empty line.
pub fn write_message(
    out: &mut dyn Write,
    stored: &[u8],
    flags: &Flags,
    date: i64,
    uid: u32,
) -> io::Result<()> {
    let when = chrono::DateTime::from_timestamp(date, 0).unwrap_or_default();
    writeln!(
        out,
        "From MAILER-DAEMON {}",
        when.format("%a %b %e %H:%M:%S %Y")
    )?;
    let lf = to_lf(stored);
    let header_end = lf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(lf.len(), |i| i + 1);
    let (header, body) = lf.split_at(header_end);
    write_quoted(out, header)?;
    if !header.is_empty() && !header.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    let s = flags.system;
    out.write_all(if s.contains(SystemFlags::SEEN) {
        b"Status: RO\n"
    } else {
        b"Status: O\n"
    })?;
    let x: String = [
        (SystemFlags::ANSWERED, 'A'),
        (SystemFlags::FLAGGED, 'F'),
        (SystemFlags::DRAFT, 'T'),
        (SystemFlags::DELETED, 'D'),
    ]
    .iter()
    .filter(|(f, _)| s.contains(*f))
    .map(|(_, c)| *c)
    .collect();
    if !x.is_empty() {
        writeln!(out, "X-Status: {x}")?;
    }
    if !flags.keywords.is_empty() {
        writeln!(out, "X-Keywords: {}", flags.keywords.join(" "))?;
    }
    writeln!(out, "X-UID: {uid}")?;
    write_quoted(out, body)?;
    if !lf.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

/// mboxrd quoting: one more `>` before every `>…>From ` line.
fn write_quoted(out: &mut dyn Write, text: &[u8]) -> io::Result<()> {
    for line in text.split_inclusive(|&b| b == b'\n') {
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if line[quotes..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    Ok(())
}

/// CRLF line ends as LF (mbox files are read and written by Unix tools).
fn to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The highest `X-UID` of the messages of an mbox this command exported (0 if none): a
/// resumed export appends only messages with a higher UID.
pub fn last_uid(input: impl BufRead) -> io::Result<u32> {
    let mut reader = Reader::new(input, Variant::Mboxrd);
    let mut last = 0;
    while let Some(raw) = reader.next_message()? {
        let header_end = raw
            .bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or(raw.bytes.len());
        for line in raw.bytes[..header_end].split(|&b| b == b'\n') {
            if line.len() > 6 && line[..6].eq_ignore_ascii_case(b"x-uid:") {
                let v = String::from_utf8_lossy(&line[6..]);
                last = last.max(v.trim().parse().unwrap_or(0));
            }
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], variant: Variant) -> Vec<Raw> {
        let mut r = Reader::new(data, variant);
        let mut v = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            v.push(m);
        }
        v
    }

    #[test]
    fn messages_dates_and_unquoting() {
        let data = b"From a@b Sat Jan  1 08:00:00 2023\nSubject: x\n\n>From me\n>>From you\n\nFrom c@d Mon Feb 13 10:20:30 +0900 2023\nSubject: y\n\nbody\n\n";
        let rd = read_all(data, Variant::Mboxrd);
        assert_eq!(rd.len(), 2);
        assert_eq!(rd[0].bytes, b"Subject: x\n\nFrom me\n>From you\n");
        assert_eq!(rd[0].from_date, Some(1_672_560_000));
        assert_eq!(rd[1].bytes, b"Subject: y\n\nbody\n");
        assert_eq!(rd[1].from_date, Some(1_676_283_630 - 9 * 3600));
        let o = read_all(data, Variant::Mboxo);
        assert_eq!(o[0].bytes, b"Subject: x\n\nFrom me\n>>From you\n");
    }

    #[test]
    fn flags_headers_are_taken_out() {
        let msg = b"Subject: s\nStatus: RO\nX-Status: AF\nX-Keywords: $Forwarded work\n  later\nX-UID: 4\nTo: t\n\nStatus: body\n";
        let (rest, flags) = take_state_headers(msg);
        assert_eq!(rest, b"Subject: s\nTo: t\n\nStatus: body\n");
        assert!(flags.system.contains(SystemFlags::SEEN));
        assert!(flags.system.contains(SystemFlags::ANSWERED));
        assert!(flags.system.contains(SystemFlags::FLAGGED));
        assert!(!flags.system.contains(SystemFlags::DELETED));
        assert_eq!(flags.keywords, ["$Forwarded", "work", "later"]);
    }

    #[test]
    fn write_then_read_gives_the_message_back() {
        let stored = b"Subject: s\r\n\r\nFrom here\r\n>From there\r\nend\r\n";
        let flags = Flags {
            system: SystemFlags::SEEN,
            keywords: vec!["$Junk".into()],
        };
        let mut out = Vec::new();
        write_message(&mut out, stored, &flags, 1_700_000_000, 7).unwrap();
        write_message(&mut out, b"A: b\r\n\r\nx\r\n", &Flags::default(), 5, 8).unwrap();
        let msgs = read_all(&out, Variant::Mboxrd);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].from_date, Some(1_700_000_000));
        let (bytes, f) = take_state_headers(&msgs[0].bytes);
        assert_eq!(bytes, b"Subject: s\n\nFrom here\n>From there\nend\n");
        assert_eq!(f, flags);
        assert_eq!(last_uid(&out[..]).unwrap(), 8);
    }
}
