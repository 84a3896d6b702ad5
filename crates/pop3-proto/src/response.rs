//! POP3 response encoder.
//!
//! `single-line = status [SP [resp-code SP] text] CRLF` — RFC 1939 §3, RFC 2449 §8.
//! Multi-line responses are a single line, then data lines (byte-stuffed, see
//! [`crate::DotStuffer`]), then `.` CRLF.

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// Extended response codes (RFC 2449 §8, RFC 3206 §4–§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    /// RFC 2449 §8.1.1: the maildrop is locked by another session.
    InUse,
    /// RFC 2449 §8.1.2: the user logged in too recently.
    LoginDelay,
    /// RFC 3206 §4: a temporary system problem; retrying later may succeed.
    SysTemp,
    /// RFC 3206 §4: a permanent system problem.
    SysPerm,
    /// RFC 3206 §5: the failure is about the credentials or the authentication policy.
    Auth,
}

impl RespCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Auth => "AUTH",
        }
    }
}

/// One status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    pub code: Option<RespCode>,
    pub text: String,
}

impl Reply {
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }

    pub fn err(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Err,
            code: None,
            text: text.into(),
        }
    }

    pub fn err_code(code: RespCode, text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Err,
            code: Some(code),
            text: text.into(),
        }
    }

    /// Appends the encoded line, CRLF included. CR and LF in `text` become spaces, so a reply
    /// can never be split into two lines.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.status {
            Status::Ok => b"+OK",
            Status::Err => b"-ERR",
        });
        if let Some(code) = self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_str().as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend(
                self.text
                    .bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        self.encode(&mut out);
        out
    }
}

/// A SASL server challenge: `continue-req = "+" SP [base64] CRLF` — RFC 5034 §4.
pub fn continuation(base64: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(base64.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The end of a multi-line response: `.` CRLF — RFC 1939 §3.
pub fn multiline_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lines() {
        assert_eq!(Reply::ok("2 320").to_bytes(), b"+OK 2 320\r\n");
        assert_eq!(Reply::ok("").to_bytes(), b"+OK\r\n");
        assert_eq!(
            Reply::err("no such message").to_bytes(),
            b"-ERR no such message\r\n"
        );
        assert_eq!(
            Reply::err_code(RespCode::InUse, "maildrop locked").to_bytes(),
            b"-ERR [IN-USE] maildrop locked\r\n"
        );
        assert_eq!(
            Reply::err_code(RespCode::SysTemp, "later").to_bytes(),
            b"-ERR [SYS/TEMP] later\r\n"
        );
        assert_eq!(
            Reply::err("a\r\nb").to_bytes(),
            b"-ERR a  b\r\n",
            "CR LF in text must not split the reply"
        );
        let mut out = Vec::new();
        continuation("", &mut out);
        continuation("VXNlcm5hbWU6", &mut out);
        multiline_end(&mut out);
        assert_eq!(out, b"+ \r\n+ VXNlcm5hbWU6\r\n.\r\n");
    }
}
