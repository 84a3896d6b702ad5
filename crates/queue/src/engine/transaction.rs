//! Sending one message over an open connection: the body (DKIM-signed for this attempt), the
//! envelope with the DSN parameters passed on (RFC 3461 §4), and an outcome per recipient.

use store::DsnNotify;

use super::batch::Outcomes;
use super::outcome::{self, Outcome};
use super::{Engine, Work};
use crate::client::{Client, ConnError, TxEnvelope, TxRecipient};

impl Engine {
    /// One message over an open connection; `Err` when the connection broke.
    pub(super) async fn send_one(
        &self,
        client: &mut Client,
        host: &str,
        w: &Work,
        res: &mut Outcomes,
    ) -> Result<(), ConnError> {
        let body = match self.queue.queued_body(w.msg.id).await {
            Ok(b) => b,
            // Deleted by the admin meanwhile: nothing to record.
            Err(store::StoreError::NotFound(_)) => return Ok(()),
            Err(e) => {
                for &r in &w.rcpts {
                    res.insert(
                        r,
                        Outcome::Temporary {
                            error: format!("reading the queue: {e}"),
                            remote: None,
                        },
                    );
                }
                return Ok(());
            }
        };
        let rcpts: Vec<_> = w
            .msg
            .recipients
            .iter()
            .filter(|r| w.rcpts.contains(&r.id))
            .collect();
        // RFC 6531 §3.2: a message that needs SMTPUTF8 cannot go to a server without it.
        if w.msg.smtputf8 && !client.caps.smtputf8 {
            for r in &rcpts {
                res.insert(r.id, outcome::needs_smtputf8(host));
            }
            return Ok(());
        }
        // DKIM: signed before each attempt (with that attempt's timestamp), never stored.
        let signed;
        let body: &[u8] = match self.signer.sign_shared(std::sync::Arc::clone(&body)).await {
            Some(header) => {
                let mut v = header.into_bytes();
                v.extend_from_slice(&body);
                signed = v;
                &signed
            }
            None => &body,
        };
        let env = TxEnvelope {
            sender: &w.msg.sender,
            recipients: rcpts
                .iter()
                .map(|r| TxRecipient {
                    address: &r.address,
                    notify: Some(notify_param(r.notify)),
                    orcpt: r.orcpt.as_deref(),
                })
                .collect(),
            envid: w.msg.envid.as_deref(),
            ret: w.msg.ret.map(|r| match r {
                store::DsnRet::Full => "FULL",
                store::DsnRet::Headers => "HDRS",
            }),
            smtputf8: w.msg.smtputf8,
            eight_bit: body.iter().any(|&b| b >= 0x80),
        };
        let result = client
            .transaction(&env, body, self.config.data_timeout)
            .await?;
        for (r, reply) in rcpts.iter().zip(result.per_recipient) {
            tracing::info!(
                queue_id = w.msg.id,
                host,
                code = reply.code,
                "delivery attempt"
            );
            res.insert(r.id, outcome::from_reply(&reply, host, client.caps.dsn));
        }
        Ok(())
    }
}

/// RFC 3461 §4.1 `NOTIFY=NEVER` or a comma list.
fn notify_param(n: DsnNotify) -> String {
    let mut v = Vec::new();
    if n.success {
        v.push("SUCCESS");
    }
    if n.failure {
        v.push("FAILURE");
    }
    if n.delay {
        v.push("DELAY");
    }
    if v.is_empty() {
        "NEVER".into()
    } else {
        v.join(",")
    }
}
