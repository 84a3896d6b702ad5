//! CAPA — RFC 2449 §5: the capabilities available now; they change after STLS and login
//! (STLS goes, EXPIRE becomes the user's).

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
        // RFC 2449 §5: the capabilities of the AUTHORIZATION state are announced in both
        // states (a client may ask after login to learn what it could have used).
        // RFC 2595 §4, RFC 8314 §3: no password mechanisms where passwords are refused.
        if self.refuse_plaintext().is_none() {
            caps.push("USER");
            caps.push("SASL PLAIN LOGIN");
        }
        // STLS is not: it is a command of the AUTHORIZATION state only (RFC 2595 §4).
        if authorization && self.server.tls.is_some() && !self.wire.conn.is_tls() {
            caps.push("STLS");
        }
        // RFC 2449 §6.7: the user's own period once logged in.
        let user = if authorization {
            None
        } else {
            self.stats.user.as_deref()
        };
        let expire = crate::expire::capability(self.server.config.expire.as_ref(), user);
        caps.push(&expire);
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
