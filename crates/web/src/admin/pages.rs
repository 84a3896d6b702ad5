//! The console's pages, rendered without I/O from what the backend returned. Every value
//! goes through [`escape`]; every form carries the session's CSRF token and names the
//! `yubin` command it runs.

use super::chart::{self, Row, Series};
use super::{Activity, AliasRow, BanRow, DkimRow, DnsRow, LogLine, Outcome, QueueRow, UserRow};
use crate::account::html::{bytes, escape, message};

/// What every signed-in page shows around its content.
pub(crate) struct Frame<'a> {
    pub page: &'a str,
    pub admin: &'a str,
    pub csrf: &'a str,
    pub outcome: Option<&'a Outcome>,
}

const NAV: [(&str, &str); 8] = [
    ("", "Overview"),
    ("domains", "Domains"),
    ("users", "Users"),
    ("aliases", "Aliases"),
    ("dkim", "DKIM & DNS"),
    ("queue", "Queue"),
    ("bans", "Bans"),
    ("log", "Log"),
];

fn document(title: &str, header: &str, nav: &str, main: &str, head_extra: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{head_extra}\
<title>{title} — yubin admin</title>\n<link rel=\"stylesheet\" href=\"/admin/style.css\">\n\
<link rel=\"stylesheet\" href=\"/admin/admin.css\">\n</head>\n<body>\n\
<header><span class=\"site\">yubin admin</span>{header}</header>\n{nav}\
<main class=\"admin\">\n<h1>{title}</h1>\n{main}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// The sign-in page.
pub(crate) fn login(form_token: &str, address: &str, error: Option<&str>) -> String {
    let mut main = String::new();
    if let Some(e) = error {
        main.push_str(&message("error", e));
    }
    main.push_str(&format!(
        "<form method=\"post\" action=\"/admin/login\" class=\"login\">\n\
<input type=\"hidden\" name=\"form_token\" value=\"{}\">\n\
<label for=\"address\">Admin address</label>\n\
<input id=\"address\" name=\"address\" type=\"email\" autocomplete=\"username\" required value=\"{}\">\n\
<label for=\"password\">Password</label>\n\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
<button type=\"submit\">Sign in</button>\n</form>\n",
        escape(form_token),
        escape(address)
    ));
    document("Sign in", "", "", &main, "")
}

/// A page with only a message.
pub(crate) fn notice(text: &str) -> String {
    let main = format!(
        "{}<p><a href=\"/admin/\">Admin console</a></p>\n",
        message("error", text)
    );
    document("yubin admin", "", "", &main, "")
}

fn framed(f: &Frame, title: &str, body: &str, head_extra: &str) -> String {
    let header = format!(
        "<span class=\"user\">{}</span><form method=\"post\" action=\"/admin/logout\" class=\"inline\">{}<button type=\"submit\">Sign out</button></form>",
        escape(f.admin),
        csrf(f)
    );
    let mut nav = String::from("<nav class=\"admin\">");
    for (p, name) in NAV {
        let current = if p == f.page {
            " aria-current=\"page\""
        } else {
            ""
        };
        nav.push_str(&format!(
            "<a href=\"/admin/{p}\"{current}>{}</a>",
            escape(name)
        ));
    }
    nav.push_str("</nav>\n");
    let mut main = String::new();
    match f.outcome {
        Some(Outcome::Done(cmd, out)) => {
            main.push_str(&message("notice", &format!("Done: {cmd}")));
            if !out.trim().is_empty() {
                main.push_str(&format!("<pre class=\"output\">{}</pre>\n", escape(out)));
            }
        }
        Some(Outcome::Error(cmd, e)) if cmd.is_empty() => main.push_str(&message("error", e)),
        Some(Outcome::Error(cmd, e)) => main.push_str(&message("error", &format!("{cmd}: {e}"))),
        None => {}
    }
    main.push_str(body);
    document(title, &header, &nav, &main, head_extra)
}

fn csrf(f: &Frame) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(f.csrf)
    )
}

/// A one-button form posting `action` with fixed hidden fields.
fn button(f: &Frame, action: &str, fields: &[(&str, &str)], label: &str, danger: bool) -> String {
    let mut s = format!(
        "<form method=\"post\" action=\"/admin/{}\" class=\"inline\">{}<input type=\"hidden\" name=\"action\" value=\"{}\">",
        escape(f.page),
        csrf(f),
        escape(action)
    );
    for (k, v) in fields {
        s.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        ));
    }
    // No script, so no confirm() dialog: a destructive button needs its box ticked (the
    // server checks `confirm=yes` too).
    if danger {
        s.push_str("<label class=\"confirm\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> sure</label> ");
    }
    let class = if danger { " class=\"danger\"" } else { "" };
    s.push_str(&format!(
        "<button type=\"submit\"{class}>{}</button></form>",
        escape(label)
    ));
    s
}

/// A form with visible inputs (name, label, type, placeholder).
fn input_form(
    f: &Frame,
    action: &str,
    inputs: &[(&str, &str, &str, &str)],
    label: &str,
    cli: &str,
) -> String {
    let mut s = format!(
        "<form method=\"post\" action=\"/admin/{}\" class=\"row\">{}<input type=\"hidden\" name=\"action\" value=\"{}\">",
        escape(f.page),
        csrf(f),
        escape(action)
    );
    for (name, l, ty, ph) in inputs {
        s.push_str(&format!(
            "<label>{} <input name=\"{}\" type=\"{}\" placeholder=\"{}\"></label>",
            escape(l),
            escape(name),
            escape(ty),
            escape(ph)
        ));
    }
    s.push_str(&format!(
        "<button type=\"submit\">{}</button></form>\n",
        escape(label)
    ));
    s.push_str(&cli_hint(cli));
    s
}

fn cli_hint(cli: &str) -> String {
    format!("<p class=\"hint\">CLI: <code>{}</code></p>\n", escape(cli))
}

fn failed(e: &str) -> String {
    message("error", &format!("Cannot read this: {e}"))
}

fn time(t: i64) -> String {
    auth::format_time(t)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `3m`, `2h`, `1d`.
fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn hour_label(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%d %H:00").to_string())
}

pub(crate) fn overview(f: &Frame, a: &Activity, users: Result<Vec<UserRow>, String>) -> String {
    let mut s = String::new();
    let labels: Vec<String> = a.hours.iter().map(|h| hour_label(h.0)).collect();
    let delivered: Vec<u64> = a.hours.iter().map(|h| h.1).collect();
    let refused: Vec<u64> = a.hours.iter().map(|h| h.2).collect();
    s.push_str(&format!(
        "<h2 id=\"mail\">Mail per hour (last {} hours, UTC)</h2>\n<p>Delivered or queued: {}; refused: {}.</p>\n",
        a.hours.len(),
        delivered.iter().sum::<u64>(),
        refused.iter().sum::<u64>()
    ));
    s.push_str(&chart::grouped_bars(
        "Messages delivered and refused per hour",
        &labels,
        &[
            Series {
                class: "deliveries",
                name: "delivered",
                values: &delivered,
            },
            Series {
                class: "rejections",
                name: "refused",
                values: &refused,
            },
        ],
        6,
    ));
    s.push_str("<h2 id=\"queue\">Outbound queue</h2>\n");
    if let Some(last) = a.queue.last() {
        s.push_str(&format!(
            "<p>Now: <strong>{}</strong> message(s), oldest {} old. <a href=\"/admin/queue\">Queue</a></p>\n",
            last.1,
            age(last.2 as i64)
        ));
    }
    // The last point is the queue now (the others are hourly samples).
    let label = |i: usize, t: i64| {
        if i + 1 == a.queue.len() {
            "now".to_string()
        } else {
            hour_label(t)
        }
    };
    let size: Vec<(String, u64)> = a
        .queue
        .iter()
        .enumerate()
        .map(|(i, q)| (label(i, q.0), q.1))
        .collect();
    let oldest: Vec<(String, u64)> = a
        .queue
        .iter()
        .enumerate()
        .map(|(i, q)| (label(i, q.0), q.2 / 60))
        .collect();
    s.push_str(&chart::line(
        "Queued messages (hourly samples, then now)",
        "queue",
        &size,
        6,
    ));
    s.push_str(&chart::line(
        "Age of the oldest queued message, minutes",
        "queue",
        &oldest,
        6,
    ));
    s.push_str("<h2 id=\"auth\">Authentication failures by address (top 20, since start)</h2>\n");
    let rows: Vec<Row> = a
        .auth_failures
        .iter()
        .take(20)
        .map(|(ip, n)| Row {
            label: ip,
            value: *n,
            limit: None,
            shown: n.to_string(),
        })
        .collect();
    if rows.is_empty() {
        s.push_str("<p>None.</p>\n");
    } else {
        s.push_str(&chart::horizontal_bars(
            "Authentication failures by client address",
            "failures",
            &rows,
        ));
    }
    s.push_str("<h2 id=\"storage\">Storage per account against quota (top 50)</h2>\n");
    match users {
        Err(e) => s.push_str(&failed(&e)),
        Ok(mut users) => {
            users.sort_by(|a, b| b.used.cmp(&a.used).then(a.address.cmp(&b.address)));
            users.truncate(50);
            let rows: Vec<Row> = users
                .iter()
                .map(|u| Row {
                    label: &u.address,
                    value: u.used,
                    limit: u.limit,
                    shown: match u.limit {
                        Some(l) => format!("{} / {}", bytes(u.used), bytes(l)),
                        None => bytes(u.used),
                    },
                })
                .collect();
            if rows.is_empty() {
                s.push_str("<p>No accounts.</p>\n");
            } else {
                s.push_str(&chart::horizontal_bars(
                    "Storage used per account",
                    "used",
                    &rows,
                ));
            }
        }
    }
    framed(f, "Overview", &s, "")
}

pub(crate) fn domains(f: &Frame, list: Result<Vec<String>, String>) -> String {
    let mut s = String::new();
    match list {
        Err(e) => s.push_str(&failed(&e)),
        Ok(list) => {
            s.push_str("<table id=\"domains\"><thead><tr><th>Domain</th><th>Actions</th></tr></thead><tbody>\n");
            for d in &list {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{} <a href=\"/admin/dkim?check={}\">Check DNS</a></td></tr>\n",
                    escape(d),
                    button(f, "domain_del", &[("domain", d)], "Delete", true),
                    escape(&crate::account::html::query_value(d))
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint(
        "yubin domain list; yubin domain del DOMAIN (refused while it has users or aliases)",
    ));
    s.push_str("<h2>Add a domain</h2>\n");
    s.push_str(&input_form(
        f,
        "domain_add",
        &[("domain", "Domain", "text", "example.com")],
        "Add",
        "yubin domain add DOMAIN",
    ));
    framed(f, "Domains", &s, "")
}

fn limit(v: Option<u64>, fmt: impl Fn(u64) -> String) -> String {
    v.map_or_else(|| "—".to_string(), fmt)
}

pub(crate) fn users(f: &Frame, list: Result<Vec<UserRow>, String>) -> String {
    let mut s = String::new();
    match list {
        Err(e) => s.push_str(&failed(&e)),
        Ok(list) => {
            s.push_str("<table id=\"users\"><thead><tr><th>Address</th><th class=\"num\">Storage used</th><th class=\"num\">Storage limit</th><th class=\"num\">Messages</th><th class=\"num\">Message limit</th><th>Actions</th></tr></thead><tbody>\n");
            for u in &list {
                s.push_str(&format!(
                    "<tr><td>{addr}</td><td class=\"num\" data-bytes=\"{used}\">{used_h}</td><td class=\"num\">{lim}</td><td class=\"num\">{msgs}</td><td class=\"num\">{mlim}</td><td>{del}</td></tr>\n",
                    addr = escape(&u.address),
                    used = u.used,
                    used_h = bytes(u.used),
                    lim = limit(u.limit, bytes),
                    msgs = u.messages,
                    mlim = limit(u.message_limit, |n| n.to_string()),
                    del = button(f, "user_del", &[("address", &u.address)], "Delete (and all its mail)", true),
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint(
        "yubin user list; yubin quota show --all; yubin user del ADDRESS",
    ));
    s.push_str("<h2>Add a user</h2>\n");
    s.push_str(&input_form(
        f,
        "user_add",
        &[
            ("address", "Address", "email", "alice@example.com"),
            ("password", "Password", "password", ""),
        ],
        "Add",
        "yubin user add ADDRESS --password-stdin",
    ));
    s.push_str("<h2>Reset a password</h2>\n");
    s.push_str(&input_form(
        f,
        "user_passwd",
        &[
            ("address", "Address", "email", ""),
            ("password", "New password", "password", ""),
        ],
        "Set password",
        "yubin user passwd ADDRESS --password-stdin",
    ));
    s.push_str("<h2>Set a quota</h2>\n");
    s.push_str(&input_form(
        f,
        "quota_set",
        &[
            ("address", "Address", "email", ""),
            ("storage", "Storage", "text", "500M or default"),
            ("messages", "Messages", "text", "10000 or default"),
        ],
        "Set quota",
        "yubin quota set ADDRESS --storage SIZE --messages N",
    ));
    framed(f, "Users", &s, "")
}

pub(crate) fn aliases(f: &Frame, list: Result<Vec<AliasRow>, String>) -> String {
    let mut s = String::new();
    match list {
        Err(e) => s.push_str(&failed(&e)),
        Ok(list) => {
            s.push_str("<table id=\"aliases\"><thead><tr><th>Alias</th><th>Delivered to</th><th>Actions</th></tr></thead><tbody>\n");
            for a in &list {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&a.source),
                    escape(&a.targets.join(", ")),
                    button(f, "alias_del", &[("alias", &a.source)], "Delete", true)
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint("yubin alias list; yubin alias del ALIAS"));
    s.push_str("<h2>Add an alias</h2>\n");
    s.push_str(&input_form(
        f,
        "alias_add",
        &[
            ("alias", "Alias (or @domain)", "text", "info@example.com"),
            (
                "targets",
                "Local users",
                "text",
                "alice@example.com, bob@example.com",
            ),
        ],
        "Add",
        "yubin alias add ALIAS TARGET…",
    ));
    framed(f, "Aliases", &s, "")
}

pub(crate) fn dkim(
    f: &Frame,
    domains: Result<Vec<String>, String>,
    keys: Result<Vec<DkimRow>, String>,
    check: Option<(String, Result<Vec<DnsRow>, String>)>,
) -> String {
    let mut s = String::new();
    if let Some((domain, result)) = &check {
        s.push_str(&format!(
            "<h2 id=\"check\">DNS check of {}</h2>\n",
            escape(domain)
        ));
        match result {
            Err(e) => s.push_str(&message("error", e)),
            Ok(rows) => {
                s.push_str("<table id=\"dns\"><thead><tr><th>Record</th><th>Expected</th><th>Found</th><th>Status</th></tr></thead><tbody>\n");
                for r in rows {
                    let class = if r.status == "ok" {
                        "status-ok"
                    } else {
                        "status-bad"
                    };
                    s.push_str(&format!(
                        "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td class=\"{class}\">{}</td></tr>\n",
                        escape(&r.record),
                        escape(&r.expected),
                        escape(&r.found),
                        escape(&r.status)
                    ));
                }
                s.push_str("</tbody></table>\n");
            }
        }
        s.push_str(&cli_hint(&format!("yubin check-dns {domain}")));
    }
    s.push_str("<h2>Signing keys</h2>\n");
    match keys {
        Err(e) => s.push_str(&failed(&e)),
        Ok(keys) => {
            s.push_str("<table id=\"dkim\"><thead><tr><th>Domain</th><th>Selector</th><th>Algorithm</th><th>Created</th><th>DNS record to publish</th></tr></thead><tbody>\n");
            for k in &keys {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n",
                    escape(&k.domain),
                    escape(&k.selector),
                    escape(&k.algorithm),
                    escape(&time(k.created)),
                    escape(&k.record)
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint("yubin dkim list; yubin dns-records DOMAIN"));
    s.push_str("<h2>Generate a key; check a domain's DNS records</h2>\n");
    match domains {
        Err(e) => s.push_str(&failed(&e)),
        Ok(domains) => {
            s.push_str("<table id=\"dkim-domains\"><thead><tr><th>Domain</th><th>Actions</th></tr></thead><tbody>\n");
            for d in &domains {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{} {} <a href=\"/admin/dkim?check={}#check\">Check DNS records</a></td></tr>\n",
                    escape(d),
                    button(f, "dkim_generate", &[("domain", d), ("algorithm", "ed25519")], "New Ed25519 key", false),
                    button(f, "dkim_generate", &[("domain", d), ("algorithm", "rsa")], "New RSA key", false),
                    escape(&crate::account::html::query_value(d))
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint(
        "yubin dkim generate DOMAIN --algorithm ed25519|rsa; yubin check-dns DOMAIN",
    ));
    framed(f, "DKIM keys and DNS records", &s, "")
}

pub(crate) fn queue(f: &Frame, list: Result<Vec<QueueRow>, String>) -> String {
    let mut s = String::new();
    let t = now();
    match list {
        Err(e) => s.push_str(&failed(&e)),
        Ok(list) => {
            s.push_str(&format!("<p>{} message(s) queued.</p>\n", list.len()));
            s.push_str("<table id=\"queue\"><thead><tr><th>ID</th><th>Sender</th><th>Recipients</th><th class=\"num\">Attempts</th><th>Next attempt</th><th>Last error</th><th>Age</th><th>Actions</th></tr></thead><tbody>\n");
            for q in &list {
                let next = match q.next_attempt {
                    None => "—".to_string(),
                    Some(n) if n <= t => "now".to_string(),
                    Some(n) => format!("in {}", age(n - t)),
                };
                s.push_str(&format!(
                    "<tr><td><code>{id}</code></td><td>{sender}</td><td>{rcpts}</td><td class=\"num\">{att}</td><td>{next}</td><td>{err}</td><td>{age}</td><td>{retry} {del}</td></tr>\n",
                    id = escape(&q.id),
                    sender = escape(if q.sender.is_empty() { "<>" } else { &q.sender }),
                    rcpts = escape(&q.recipients.join(", ")),
                    att = q.attempts,
                    next = escape(&next),
                    err = escape(q.last_error.as_deref().unwrap_or("")),
                    age = age(t - q.created),
                    retry = button(f, "queue_retry", &[("id", &q.id)], "Retry now", false),
                    del = button(f, "queue_delete", &[("id", &q.id)], "Delete (no bounce)", true),
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint(
        "yubin queue list; yubin queue show ID; yubin queue retry ID; yubin queue delete ID",
    ));
    framed(f, "Queue", &s, "")
}

pub(crate) fn bans(f: &Frame, list: Result<Vec<BanRow>, String>) -> String {
    let mut s = String::new();
    let t = now();
    match list {
        Err(e) => s.push_str(&failed(&e)),
        Ok(list) => {
            s.push_str("<table id=\"bans\"><thead><tr><th>Address</th><th>Until</th><th>Time left</th><th>Reason</th><th>Since</th><th>Actions</th></tr></thead><tbody>\n");
            for b in &list {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&b.ip),
                    escape(&time(b.until)),
                    age(b.until - t),
                    escape(&b.reason),
                    escape(&time(b.created)),
                    button(f, "ban_del", &[("ip", &b.ip)], "Lift", false)
                ));
            }
            s.push_str("</tbody></table>\n");
        }
    }
    s.push_str(&cli_hint("yubin ban list; yubin ban del IP"));
    s.push_str("<h2>Ban an address</h2>\n");
    s.push_str(&input_form(
        f,
        "ban_add",
        &[
            ("ip", "Address", "text", "192.0.2.7"),
            ("duration", "For", "text", "1d"),
        ],
        "Ban",
        "yubin ban add IP --for DURATION (90s, 30m, 1h, 2d, 1w)",
    ));
    framed(f, "Bans", &s, "")
}

const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// The log tail: lines at `level` or more severe, containing `filter`, the newest `max`.
pub(crate) fn log(
    f: &Frame,
    lines: &[LogLine],
    level: &str,
    filter: &str,
    max: usize,
    refresh: u64,
) -> String {
    let level = level.to_ascii_uppercase();
    let rank = |l: &str| LEVELS.iter().position(|x| *x == l).unwrap_or(LEVELS.len());
    let limit = if LEVELS.contains(&level.as_str()) {
        rank(&level)
    } else {
        LEVELS.len()
    };
    let needle = filter.to_lowercase();
    let matching: Vec<&LogLine> = lines
        .iter()
        .filter(|l| rank(&l.level) <= limit)
        .filter(|l| needle.is_empty() || l.text.to_lowercase().contains(&needle))
        .collect();
    let shown = &matching[matching.len().saturating_sub(max)..];
    let mut s = String::from(
        "<form method=\"get\" action=\"/admin/log\" class=\"row\"><label>Level <select name=\"level\"><option value=\"\">any</option>",
    );
    for l in LEVELS {
        let sel = if l == level { " selected" } else { "" };
        s.push_str(&format!("<option{sel}>{l}</option>"));
    }
    s.push_str(&format!(
        "</select></label> <label>Containing <input name=\"q\" value=\"{}\"></label> <button type=\"submit\">Filter</button></form>\n",
        escape(filter)
    ));
    s.push_str(&format!(
        "<p class=\"hint\">{} of {} recent line(s), newest last{}.</p>\n<pre class=\"log\" id=\"log\">",
        shown.len(),
        lines.len(),
        if refresh > 0 { format!("; this page reloads every {refresh} s") } else { String::new() }
    ));
    for l in shown {
        s.push_str(&escape(&l.text));
        s.push('\n');
    }
    s.push_str("</pre>\n");
    s.push_str(&cli_hint(
        "journalctl -u yubin -f (the full log is on standard error)",
    ));
    // HTML §4.2.5.3: a refresh pragma reloads the same URL (filters kept), without script.
    let head = if refresh > 0 {
        format!("<meta http-equiv=\"refresh\" content=\"{refresh}\">\n")
    } else {
        String::new()
    };
    framed(f, "Log", &s, &head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(outcome: Option<&'a Outcome>) -> Frame<'a> {
        Frame {
            page: "log",
            admin: "root@x.test",
            csrf: "tok<",
            outcome,
        }
    }

    #[test]
    fn the_log_filters_by_level_and_text_and_escapes() {
        let lines: Vec<LogLine> = [
            ("INFO", "smtp delivery <a>"),
            ("WARN", "auth failed"),
            ("DEBUG", "noise"),
        ]
        .iter()
        .map(|(l, t)| LogLine {
            level: l.to_string(),
            text: t.to_string(),
        })
        .collect();
        let p = log(&frame(None), &lines, "info", "", 100, 5);
        assert!(
            p.contains("smtp delivery &lt;a&gt;")
                && p.contains("auth failed")
                && !p.contains("noise")
        );
        assert!(p.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(p.contains("value=\"tok&lt;\""));
        let p = log(&frame(None), &lines, "", "AUTH", 100, 0);
        assert!(
            !p.contains("smtp delivery") && p.contains("auth failed") && !p.contains("http-equiv")
        );
        let p = log(&frame(None), &lines, "", "", 1, 0);
        assert!(!p.contains("auth failed") && p.contains("noise"));
        assert!(!p.contains("<script"));
    }

    #[test]
    fn outcomes_are_shown_escaped() {
        let o = Outcome::Error("yubin ban add x".into(), "<bad>".into());
        let p = bans(&frame(Some(&o)), Ok(vec![]));
        assert!(p.contains("yubin ban add x: &lt;bad&gt;"));
    }
}
