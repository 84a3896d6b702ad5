//! CAPA — RFC 2449 §5: the capabilities available now; they change after STLS and login.

use std::io;

use pop3_proto::Reply;

use crate::session::{Flow, Session, State};

impl Session {
    pub(crate) async fn capa(&mut self) -> io::Result<Flow> {
        let authorization = matches!(self.state, State::Authorization { .. });
        let mut caps: Vec<&str> = vec![
            "TOP",
            "UIDL",
            "RESP-CODES",
            // RFC 3206 §6: the [AUTH] response code is used on authentication failures.
            "AUTH-RESP-CODE",
            "PIPELINING",
        ];
        if authorization {
            // RFC 2595 §4, RFC 8314 §3: no password mechanisms where passwords are refused.
            if self.refuse_plaintext().is_none() {
                caps.push("USER");
                caps.push("SASL PLAIN LOGIN");
            }
            if self.server.tls.is_some() && !self.wire.conn.is_tls() {
                caps.push("STLS");
            }
        }
        caps.push("IMPLEMENTATION yubin");
        let mut out = Reply::ok("Capability list follows").to_bytes();
        for cap in caps {
            out.extend_from_slice(cap.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        pop3_proto::multiline_end(&mut out);
        self.wire.write(&out).await?;
        Ok(Flow::Continue)
    }
}
