//! SMTP command parsing: one complete command line in, one [`Command`] out.
//!
//! Framing (reading a CRLF line, bounded) is the caller's job; this module only parses.
//! Verbs are case-insensitive (RFC 5321 §2.4).

use crate::dsn::RcptParams;
use crate::path::{MailParams, ReversePath, parse_mail, parse_rcpt};
use crate::{ForwardPath, ParseError};

/// A parsed client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF` — RFC 5321 §4.1.1.1.
    Ehlo(String),
    /// `helo = "HELO" SP Domain CRLF` — RFC 5321 §4.1.1.1.
    Helo(String),
    /// RFC 5321 §4.1.1.2.
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    /// RFC 5321 §4.1.1.3, with the RFC 3461 parameters.
    Rcpt { to: ForwardPath, params: RcptParams },
    /// `data = "DATA" CRLF` — RFC 5321 §4.1.1.4.
    Data,
    /// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF` — RFC 3030 §3.
    Bdat { size: u64, last: bool },
    /// `rset = "RSET" CRLF` — RFC 5321 §4.1.1.5.
    Rset,
    /// `noop = "NOOP" [ SP String ] CRLF` — RFC 5321 §4.1.1.9.
    Noop,
    /// `quit = "QUIT" CRLF` — RFC 5321 §4.1.1.10.
    Quit,
    /// `vrfy = "VRFY" SP String CRLF` — RFC 5321 §4.1.1.6.
    Vrfy(String),
    /// `expn = "EXPN" SP String CRLF` — RFC 5321 §4.1.1.7.
    Expn(String),
    /// `help = "HELP" [ SP String ] CRLF` — RFC 5321 §4.1.1.8.
    Help,
    /// `starttls = "STARTTLS" CRLF` — RFC 3207 §4.
    StartTls,
    /// `auth = "AUTH" SP sasl-mech [SP initial-response] CRLF` — RFC 4954 §4.
    /// `mechanism` is upper-cased; `initial` is still base64 (`=` for empty).
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// Parses one command line; a trailing CRLF (or bare LF) is ignored.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let verb_end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let (verb, rest) = line.split_at(verb_end);
    if verb.is_empty() || verb.len() > 16 || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::UnknownCommand);
    }
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    // Arguments may be UTF-8 (RFC 6531 §3.3), never other bytes.
    let rest = std::str::from_utf8(rest).map_err(|_| ParseError::Syntax("Invalid UTF-8"))?;
    if rest.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::Syntax("Control characters not allowed"));
    }
    let arg = rest.trim_matches([' ', '\t']);
    let no_arg = |cmd: Command| {
        if arg.is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Syntax("No parameters allowed"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" => {
            // Liberal: any single token (clients send bare hostnames, IPs without brackets).
            if arg.is_empty() {
                return Err(ParseError::Syntax("Hostname required"));
            }
            let name = arg.split([' ', '\t']).next().unwrap_or(arg).to_string();
            Ok(if verb == "EHLO" {
                Command::Ehlo(name)
            } else {
                Command::Helo(name)
            })
        }
        "MAIL" => {
            let rest = strip_keyword(arg, "FROM:").ok_or(ParseError::Syntax("Expected FROM:"))?;
            let (from, params) = parse_mail(rest)?;
            Ok(Command::Mail { from, params })
        }
        "RCPT" => {
            let rest = strip_keyword(arg, "TO:").ok_or(ParseError::Syntax("Expected TO:"))?;
            let (to, params) = parse_rcpt(rest)?;
            Ok(Command::Rcpt { to, params })
        }
        "DATA" => no_arg(Command::Data),
        "BDAT" => parse_bdat(arg),
        "RSET" => no_arg(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        // RFC 5321 §4.1.1.10: QUIT takes no argument, but refusing to quit helps nobody.
        "QUIT" => Ok(Command::Quit),
        "VRFY" | "EXPN" => {
            if arg.is_empty() {
                return Err(ParseError::Syntax("Argument required"));
            }
            Ok(if verb == "VRFY" {
                Command::Vrfy(arg.to_string())
            } else {
                Command::Expn(arg.to_string())
            })
        }
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_arg(Command::StartTls),
        "AUTH" => {
            let mut parts = arg.split([' ', '\t']).filter(|s| !s.is_empty());
            let mechanism = parts
                .next()
                .ok_or(ParseError::Syntax("Mechanism required"))?
                .to_ascii_uppercase();
            let initial = parts.next().map(str::to_string);
            if parts.next().is_some() {
                return Err(ParseError::Syntax("Too many arguments"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(ParseError::UnknownCommand),
    }
}

/// Strips `FROM:` / `TO:` case-insensitively, tolerating spaces before the colon
/// (`MAIL FROM : <a@b>` from some old clients).
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let word = keyword.trim_end_matches(':');
    let head = arg.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    arg[word.len()..]
        .trim_start_matches([' ', '\t'])
        .strip_prefix(':')
}

/// `chunk-size = 1*DIGIT`, `end-marker = "LAST"` — RFC 3030 §3.
fn parse_bdat(arg: &str) -> Result<Command, ParseError> {
    let mut parts = arg.split([' ', '\t']).filter(|s| !s.is_empty());
    let size = parts
        .next()
        .filter(|s| s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ParseError::Syntax("Bad chunk size"))?;
    let last = match parts.next() {
        None => false,
        Some(s) if s.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("Expected LAST")),
    };
    if parts.next().is_some() {
        return Err(ParseError::Syntax("Too many arguments"));
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;
    use mail_types::Address;

    fn parse(s: &str) -> Result<Command, ParseError> {
        parse_command(s.as_bytes())
    }

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn simple_commands_any_case() {
        assert_eq!(
            parse("EHLO client.example\r\n"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(
            parse("helo [192.0.2.1]\r\n"),
            Ok(Command::Helo("[192.0.2.1]".into()))
        );
        assert_eq!(parse("data\r\n"), Ok(Command::Data));
        assert_eq!(parse("RsEt\r\n"), Ok(Command::Rset));
        assert_eq!(parse("NOOP anything\r\n"), Ok(Command::Noop));
        assert_eq!(parse("QUIT\n"), Ok(Command::Quit));
        assert_eq!(parse("HELP MAIL\r\n"), Ok(Command::Help));
        assert_eq!(parse("starttls\r\n"), Ok(Command::StartTls));
        assert_eq!(parse("VRFY bob\r\n"), Ok(Command::Vrfy("bob".into())));
        assert_eq!(parse("EXPN list\r\n"), Ok(Command::Expn("list".into())));
    }

    #[test]
    fn mail_forms() {
        let plain = Ok(Command::Mail {
            from: ReversePath::Mailbox(addr("a@b.example")),
            params: MailParams::default(),
        });
        assert_eq!(parse("MAIL FROM:<a@b.example>\r\n"), plain);
        assert_eq!(parse("mail from: <a@b.example>\r\n"), plain);
        assert_eq!(parse("MAIL FROM:a@b.example\r\n"), plain);
        assert_eq!(
            parse("MAIL FROM:<@r1.example,@r2.example:a@b.example>\r\n"),
            plain
        );
        assert_eq!(
            parse("MAIL FROM:<>\r\n"),
            Ok(Command::Mail {
                from: ReversePath::Null,
                params: MailParams::default()
            })
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example> SIZE=1000 body=8bitmime SMTPUTF8 AUTH=<>\r\n"),
            Ok(Command::Mail {
                from: ReversePath::Mailbox(addr("a@b.example")),
                params: MailParams {
                    size: Some(1000),
                    body: Some(Body::EightBitMime),
                    smtputf8: true,
                    auth: Some("<>".into()),
                    ..MailParams::default()
                }
            })
        );
        assert_eq!(
            parse("MAIL FROM:<\"odd name\"@b.example> SIZE=10\r\n"),
            Ok(Command::Mail {
                from: ReversePath::Mailbox(addr("\"odd name\"@b.example")),
                params: MailParams {
                    size: Some(10),
                    ..MailParams::default()
                },
            })
        );
    }

    #[test]
    fn mail_errors() {
        assert_eq!(
            parse("MAIL <a@b.example>\r\n"),
            Err(ParseError::Syntax("Expected FROM:"))
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example\r\n"),
            Err(ParseError::BadSender)
        );
        assert_eq!(
            parse("MAIL FROM:<not an address>\r\n"),
            Err(ParseError::BadSender)
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example> FOO=1\r\n"),
            Err(ParseError::UnknownParameter)
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example> SIZE=x\r\n"),
            Err(ParseError::Syntax("Bad SIZE parameter"))
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example> BODY=9BIT\r\n"),
            Err(ParseError::Syntax("Bad BODY parameter"))
        );
        assert!(matches!(
            parse_command(b"MAIL FROM:<\xff@b>\r\n"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn rcpt_forms() {
        let ok = Ok(Command::Rcpt {
            to: ForwardPath::Mailbox(addr("u@d.example")),
            params: RcptParams::default(),
        });
        assert_eq!(parse("RCPT TO:<u@d.example>\r\n"), ok);
        assert_eq!(parse("rcpt to: <U@D.example>\r\n"), ok);
        assert_eq!(parse("RCPT TO:<@x.example:u@d.example>\r\n"), ok);
        assert_eq!(
            parse("RCPT TO:<Postmaster>\r\n"),
            Ok(Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParams::default(),
            })
        );
        assert_eq!(parse("RCPT TO:<>\r\n"), Err(ParseError::BadAddress));
        assert_eq!(parse("RCPT TO:<u>\r\n"), Err(ParseError::BadAddress));
        assert_eq!(
            parse("RCPT TO:<u@d.example> FOO=1\r\n"),
            Err(ParseError::UnknownParameter)
        );
        assert_eq!(
            parse("RCPT <u@d.example>\r\n"),
            Err(ParseError::Syntax("Expected TO:"))
        );
    }

    /// RFC 3461 §4: NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL (the §4 examples).
    #[test]
    fn dsn_parameters() {
        use crate::{Notify, Ret};
        assert_eq!(
            parse("RCPT TO:<u@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+40Example.COM\r\n"),
            Ok(Command::Rcpt {
                to: ForwardPath::Mailbox(addr("u@d.example")),
                params: RcptParams {
                    notify: Some(Notify {
                        success: true,
                        failure: false,
                        delay: true
                    }),
                    orcpt: Some("RFC822;Bob+40Example.COM".into()),
                },
            })
        );
        assert_eq!(
            parse("RCPT TO:<u@d.example> notify=never\r\n").map(|c| match c {
                Command::Rcpt { params, .. } => params.notify,
                _ => None,
            }),
            Ok(Some(Notify::NEVER))
        );
        assert!(matches!(
            parse("RCPT TO:<u@d.example> NOTIFY=NEVER,SUCCESS\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<u@d.example> NOTIFY=NEVER NOTIFY=NEVER\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<u@d.example> ORCPT=rfc822;a b\r\n"),
            Err(ParseError::UnknownParameter | ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<u@d.example> ORCPT=rfc822;a=b\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<u@d.example> NOTIFY\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            parse("MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ314159\r\n"),
            Ok(Command::Mail {
                from: ReversePath::Mailbox(addr("a@b.example")),
                params: MailParams {
                    ret: Some(Ret::Hdrs),
                    envid: Some("QQ314159".into()),
                    ..MailParams::default()
                },
            })
        );
        assert!(matches!(
            parse("MAIL FROM:<a@b.example> RET=ALL\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("MAIL FROM:<a@b.example> ENVID=a+zz\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("MAIL FROM:<a@b.example> RET=FULL RET=HDRS\r\n"),
            Err(ParseError::Syntax(_))
        ));
        // RET and ENVID belong to MAIL only; NOTIFY to RCPT only.
        assert_eq!(
            parse("RCPT TO:<u@d.example> RET=FULL\r\n"),
            Err(ParseError::UnknownParameter)
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.example> NOTIFY=NEVER\r\n"),
            Err(ParseError::UnknownParameter)
        );
    }

    #[test]
    fn bdat_framing() {
        assert_eq!(
            parse("BDAT 100\r\n"),
            Ok(Command::Bdat {
                size: 100,
                last: false
            })
        );
        assert_eq!(
            parse("bdat 0 last\r\n"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert!(parse("BDAT\r\n").is_err());
        assert!(parse("BDAT -1\r\n").is_err());
        assert!(parse("BDAT 10 FIRST\r\n").is_err());
        assert!(parse("BDAT 99999999999999999999999\r\n").is_err());
    }

    #[test]
    fn auth_and_syntax_errors() {
        assert_eq!(
            parse("AUTH plain AGEAYg==\r\n"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse("AUTH LOGIN\r\n"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            })
        );
        assert!(matches!(parse("AUTH\r\n"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("EHLO\r\n"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("DATA now\r\n"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse("STARTTLS x\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse("VRFY\r\n"), Err(ParseError::Syntax(_))));
        assert_eq!(parse("FOO\r\n"), Err(ParseError::UnknownCommand));
        assert_eq!(parse("\r\n"), Err(ParseError::UnknownCommand));
        assert_eq!(parse("GET / HTTP/1.1\r\n"), Err(ParseError::UnknownCommand));
        assert!(matches!(parse("NOOP a\0b\r\n"), Err(ParseError::Syntax(_))));
    }

    /// Bad input never panics: every prefix of tricky lines, and pseudo-random bytes.
    #[test]
    fn never_panics() {
        let samples: [&[u8]; 6] = [
            b"MAIL FROM:<@a,@b:\"q\\\"x\"@d.example> SIZE=1 BODY=x AUTH\r\n",
            b"RCPT TO:<\xce\xb8@\xce\xb4.example> X\r\n",
            b"BDAT 18446744073709551616 LAST\r\n",
            b"AUTH PLAIN = extra\r\n",
            b"MAIL FROM:<a@b.example> SIZE=99999999999999999999\r\n",
            "EHLO \u{00e9}\u{00e9}\r\n".as_bytes(),
        ];
        for s in samples {
            for end in 0..=s.len() {
                let _ = parse_command(&s[..end]);
            }
        }
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            let line: Vec<u8> = (0..(x % 40))
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    b"MAILFROM:<>@ .=\r\n\xff\"\\aA1"[(x >> 16) as usize % 20]
                })
                .collect();
            let _ = parse_command(&line);
            x = x.wrapping_add(7);
        }
        assert_eq!(
            parse("MAIL FROM:<a@b.example> SIZE=99999999999999999999\r\n").map(
                |c| matches!(c, Command::Mail { params, .. } if params.size == Some(u64::MAX))
            ),
            Ok(true)
        );
    }
}
