//! POP3 command parser.
//!
//! RFC 1939 §3: "Commands in the POP3 consist of a case-insensitive keyword, possibly followed
//! by one or more arguments. All commands are terminated by a CRLF pair." The parser takes one
//! complete line (as framed by the caller, with or without its line end) and never panics on
//! client input.

use std::fmt;

/// A parsed POP3 command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` — RFC 1939 §7.
    User(String),
    /// `PASS string` — RFC 1939 §7. The whole rest of the line, spaces included ("since the
    /// PASS command has exactly one argument, a POP3 server may treat spaces in the argument
    /// as part of the password").
    Pass(String),
    /// `AUTH [mechanism [initial-response]]` — RFC 5034 §4. No mechanism asks for the list of
    /// mechanisms (a widespread pre-RFC 5034 convention, still used by clients).
    Auth {
        mechanism: Option<String>,
        initial_response: Option<String>,
    },
    /// `CAPA` — RFC 2449 §5.
    Capa,
    /// `STLS` — RFC 2595 §4.
    Stls,
    /// `STAT` — RFC 1939 §5.
    Stat,
    /// `LIST [msg]` — RFC 1939 §5.
    List(Option<u32>),
    /// `RETR msg` — RFC 1939 §5.
    Retr(u32),
    /// `DELE msg` — RFC 1939 §5.
    Dele(u32),
    /// `NOOP` — RFC 1939 §5.
    Noop,
    /// `RSET` — RFC 1939 §5.
    Rset,
    /// `QUIT` — RFC 1939 §4 and §6.
    Quit,
    /// `TOP msg n` — RFC 1939 §7.
    Top { msg: u32, lines: u32 },
    /// `UIDL [msg]` — RFC 1939 §7.
    Uidl(Option<u32>),
}

impl fmt::Debug for Command {
    // Passwords and SASL responses never reach debug output or logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Pass(_) => f.write_str("Pass(<redacted>)"),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field("initial_response", &initial_response.as_ref().map(|_| ".."))
                .finish(),
            Command::User(u) => f.debug_tuple("User").field(u).finish(),
            Command::Capa => f.write_str("Capa"),
            Command::Stls => f.write_str("Stls"),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Quit => f.write_str("Quit"),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
        }
    }
}

/// Why a line is not a valid command; the `Display` text is meant for the `-ERR` reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command")]
    Empty,
    #[error("unknown command")]
    Unknown,
    #[error("missing argument")]
    MissingArgument,
    #[error("too many arguments")]
    TooManyArguments,
    #[error("invalid number")]
    BadNumber,
    /// Keywords and arguments are printable ASCII (RFC 1939 §3); passwords and user names may
    /// be UTF-8 but must be valid UTF-8.
    #[error("invalid characters in command")]
    BadCharacters,
}

impl Command {
    /// Parses one command line. The line end (CRLF, or a bare LF from sloppy clients) may be
    /// included.
    ///
    /// `command = keyword *(SP argument) CRLF` — RFC 1939 §3.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = strip_line_end(line);
        let line = std::str::from_utf8(line).map_err(|_| ParseError::BadCharacters)?;
        if line.chars().any(|c| c.is_control()) {
            return Err(ParseError::BadCharacters);
        }
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let (keyword, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, Some(r)),
            None => (line, None),
        };
        // RFC 2449 §3: keywords are 3 or 4 characters; anything longer is unknown anyway.
        if keyword.len() > 4 || !keyword.is_ascii() {
            return Err(ParseError::Unknown);
        }
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "PASS" {
            // `pass = "PASS" SP string` — RFC 1939 §7: everything after the one space.
            return match rest {
                Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_string())),
                _ => Err(ParseError::MissingArgument),
            };
        }
        // Other commands take space-separated tokens; tolerate extra or trailing spaces.
        let args: Vec<&str> = rest
            .map(|r| r.split(' ').filter(|a| !a.is_empty()).collect())
            .unwrap_or_default();
        match keyword.as_str() {
            "USER" => match args.as_slice() {
                [name] => Ok(Command::User((*name).to_string())),
                [] => Err(ParseError::MissingArgument),
                _ => Err(ParseError::TooManyArguments),
            },
            "AUTH" => match args.as_slice() {
                [] => Ok(Command::Auth {
                    mechanism: None,
                    initial_response: None,
                }),
                [mech] => Ok(Command::Auth {
                    mechanism: Some(mech.to_ascii_uppercase()),
                    initial_response: None,
                }),
                [mech, ir] => Ok(Command::Auth {
                    mechanism: Some(mech.to_ascii_uppercase()),
                    initial_response: Some((*ir).to_string()),
                }),
                _ => Err(ParseError::TooManyArguments),
            },
            "CAPA" => no_args(&args, Command::Capa),
            "STLS" => no_args(&args, Command::Stls),
            "STAT" => no_args(&args, Command::Stat),
            "NOOP" => no_args(&args, Command::Noop),
            "RSET" => no_args(&args, Command::Rset),
            "QUIT" => no_args(&args, Command::Quit),
            "LIST" => optional_number(&args).map(Command::List),
            "UIDL" => optional_number(&args).map(Command::Uidl),
            "RETR" => one_number(&args).map(Command::Retr),
            "DELE" => one_number(&args).map(Command::Dele),
            "TOP" => match args.as_slice() {
                [msg, lines] => Ok(Command::Top {
                    msg: number(msg)?,
                    lines: number(lines)?,
                }),
                [] | [_] => Err(ParseError::MissingArgument),
                _ => Err(ParseError::TooManyArguments),
            },
            _ => Err(ParseError::Unknown),
        }
    }
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn no_args(args: &[&str], cmd: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::TooManyArguments)
    }
}

fn optional_number(args: &[&str]) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(ParseError::TooManyArguments),
    }
}

fn one_number(args: &[&str]) -> Result<u32, ParseError> {
    match args {
        [n] => number(n),
        [] => Err(ParseError::MissingArgument),
        _ => Err(ParseError::TooManyArguments),
    }
}

/// `msg = 1*DIGIT` (decimal, no sign). Range checks against the maildrop happen in the session.
fn number(s: &str) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber);
    }
    s.parse().map_err(|_| ParseError::BadNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        Command::parse(s.as_bytes())
    }

    #[test]
    fn every_command() {
        assert_eq!(p("USER mrose\r\n"), Ok(Command::User("mrose".into())));
        assert_eq!(
            p("PASS secret with spaces \r\n"),
            Ok(Command::Pass("secret with spaces ".into()))
        );
        assert_eq!(
            p("AUTH\r\n"),
            Ok(Command::Auth {
                mechanism: None,
                initial_response: None
            })
        );
        assert_eq!(
            p("auth plain AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("AHRpbQB0YW5zdGFhZnRhbnN0YWFm".into())
            })
        );
        assert_eq!(
            p("AUTH LOGIN\r\n"),
            Ok(Command::Auth {
                mechanism: Some("LOGIN".into()),
                initial_response: None
            })
        );
        assert_eq!(p("CAPA\r\n"), Ok(Command::Capa));
        assert_eq!(p("stls\r\n"), Ok(Command::Stls));
        assert_eq!(p("STAT\r\n"), Ok(Command::Stat));
        assert_eq!(p("LIST\r\n"), Ok(Command::List(None)));
        assert_eq!(p("LIST 2\r\n"), Ok(Command::List(Some(2))));
        assert_eq!(p("RETR 1\r\n"), Ok(Command::Retr(1)));
        assert_eq!(p("DELE 1\r\n"), Ok(Command::Dele(1)));
        assert_eq!(p("NOOP\r\n"), Ok(Command::Noop));
        assert_eq!(p("RSET\r\n"), Ok(Command::Rset));
        assert_eq!(p("QUIT\r\n"), Ok(Command::Quit));
        assert_eq!(p("TOP 1 10\r\n"), Ok(Command::Top { msg: 1, lines: 10 }));
        assert_eq!(p("TOP 1 0"), Ok(Command::Top { msg: 1, lines: 0 }));
        assert_eq!(p("UIDL\n"), Ok(Command::Uidl(None)));
        assert_eq!(p("uidl 3\r\n"), Ok(Command::Uidl(Some(3))));
        assert_eq!(p("LIST 2 \r\n"), Ok(Command::List(Some(2))));
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(p("\r\n"), Err(ParseError::Empty));
        assert_eq!(p("   \r\n"), Err(ParseError::Empty));
        assert_eq!(
            p("APOP mrose c4c9334bac560ecc\r\n"),
            Err(ParseError::Unknown)
        );
        assert_eq!(p("RETRIEVE 1\r\n"), Err(ParseError::Unknown));
        assert_eq!(p("HELO\r\n"), Err(ParseError::Unknown));
        assert_eq!(p("RETR\r\n"), Err(ParseError::MissingArgument));
        assert_eq!(p("RETR x\r\n"), Err(ParseError::BadNumber));
        assert_eq!(p("RETR -1\r\n"), Err(ParseError::BadNumber));
        assert_eq!(p("RETR +1\r\n"), Err(ParseError::BadNumber));
        assert_eq!(p("RETR 99999999999\r\n"), Err(ParseError::BadNumber));
        assert_eq!(p("RETR 1 2\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(p("DELE\r\n"), Err(ParseError::MissingArgument));
        assert_eq!(p("LIST 1 2\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(p("TOP 1\r\n"), Err(ParseError::MissingArgument));
        assert_eq!(p("TOP 1 2 3\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(p("TOP 1 x\r\n"), Err(ParseError::BadNumber));
        assert_eq!(p("STAT 1\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(p("QUIT now\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(p("USER\r\n"), Err(ParseError::MissingArgument));
        assert_eq!(p("USER a b\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(p("PASS\r\n"), Err(ParseError::MissingArgument));
        assert_eq!(p("PASS \r\n"), Err(ParseError::MissingArgument));
        assert_eq!(p("AUTH PLAIN a b\r\n"), Err(ParseError::TooManyArguments));
        assert_eq!(
            Command::parse(b"USER \xff\xfe\r\n"),
            Err(ParseError::BadCharacters)
        );
        assert_eq!(p("NOOP\0\r\n"), Err(ParseError::BadCharacters));
        assert_eq!(p("RETR 1\r2\r\n"), Err(ParseError::BadCharacters));
        assert_eq!(Command::parse(b"\xc3\xa9TAT\r\n"), Err(ParseError::Unknown));
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", p("PASS hunter2\r\n").unwrap());
        assert!(!s.contains("hunter2"), "{s}");
        let s = format!("{:?}", p("AUTH PLAIN c2VjcmV0\r\n").unwrap());
        assert!(!s.contains("c2VjcmV0"), "{s}");
    }
}
