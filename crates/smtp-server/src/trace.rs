//! Trace fields prepended to every received message (RFC 5321 §4.4) and queue ids.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use smtp_proto::ReversePath;

/// What the session knew when the message arrived.
pub(crate) struct TraceInfo<'a> {
    pub from: &'a ReversePath,
    pub helo: &'a str,
    pub peer: IpAddr,
    /// The client's host name when iprev confirmed it (RFC 8601 §3); else `unknown`.
    pub client_name: Option<&'a str>,
    pub hostname: &'a str,
    pub protocol: &'static str,
    pub id: &'a str,
    /// The single recipient, when there is exactly one (never reveal the others).
    pub for_rcpt: Option<String>,
    pub date: chrono::DateTime<chrono::Utc>,
}

/// The `with` protocol type: RFC 3848 (`ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`) and
/// RFC 6531 §3.7.3 (`UTF8SMTP…` when the transaction used SMTPUTF8).
pub(crate) fn protocol(extended: bool, tls: bool, authenticated: bool, utf8: bool) -> &'static str {
    match (extended, utf8, tls, authenticated) {
        (false, _, _, _) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

/// `Return-Path:` (RFC 5321 §4.4, the final delivery adds it) and `Received:`.
pub(crate) fn trace_headers(t: &TraceInfo<'_>) -> String {
    format!("Return-Path: <{}>\r\n{}", t.from, received(t))
}

/// `Received: from <helo> (<name or unknown> [<ip>])\r\n\tby <host> (yubin) with <proto> id <id>\r\n\tfor
/// <rcpt>; <date>` — RFC 5321 §4.4 `Time-stamp-line`, date as RFC 5322 §3.3. Alone (without
/// `Return-Path:`) for a message that is relayed: RFC 5321 §4.4 leaves Return-Path to the
/// final delivery.
pub(crate) fn received(t: &TraceInfo<'_>) -> String {
    let peer = match t.peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("IPv6:{v6}"),
        },
        IpAddr::V4(v4) => v4.to_string(),
    };
    let date = t.date.format("%a, %d %b %Y %H:%M:%S +0000");
    let mut out = format!(
        "Received: from {} ({} [{}])\r\n\tby {} (yubin) with {} id {}",
        clean(t.helo),
        // RFC 5321 §4.4 TCP-info: the name the address resolves to, when verified.
        t.client_name.map_or_else(|| "unknown".to_string(), clean),
        peer,
        clean(t.hostname),
        t.protocol,
        t.id
    );
    match &t.for_rcpt {
        Some(rcpt) => out.push_str(&format!("\r\n\tfor <{}>; {date}\r\n", clean(rcpt))),
        None => out.push_str(&format!(";\r\n\t{date}\r\n")),
    }
    out
}

/// Keeps a client-supplied word from breaking the header (no CR, LF or other controls).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A new queue id: time in microseconds and a process-wide counter, in upper-case hex.
pub(crate) fn new_queue_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let micros = chrono::Utc::now().timestamp_micros();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFFFF;
    format!("{micros:X}{n:04X}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use mail_types::Address;

    #[test]
    fn received_field() {
        let from = ReversePath::Mailbox(Address::parse("a@b.example").unwrap());
        let mut t = TraceInfo {
            from: &from,
            helo: "client.example",
            peer: "192.0.2.7".parse().unwrap(),
            client_name: None,
            hostname: "mx.example.com",
            protocol: protocol(true, true, false, false),
            id: "ABC",
            for_rcpt: Some("u@example.com".into()),
            date: chrono::Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        };
        assert_eq!(
            trace_headers(&t),
            "Return-Path: <a@b.example>\r\nReceived: from client.example (unknown [192.0.2.7])\r\n\
             \tby mx.example.com (yubin) with ESMTPS id ABC\r\n\tfor <u@example.com>; \
             Tue, 02 Jan 2024 03:04:05 +0000\r\n"
        );
        let null = ReversePath::Null;
        t.from = &null;
        t.for_rcpt = None;
        t.peer = "2001:db8::1".parse().unwrap();
        let h = trace_headers(&t);
        assert!(h.starts_with("Return-Path: <>\r\n"));
        assert!(h.contains("[IPv6:2001:db8::1]"));
        assert!(h.ends_with("id ABC;\r\n\tTue, 02 Jan 2024 03:04:05 +0000\r\n"));
        t.client_name = Some("mail.client.example");
        assert!(trace_headers(&t).contains("from client.example (mail.client.example [IPv6:"));
        assert_eq!(protocol(false, true, true, true), "SMTP");
        assert_eq!(protocol(true, true, true, true), "UTF8SMTPSA");
        assert_ne!(new_queue_id(), new_queue_id());
    }
}
