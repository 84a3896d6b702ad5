//! Commands valid in any state — RFC 9051 §6.1 — and ID (RFC 2971), NAMESPACE (RFC 2342 /
//! RFC 9051 §6.3.10), ENABLE (RFC 5161).

use imap_proto::{Atom, Data, NamespaceDesc, Status, Tag};

use crate::ctx::Ctx;
use crate::state::State;
use crate::wire::Io;

/// RFC 9051 §7.2.2: the capabilities for the connection's current state. Only what the
/// session implements is listed.
pub(crate) fn capabilities(ctx: &Ctx, io: &Io, state: &State) -> Vec<String> {
    let mut caps = vec!["IMAP4rev1".to_string(), "IMAP4rev2".to_string()];
    let tls = io.conn.is_tls();
    if let State::NotAuthenticated = state {
        if ctx.server.tls.is_some() && !tls {
            caps.push("STARTTLS".into());
        }
        // RFC 9051 §6.2.3: LOGINDISABLED where plaintext passwords are refused; the
        // password mechanisms are then not offered either.
        if ctx.server.config.plaintext_auth.permits(&ctx.info, tls) {
            caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"].map(String::from));
        } else {
            caps.push("LOGINDISABLED".into());
        }
        caps.push("SASL-IR".into());
    }
    caps.extend(
        [
            "ENABLE",
            "IDLE",
            "ID",
            "LITERAL+",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "CHILDREN",
            "UTF8=ACCEPT",
            "ESEARCH",
            "SEARCHRES",
            "BINARY",
            "MULTIAPPEND",
            "CONDSTORE",
            "QRESYNC",
            // RFC 8514: FETCH SAVEDATE, SEARCH SAVEDBEFORE/SAVEDON/SAVEDSINCE.
            "SAVEDATE",
            // RFC 5256, RFC 5957, RFC 5267.
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "ESORT",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            // RFC 9394.
            "PARTIAL",
            "CATENATE",
            "URLAUTH",
            "URLAUTH=BINARY",
            "NOTIFY",
            // RFC 9208 §3.1 and RFC 8438.
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "STATUS=SIZE",
        ]
        .map(String::from),
    );
    // RFC 9208 §3.1.2: QUOTASET only to those who may change limits.
    if let State::Authenticated(u) | State::Selected(u, _) = state
        && crate::cmd::quota::is_admin(ctx, u)
    {
        caps.push("QUOTASET".into());
    }
    // RFC 7889 §3: the largest message APPEND accepts, the same for every mailbox.
    caps.push(format!(
        "APPENDLIMIT={}",
        ctx.server.config.max_message_size
    ));
    caps
}

/// RFC 9051 §6.1.1
pub(crate) fn capability(ctx: &mut Ctx, io: &Io, state: &State, tag: Tag) -> Status {
    let caps = capabilities(ctx, io, state);
    ctx.data(Data::Capability(caps));
    Status::ok(Some(tag), "CAPABILITY completed")
}

/// RFC 2971 §3.1: the server's ID; the client's is only logged (no secrets in it).
pub(crate) fn id(ctx: &mut Ctx, tag: Tag, params: &Option<Vec<imap_proto::IdParam>>) -> Status {
    if let Some(params) = params {
        let summary: Vec<String> = params
            .iter()
            .take(8)
            .map(|(k, v)| {
                let v = v
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let k = String::from_utf8_lossy(k);
                format!("{}={}", clip(&k), clip(&v))
            })
            .collect();
        tracing::info!(conn = ctx.info.id, client = %summary.join(" "), "imap: client ID");
    }
    ctx.data(Data::Id(Some(vec![("name".into(), Some("yubin".into()))])));
    Status::ok(Some(tag), "ID completed")
}

fn clip(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// RFC 2342 / RFC 9051 §6.3.10: one personal namespace, prefix "", delimiter "/".
pub(crate) fn namespace(ctx: &mut Ctx, tag: Tag) -> Status {
    ctx.data(Data::Namespace {
        personal: vec![NamespaceDesc {
            prefix: String::new(),
            delimiter: Some('/'),
        }],
        other: vec![],
        shared: vec![],
    });
    Status::ok(Some(tag), "NAMESPACE completed")
}

/// RFC 5161 §3.1: `* ENABLED` lists exactly the extensions this command newly enabled.
pub(crate) fn enable(ctx: &mut Ctx, tag: Tag, caps: &[Atom]) -> Status {
    let mut enabled = Vec::new();
    let condstore_before = ctx.condstore;
    for cap in caps {
        if cap.eq_ignore_case("IMAP4rev2") && !ctx.rev2 {
            // RFC 9051 §6.3.1: rev2 implies UTF-8 mailbox names (§5.1).
            ctx.rev2 = true;
            ctx.utf8 = true;
            enabled.push("IMAP4rev2".to_string());
        } else if cap.eq_ignore_case("UTF8=ACCEPT") && !ctx.utf8_enabled {
            // RFC 6855 §3. Listed even when IMAP4rev2 already implies UTF-8 names: the client
            // asked for the extension by name and it is now on (RFC 5161 §3.2).
            ctx.utf8 = true;
            ctx.utf8_enabled = true;
            enabled.push("UTF8=ACCEPT".to_string());
        } else if cap.eq_ignore_case("CONDSTORE")
            && !condstore_before
            && !enabled.iter().any(|e| e == "CONDSTORE")
        {
            // RFC 7162 §3.1: ENABLE CONDSTORE is a CONDSTORE-enabling command. Listed when
            // this command turned it on, even if QRESYNC before it in the list did already.
            ctx.condstore = true;
            enabled.push("CONDSTORE".to_string());
        } else if cap.eq_ignore_case("QRESYNC") && !ctx.qresync {
            // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE; `* ENABLED QRESYNC` (the §3.2.3
            // example) does not list CONDSTORE unless the client named it too.
            ctx.qresync = true;
            ctx.condstore = true;
            enabled.push("QRESYNC".to_string());
        }
    }
    ctx.data(Data::Enabled(enabled));
    Status::ok(Some(tag), "ENABLE completed")
}
