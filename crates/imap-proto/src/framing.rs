//! Command framing: finds where one command (its lines and literals) ends in the bytes
//! received so far, before anything is parsed — so literal bytes are never read as commands,
//! and oversized input is refused without being buffered.
//!
//! Invariants kept here:
//! - Positions are relative to the start of the caller's buffer, which must start at the
//!   first byte of the current command; the caller drops exactly the bytes this module tells
//!   it to (`consumed` / `skip`), and nothing else.
//! - Buffered input never exceeds one line (`max_line`) plus the literals that were accepted.
//! - A synchronising literal is announced once ([`Decoded::NeedsContinuation`]); the session
//!   sends `+` and the framer then waits for its bytes (RFC 9051 §4.3, §7.5).

use crate::types::{Tag, is_astring_char};

/// Limits for one command; every one is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest line (the text between literals, CRLF included). RFC 7162 §4 asks servers to
    /// accept lines of at least 8192 octets.
    pub max_line: usize,
    /// Largest single literal (for APPEND, the message size limit).
    pub max_literal: u64,
    /// Largest whole command: lines and literals together (MULTIAPPEND sends several).
    pub max_command: u64,
    /// Largest non-synchronising literal: 4096 when advertising `LITERAL-` (RFC 7888 §4),
    /// `u64::MAX` with `LITERAL+` (then `max_literal` still applies).
    pub max_non_sync_literal: u64,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_line: 64 * 1024,
            max_literal: 50 * 1024 * 1024,
            max_command: 100 * 1024 * 1024,
            max_non_sync_literal: u64::MAX,
        }
    }
}

/// What [`CommandFramer::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole command, lines and literals, CRLF included: give it to
    /// [`parse_command`](crate::parse_command), then drop `consumed` bytes.
    Complete {
        line_with_literals: &'a [u8],
        consumed: usize,
    },
    /// More bytes are needed; keep the buffer and read.
    Incomplete,
    /// The client sent a synchronising literal `{n}` and waits: send a continuation request
    /// (`+ Ready`), then read. Keep the buffer.
    NeedsContinuation { literal_size: u64 },
    /// The rest of a command refused earlier: drop `consumed` bytes silently and call again.
    Discard { consumed: usize },
}

/// Why a command was refused before parsing. The session answers (`tag BAD` or
/// `tag NO [TOOBIG]`), drops `skip` bytes, and goes on calling `decode`: if the command is not
/// over (a non-synchronising literal will follow), the framer returns [`Decoded::Discard`]
/// until it is. The connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("command line too long")]
    LineTooLong { tag: Option<Tag>, skip: usize },
    /// A literal over `max_literal`, over `max_non_sync_literal` (non-synchronising), or one
    /// that would make the command exceed `max_command`. For a synchronising literal the
    /// client waits for `+`, so answering is enough (RFC 9051 §7.5: it then abandons the
    /// command); RFC 7889 / RFC 9051 §7.1 suggest `NO [TOOBIG]` for APPEND.
    #[error("literal too large")]
    LiteralTooLarge {
        tag: Option<Tag>,
        size: u64,
        non_sync: bool,
        skip: usize,
    },
    #[error("command too long")]
    CommandTooLong { tag: Option<Tag>, skip: usize },
}

impl FrameError {
    /// The command's tag, when its first bytes had one, for a tagged reply.
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            FrameError::LineTooLong { tag, .. }
            | FrameError::LiteralTooLarge { tag, .. }
            | FrameError::CommandTooLong { tag, .. } => tag.as_ref(),
        }
    }

    /// How many bytes of the buffer to drop now.
    pub fn skip(&self) -> usize {
        match self {
            FrameError::LineTooLong { skip, .. }
            | FrameError::LiteralTooLarge { skip, .. }
            | FrameError::CommandTooLong { skip, .. } => *skip,
        }
    }
}

/// Most digits a literal's size may have: `u64::MAX` has 20. RFC 9051 §4.3 caps a literal
/// at 2^63 - 1 (19 digits), so more digits are never a size a client means; a line ending in
/// `{` and more digits is not a literal marker.
const MAX_SIZE_DIGITS: usize = 20;

/// Bytes of an overlong line's tail kept while the rest of it is dropped: room for the
/// longest literal marker a line can end in, `~{` 20 digits `+}` CR. The marker is then
/// found however the line was split.
const MARKER_TAIL: usize = 32;
const _: () = assert!("~{".len() + MAX_SIZE_DIGITS + "+}\r".len() <= MARKER_TAIL);

/// Streaming command framer. One per connection; it remembers how far it has scanned the
/// current command, so bytes are looked at once however the input is split.
#[derive(Debug, Clone)]
pub struct CommandFramer {
    limits: FrameLimits,
    /// Bytes of the current command already scanned.
    pos: usize,
    /// Start of the current line (after the last literal).
    line_start: usize,
    /// Literal bytes still to come before the next line.
    literal_left: u64,
    /// Size of the command so far (lines and literals).
    total: u64,
    /// Dropping the rest of a refused command.
    discarding: bool,
}

impl CommandFramer {
    pub fn new(limits: FrameLimits) -> Self {
        CommandFramer {
            limits,
            pos: 0,
            line_start: 0,
            literal_left: 0,
            total: 0,
            discarding: false,
        }
    }

    pub fn limits(&self) -> &FrameLimits {
        &self.limits
    }

    /// Changes the limits, between commands (e.g. at login, after which commands may carry
    /// whole messages).
    pub fn set_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
    }

    /// Forgets the current command, e.g. after the connection switched to TLS and the
    /// session dropped its buffer (RFC 9051 §6.2.1: no pipelined bytes cross STARTTLS).
    pub fn reset(&mut self) {
        *self = CommandFramer::new(self.limits);
    }

    /// Whether the rest of a refused command is being dropped (its bytes are not kept).
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Refuses the synchronising literal just announced ([`Decoded::NeedsContinuation`])
    /// instead of sending `+`: the client then abandons the command (RFC 9051 §7.5), so it
    /// ends here. Returns the command's tag and how many bytes of `buf` to drop.
    pub fn refuse_literal(&mut self, buf: &[u8]) -> (Option<Tag>, usize) {
        let consumed = self.pos.min(buf.len());
        let tag = tag_of(buf);
        self.reset();
        (tag, consumed)
    }

    /// Gives up the command being received (the server cannot hold it, e.g. its memory
    /// budget is used up while a non-synchronising literal arrives): returns its tag and how
    /// many bytes of `buf` to drop now; the rest of the command is dropped as it arrives
    /// ([`Decoded::Discard`]), as for a refused non-synchronising literal (RFC 7888 §4).
    pub fn abandon(&mut self, buf: &[u8]) -> (Option<Tag>, usize) {
        let tag = tag_of(buf);
        // Everything scanned goes but a partial line's tail, which may hold a literal marker.
        let keep = if self.literal_left > 0 {
            0
        } else {
            (buf.len().min(self.pos) - self.line_start.min(self.pos)).min(MARKER_TAIL)
        };
        let skip = self.pos.min(buf.len()).saturating_sub(keep);
        self.start_discarding(skip);
        (tag, skip)
    }

    /// Looks at `buf` (everything received and not yet dropped, starting at the current
    /// command) and says whether one whole command is there.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<'a>, FrameError> {
        loop {
            if self.literal_left > 0 {
                let avail = buf.len().saturating_sub(self.pos) as u64;
                let take = avail.min(self.literal_left);
                self.pos += take as usize;
                self.literal_left -= take;
                if self.literal_left > 0 {
                    return Ok(self.wait(buf.len()));
                }
                self.line_start = self.pos;
            }
            let rest = buf.get(self.pos..).unwrap_or_default();
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                self.pos = buf.len();
                let line_len = buf.len() - self.line_start;
                if line_len > self.limits.max_line && !self.discarding {
                    // The line end is not here yet: refuse now, drop what we have but the
                    // tail (a literal marker may end this line), and go on discarding.
                    let skip = buf.len().saturating_sub(MARKER_TAIL);
                    let tag = tag_of(buf);
                    self.start_discarding(skip);
                    return Err(FrameError::LineTooLong { tag, skip });
                }
                return Ok(self.wait(buf.len()));
            };
            let end = self.pos + lf + 1;
            let line = buf.get(self.line_start..end).unwrap_or_default();
            self.pos = end;
            self.total = self.total.saturating_add(line.len() as u64);
            let marker = literal_marker(line);
            if !self.discarding {
                let refused = if line.len() > self.limits.max_line {
                    Some(FrameError::LineTooLong {
                        tag: tag_of(buf),
                        skip: end,
                    })
                } else if self.total > self.limits.max_command {
                    Some(FrameError::CommandTooLong {
                        tag: tag_of(buf),
                        skip: end,
                    })
                } else if let Some((size, non_sync)) = marker {
                    let too_big = size > self.limits.max_literal
                        || self.total.saturating_add(size) > self.limits.max_command
                        || (non_sync && size > self.limits.max_non_sync_literal);
                    too_big.then(|| FrameError::LiteralTooLarge {
                        tag: tag_of(buf),
                        size,
                        non_sync,
                        skip: end,
                    })
                } else {
                    None
                };
                if let Some(err) = refused {
                    match marker {
                        // The client sends these bytes without waiting: drop them too.
                        Some((size, true)) => {
                            self.start_discarding(end);
                            self.literal_left = size;
                        }
                        _ => self.reset(),
                    }
                    return Err(err);
                }
            }
            match marker {
                Some((size, true)) => {
                    // RFC 7888 §3: a non-synchronising literal follows at once. The next line
                    // starts after it — here already when it is empty (`{0+}`, RFC 9051 §4.3
                    // allows size 0), else the line's bytes would count twice.
                    self.total = self.total.saturating_add(size);
                    self.literal_left = size;
                    self.line_start = self.pos;
                }
                Some((size, false)) if !self.discarding => {
                    // RFC 9051 §4.3: the client waits for a continuation request.
                    self.total = self.total.saturating_add(size);
                    self.literal_left = size;
                    self.line_start = self.pos;
                    return Ok(Decoded::NeedsContinuation { literal_size: size });
                }
                _ => {
                    // End of the command (in discard mode a synchronising literal ends it
                    // too: the client waits for a `+` that never comes, RFC 9051 §7.5).
                    let consumed = end;
                    let discarding = self.discarding;
                    self.reset();
                    return Ok(if discarding {
                        Decoded::Discard { consumed }
                    } else {
                        Decoded::Complete {
                            line_with_literals: buf.get(..consumed).unwrap_or_default(),
                            consumed,
                        }
                    });
                }
            }
        }
    }

    /// Waiting for bytes; in discard mode the scanned bytes are dropped at once (keeping a
    /// line's tail, which may hold a literal marker).
    fn wait(&mut self, len: usize) -> Decoded<'static> {
        if !self.discarding {
            return Decoded::Incomplete;
        }
        let keep = if self.literal_left > 0 {
            0
        } else {
            (len - self.line_start).min(MARKER_TAIL)
        };
        let consumed = self.pos.min(len).saturating_sub(keep);
        if consumed == 0 {
            return Decoded::Incomplete;
        }
        self.pos -= consumed;
        self.line_start = self.line_start.saturating_sub(consumed);
        Decoded::Discard { consumed }
    }

    /// Enters discard mode after the caller drops `skip` bytes.
    fn start_discarding(&mut self, skip: usize) {
        self.pos -= skip.min(self.pos);
        self.line_start = self.line_start.saturating_sub(skip);
        self.discarding = true;
    }
}

/// If `line` ends in a literal marker — `"{" number ["+"] "}" CRLF` or the literal8 form
/// `"~{" number64 ["+"] "}" CRLF` (RFC 3516 §4.2) — its size and whether it is
/// non-synchronising (RFC 7888). A size of up to [`MAX_SIZE_DIGITS`] digits too large for
/// `u64` is reported as `u64::MAX`, which every limit refuses; with more digits the line does
/// not end in a marker (an overlong line keeps only [`MARKER_TAIL`] bytes of its end, so a
/// longer marker would be seen or not depending on how the line arrived). A bare LF is
/// accepted in place of CRLF.
pub(crate) fn literal_marker(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let (inner, non_sync) = match inner.strip_suffix(b"+") {
        Some(i) => (i, true),
        None => (inner, false),
    };
    let digits = inner
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > MAX_SIZE_DIGITS || inner.len() == digits {
        return None;
    }
    let (head, number) = inner.split_at(inner.len() - digits);
    head.strip_suffix(b"{")?;
    let size = number.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
    });
    Some((size.unwrap_or(u64::MAX), non_sync))
}

/// The tag at the start of a command, if it has a valid one.
pub(crate) fn tag_of(buf: &[u8]) -> Option<Tag> {
    let len = buf
        .iter()
        .take_while(|&&b| is_astring_char(b) && b != b'+')
        .count();
    let end = buf.get(len).copied();
    if len == 0 || !matches!(end, Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    Tag::new(std::str::from_utf8(buf.get(..len)?).ok()?)
}
