//! Delivery status notifications (RFC 3464 `multipart/report; report-type=delivery-status`,
//! RFC 3461 for what is returned and when, RFC 3462/6522 for the report container).

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use store::{DsnRet, QueuedMessage};

/// RFC 3464 §2.3.3 `Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// Handed to a server that does not offer DSN (RFC 3461 §5.2.2.2).
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Relayed => "relayed",
        }
    }
}

/// One per-recipient block of the report.
#[derive(Debug, Clone)]
pub struct DsnRecipient {
    pub address: String,
    pub orcpt: Option<String>,
    pub action: Action,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    /// The remote reply or local error text.
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
}

/// The status to report for a reply: its enhanced code, else one derived from the class
/// (RFC 3463 §3.1: `X.0.0`).
pub fn status_for(code: u16, enhanced: Option<String>) -> String {
    enhanced.unwrap_or_else(|| match code {
        500.. => "5.0.0".into(),
        400..=499 => "4.0.0".into(),
        _ => "2.0.0".into(),
    })
}

/// Strips control characters and folds a value onto one header line.
fn clean(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).collect();
    out.truncate(900);
    out
}

/// The header block of a message (up to the first empty line).
fn headers_of(message: &[u8]) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(message.len());
    message.get(..end).unwrap_or(message)
}

/// Builds the DSN for `msg` to its sender. `original` is the queued message (for RET).
/// `arrival` is RFC 5322 date text of when the message was queued.
pub fn build(
    reporting_mta: &str,
    msg: &QueuedMessage,
    rcpts: &[DsnRecipient],
    original: &[u8],
    arrival: &str,
) -> std::io::Result<Vec<u8>> {
    let failed = rcpts.iter().any(|r| r.action == Action::Failed);
    let (subject, intro) = if failed {
        (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients.\r\nThis is a permanent error; it will not be retried.",
        )
    } else if rcpts.iter().any(|r| r.action == Action::Delayed) {
        (
            "Delayed Mail (still being retried)",
            "Your message has not been delivered yet to one or more recipients.\r\nDelivery will be retried; you do not need to resend it.",
        )
    } else {
        (
            "Successful Mail Delivery Report",
            "Your message was relayed to a server that does not send delivery reports.",
        )
    };
    let mut text = format!("This is the mail system at {reporting_mta}.\r\n\r\n{intro}\r\n\r\n");
    for r in rcpts {
        text.push_str(&format!(
            "<{}>: {}\r\n",
            clean(&r.address),
            clean(r.diagnostic.as_deref().unwrap_or(&r.status))
        ));
    }

    // RFC 3464 §2.2: per-message fields, then one block per recipient.
    let mut status = String::new();
    if let Some(envid) = &msg.envid {
        status.push_str(&format!("Original-Envelope-Id: {}\r\n", clean(envid)));
    }
    status.push_str(&format!("Reporting-MTA: dns; {reporting_mta}\r\n"));
    status.push_str(&format!("Arrival-Date: {arrival}\r\n"));
    for r in rcpts {
        status.push_str("\r\n");
        if let Some(orcpt) = &r.orcpt {
            status.push_str(&format!("Original-Recipient: {}\r\n", clean(orcpt)));
        }
        status.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            clean(&r.address)
        ));
        status.push_str(&format!("Action: {}\r\n", r.action.as_str()));
        status.push_str(&format!("Status: {}\r\n", clean(&r.status)));
        if let Some(mta) = &r.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(mta)));
        }
        if let Some(d) = &r.diagnostic {
            status.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", clean(d)));
        }
    }

    // RFC 3461 §4.3: RET=FULL returns the whole message, otherwise (and always for delay
    // notices) only its headers.
    let full = failed && msg.ret == Some(DsnRet::Full);
    let returned = if full {
        let mut part =
            b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n".to_vec();
        part.extend_from_slice(original);
        part
    } else {
        let mut part =
            b"Content-Type: text/rfc822-headers\r\nContent-Disposition: inline\r\n\r\n".to_vec();
        part.extend_from_slice(headers_of(original));
        part
    };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", text),
            // Raw parts carry their own headers: message/delivery-status must stay 7-bit text
            // (RFC 3464 §2), not base64.
            MimePart::raw(BodyPart::Binary(
                format!("Content-Type: message/delivery-status\r\n\r\n{status}")
                    .into_bytes()
                    .into(),
            )),
            MimePart::raw(BodyPart::Binary(returned.into())),
        ]),
    );
    MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("MAILER-DAEMON@{reporting_mta}"),
        ))
        .to(msg.sender.as_str())
        .subject(subject)
        // RFC 3834 §5: an automatic response; RFC 3464 §4: never answered with a DSN.
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{QueuedMessage, QueuedRecipient};

    fn msg(ret: Option<DsnRet>) -> QueuedMessage {
        QueuedMessage {
            id: 1,
            size: 10,
            sender: "alice@a.test".into(),
            envid: Some("ENV42".into()),
            ret,
            account: None,
            smtputf8: false,
            created: 0,
            delay_notified: false,
            recipients: Vec::<QueuedRecipient>::new(),
        }
    }

    #[test]
    fn failure_report_is_well_formed() {
        let original = b"From: alice@a.test\r\nSubject: hi\r\n\r\nSECRET BODY\r\n";
        let r = DsnRecipient {
            address: "bob@b.test".into(),
            orcpt: Some("rfc822;bob@b.test".into()),
            action: Action::Failed,
            status: "5.1.1".into(),
            diagnostic: Some("550 5.1.1 no such user".into()),
            remote_mta: Some("mx.b.test".into()),
        };
        let out = build(
            "mail.a.test",
            &msg(None),
            std::slice::from_ref(&r),
            original,
            "Thu, 1 Jan 1970 00:00:00 +0000",
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("multipart/report"), "{s}");
        assert!(
            s.contains("report-type=\"delivery-status\"")
                || s.contains("report-type=delivery-status"),
            "{s}"
        );
        assert!(s.contains("Content-Type: message/delivery-status\r\n\r\nOriginal-Envelope-Id: ENV42\r\nReporting-MTA: dns; mail.a.test\r\n"), "{s}");
        assert!(s.contains("\r\nOriginal-Recipient: rfc822;bob@b.test\r\nFinal-Recipient: rfc822; bob@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"), "{s}");
        assert!(
            s.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"),
            "{s}"
        );
        assert!(s.contains("Auto-Submitted: auto-replied"), "{s}");
        // RET unset: headers only, never the body.
        assert!(s.contains("text/rfc822-headers"), "{s}");
        assert!(!s.contains("SECRET BODY"), "{s}");

        let full = build("mail.a.test", &msg(Some(DsnRet::Full)), &[r], original, "x").unwrap();
        let full = String::from_utf8(full).unwrap();
        assert!(full.contains("message/rfc822") && full.contains("SECRET BODY"));
    }
}
