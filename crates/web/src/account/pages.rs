//! The two pages, rendered without I/O from what the handlers gathered. Every value that
//! comes from the user, the store or the configuration goes through [`escape`].

use super::html::{bytes, escape, message, page};
use super::i18n::{Lang, Texts};
use crate::MailPorts;
use crate::autoconfig::{Endpoint, Security};

use store::Pop3Expire;

/// The POP3 "leave a copy on the server" setting (RFC 2449 §6.7 EXPIRE) as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// What applies now (the user's choice, else the configured period).
    pub effective: Pop3Expire,
    /// The user's own choice, if any.
    pub own: Option<Pop3Expire>,
    /// The configured period ("the server's setting").
    pub configured: Pop3Expire,
    /// What the user may pick; empty: shown, not changed.
    pub choices: Vec<Pop3Expire>,
}

/// The form value of a choice: `never` or the days.
pub fn choice_value(c: Pop3Expire) -> String {
    match c {
        Pop3Expire::Never => "never".to_string(),
        Pop3Expire::Days(n) => n.to_string(),
    }
}

/// The login page.
pub fn login(lang: Lang, form_token: &str, address: &str, error: Option<&str>) -> String {
    let t = lang.texts();
    let mut main = String::new();
    if let Some(e) = error {
        main.push_str(&message("error", e));
    }
    main.push_str(&format!(
        "<form method=\"post\" action=\"/account/login\" class=\"login\">\n\
<input type=\"hidden\" name=\"form_token\" value=\"{token}\">\n\
<label for=\"address\">{l_addr}</label>\n\
<input id=\"address\" name=\"address\" type=\"email\" autocomplete=\"username\" required value=\"{addr}\">\n\
<label for=\"password\">{l_pw}</label>\n\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
<button type=\"submit\">{submit}</button>\n</form>\n",
        token = escape(form_token),
        l_addr = escape(t.address),
        addr = escape(address),
        l_pw = escape(t.password),
        submit = escape(t.sign_in),
    ));
    page(lang, &escape(t.login_title), "", &main)
}

/// A page with only a message (errors outside the two pages: 403, 404).
pub fn notice(lang: Lang, text: &str) -> String {
    let t = lang.texts();
    let main = format!(
        "{}<p><a href=\"/account/\">{}</a></p>\n",
        message("error", text),
        escape(t.site)
    );
    page(lang, &escape(t.site), "", &main)
}

/// Everything the settings page shows.
pub struct Settings<'a> {
    pub address: &'a str,
    pub csrf: &'a str,
    /// The mail host name clients connect to.
    pub hostname: &'a str,
    pub ports: MailPorts,
    /// Usage and limits; `None` when the store could not be read.
    pub quota: Option<store::Quota>,
    pub retention: Option<Retention>,
    /// The Apple profile's absolute URL (link and QR code) and Thunderbird's file.
    pub apple_url: &'a str,
    pub thunderbird_url: &'a str,
    /// The QR code of `apple_url`, an `<svg>` element.
    pub qr_svg: &'a str,
    pub min_password: usize,
    pub max_password: usize,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

fn security(t: &Texts, s: Security) -> &'static str {
    match s {
        Security::Implicit => t.ssl_tls,
        Security::StartTls => t.starttls,
    }
}

/// One row per port: the protocol's label on the first (spanning the rows).
fn server_rows(out: &mut String, t: &Texts, label: &str, kind: &str, host: &str, eps: &[Endpoint]) {
    for (i, ep) in eps.iter().enumerate() {
        out.push_str(&format!("<tr data-kind=\"{kind}\">"));
        if i == 0 {
            out.push_str(&format!(
                "<th scope=\"rowgroup\" rowspan=\"{}\">{}</th>",
                eps.len(),
                escape(label)
            ));
        }
        out.push_str(&format!(
            "<td class=\"host\">{}</td><td class=\"port\">{}</td><td class=\"security\">{}</td></tr>\n",
            escape(host),
            ep.port,
            escape(security(t, ep.security))
        ));
    }
}

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in pairs {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// "used of limit (percent%)" and a progress bar, or "used (no limit)".
fn usage(
    t: &Texts,
    class: &str,
    used: u64,
    limit: Option<u64>,
    show: &dyn Fn(u64) -> String,
) -> String {
    match limit {
        Some(limit) => {
            let percent = if limit == 0 {
                100
            } else {
                (u128::from(used) * 100 / u128::from(limit)).min(999) as u64
            };
            format!(
                "<span class=\"{class}\" data-used=\"{used}\" data-limit=\"{limit}\" data-percent=\"{percent}\">{}</span>\n\
<progress max=\"{limit}\" value=\"{v}\">{percent}%</progress>",
                escape(&fill(
                    t.quota_of,
                    &[
                        ("used", &show(used)),
                        ("limit", &show(limit)),
                        ("percent", &percent.to_string())
                    ]
                )),
                v = used.min(limit),
            )
        }
        None => format!(
            "<span class=\"{class}\" data-used=\"{used}\">{}</span>",
            escape(&fill(t.quota_unlimited, &[("used", &show(used))]))
        ),
    }
}

/// The settings page of the signed-in account.
pub fn settings(lang: Lang, s: &Settings) -> String {
    let t = lang.texts();
    let header = format!(
        "<span class=\"who\">{label} <b id=\"signed-in\">{addr}</b></span>\
<form method=\"post\" action=\"/account/logout\" class=\"logout\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">{out}</button></form>",
        label = escape(t.signed_in_as),
        addr = escape(s.address),
        csrf = escape(s.csrf),
        out = escape(t.sign_out),
    );
    let mut m = String::new();
    if let Some(n) = s.notice {
        m.push_str(&message("notice", n));
    }
    if let Some(e) = s.error {
        m.push_str(&message("error", e));
    }
    // The seed articles' table: server name, port, encryption per protocol, then the
    // user name (the full address) and the password.
    m.push_str(&format!(
        "<section id=\"settings\">\n<p>{intro}</p>\n<table class=\"servers\">\n<thead><tr><td></td>\
<th scope=\"col\">{c1}</th><th scope=\"col\">{c2}</th><th scope=\"col\">{c3}</th></tr></thead>\n<tbody>\n",
        intro = escape(t.settings_intro),
        c1 = escape(t.col_server),
        c2 = escape(t.col_port),
        c3 = escape(t.col_security),
    ));
    let p = &s.ports;
    server_rows(
        &mut m,
        t,
        t.incoming_imap,
        "imap",
        s.hostname,
        &p.imap_endpoints(),
    );
    server_rows(
        &mut m,
        t,
        t.incoming_pop3,
        "pop3",
        s.hostname,
        &p.pop3_endpoints(),
    );
    server_rows(
        &mut m,
        t,
        t.outgoing_smtp,
        "smtp",
        s.hostname,
        &p.smtp_endpoints(),
    );
    m.push_str(&format!(
        "</tbody>\n</table>\n<table class=\"credentials\">\n\
<tr><th scope=\"row\">{l_user}</th><td id=\"username\">{user}</td></tr>\n\
<tr><th scope=\"row\">{l_pw}</th><td>{pw}</td></tr>\n\
<tr><th scope=\"row\">{l_auth}</th><td>{auth}</td></tr>\n</table>\n</section>\n",
        l_user = escape(t.username),
        user = escape(s.address),
        l_pw = escape(t.password),
        pw = escape(t.password_value),
        l_auth = escape(t.smtp_auth),
        auth = escape(t.smtp_auth_value),
    ));
    // One-click profiles.
    m.push_str(&format!(
        "<section id=\"profiles\">\n<h2>{h}</h2>\n<p><a id=\"apple-profile\" href=\"{apple}\">{l_apple}</a></p>\n\
<figure class=\"qr\">{qr}<figcaption>{cap}</figcaption></figure>\n\
<p>{l_tb} <a id=\"thunderbird\" href=\"{tb}\"><code>{tb}</code></a></p>\n</section>\n",
        h = escape(t.profiles_title),
        apple = escape(s.apple_url),
        l_apple = escape(t.apple_profile),
        qr = s.qr_svg,
        cap = escape(t.qr_caption),
        l_tb = escape(t.thunderbird_url),
        tb = escape(s.thunderbird_url),
    ));
    // Quota.
    if let Some(q) = &s.quota {
        let unit = t.messages_unit;
        let count = |n: u64| format!("{n} {unit}");
        m.push_str(&format!(
            "<section id=\"quota\">\n<h2>{h}</h2>\n<dl>\n<dt>{l_s}</dt><dd>{st}</dd>\n<dt>{l_m}</dt><dd>{ms}</dd>\n</dl>\n</section>\n",
            h = escape(t.quota_title),
            l_s = escape(t.quota_storage),
            st = usage(t, "storage", q.used, q.limit, &bytes),
            l_m = escape(t.quota_messages),
            ms = usage(t, "messages", q.messages, q.message_limit, &count),
        ));
    }
    // POP3 retention.
    if let Some(r) = &s.retention {
        m.push_str(&retention_section(t, s.csrf, r));
    }
    // Password change.
    m.push_str(&format!(
        "<section id=\"password\">\n<h2>{h}</h2>\n<form method=\"post\" action=\"/account/password\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
<label for=\"current\">{l_cur}</label>\n<input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\n\
<label for=\"new\">{l_new}</label>\n<input id=\"new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" maxlength=\"{max}\" required>\n\
<label for=\"new2\">{l_new2}</label>\n<input id=\"new2\" name=\"new2\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" maxlength=\"{max}\" required>\n\
<p class=\"hint\">{rules}</p>\n<button type=\"submit\">{submit}</button>\n</form>\n</section>\n",
        h = escape(t.password_title),
        csrf = escape(s.csrf),
        l_cur = escape(t.current_password),
        l_new = escape(t.new_password),
        l_new2 = escape(t.new_password_again),
        min = s.min_password,
        max = s.max_password,
        rules = escape(&fill(t.password_rules, &[("n", &s.min_password.to_string())])),
        submit = escape(t.change_password),
    ));
    page(lang, &escape(t.settings_title), &header, &m)
}

/// The sentence describing a period.
fn retention_text(t: &Texts, e: Pop3Expire) -> String {
    match e {
        Pop3Expire::Never => t.retention_keep.to_string(),
        Pop3Expire::Days(0) => t.retention_on_download.to_string(),
        Pop3Expire::Days(n) => fill(t.retention_days, &[("n", &n.to_string())]),
    }
}

/// The label of one option of the form.
fn option_label(t: &Texts, e: Pop3Expire) -> String {
    match e {
        Pop3Expire::Never => t.retention_opt_keep.to_string(),
        Pop3Expire::Days(0) => t.retention_opt_now.to_string(),
        Pop3Expire::Days(n) => fill(t.retention_opt_days, &[("n", &n.to_string())]),
    }
}

fn retention_section(t: &Texts, csrf: &str, r: &Retention) -> String {
    let mut out = format!(
        "<section id=\"retention\">\n<h2>{h}</h2>\n<p id=\"retention-now\" data-days=\"{value}\">{text}</p>\n",
        h = escape(t.retention_title),
        value = choice_value(r.effective),
        text = escape(&retention_text(t, r.effective)),
    );
    if r.choices.is_empty() {
        out.push_str(&format!(
            "<p class=\"hint\">{}</p>\n</section>\n",
            escape(t.retention_by_admin)
        ));
        return out;
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"/account/retention\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
<fieldset><legend>{legend}</legend>\n",
        csrf = escape(csrf),
        legend = escape(t.retention_choose),
    ));
    let radio = |value: &str, label: &str, checked: bool| {
        format!(
            "<label><input type=\"radio\" name=\"choice\" value=\"{value}\"{c}> {label}</label><br>\n",
            value = escape(value),
            c = if checked { " checked" } else { "" },
            label = escape(label),
        )
    };
    let default_label = fill(
        t.retention_default,
        &[("policy", &option_label(t, r.configured))],
    );
    out.push_str(&radio("default", &default_label, r.own.is_none()));
    for &c in &r.choices {
        out.push_str(&radio(
            &choice_value(c),
            &option_label(t, c),
            r.own == Some(c),
        ));
    }
    out.push_str(&format!(
        "</fieldset>\n<button type=\"submit\">{}</button>\n</form>\n</section>\n",
        escape(t.retention_save)
    ));
    out
}

/// Fills a placeholder of a message (for the handlers).
pub fn fill_n(template: &str, key: &str, value: &str) -> String {
    fill(template, &[(key, value)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(address: &'a str) -> Settings<'a> {
        Settings {
            address,
            csrf: "tok",
            hostname: "mail.example.com",
            ports: crate::autoconfig::all_ports(),
            quota: Some(store::Quota {
                used: 512 * 1024,
                limit: Some(1024 * 1024),
                messages: 3,
                message_limit: None,
            }),
            retention: Some(Retention {
                effective: Pop3Expire::Days(7),
                own: None,
                configured: Pop3Expire::Days(7),
                choices: vec![],
            }),
            apple_url: "https://mail.example.com/apple/mobileconfig?email=a%40example.com",
            thunderbird_url: "https://mail.example.com/x?emailaddress=a%40example.com",
            qr_svg: "<svg></svg>",
            min_password: 10,
            max_password: 256,
            notice: None,
            error: None,
        }
    }

    #[test]
    fn the_settings_table_lists_every_port_in_both_languages() {
        let en = settings(Lang::En, &sample("a@example.com"));
        for needle in [
            ">993</td><td class=\"security\">SSL/TLS<",
            ">143</td><td class=\"security\">STARTTLS<",
            ">995<",
            ">110<",
            ">465</td><td class=\"security\">SSL/TLS<",
            ">587</td><td class=\"security\">STARTTLS<",
            "<td id=\"username\">a@example.com</td>",
            "data-percent=\"50\"",
            "512.0 KiB of 1.0 MiB (50%)",
            "3 messages (no limit)",
            "7 days after",
            "name=\"csrf\" value=\"tok\"",
        ] {
            assert!(en.contains(needle), "{needle} missing in {en}");
        }
        let ja = settings(Lang::Ja, &sample("a@example.com"));
        for needle in [
            "受信サーバー（IMAP）",
            "送信サーバー（SMTP）",
            "ポート番号",
            "暗号化方式",
            "ユーザー名",
            "<html lang=\"ja\">",
        ] {
            assert!(ja.contains(needle), "{needle} missing");
        }
        assert!(!ja.contains("Incoming"));
    }

    #[test]
    fn the_retention_form_checks_the_current_choice() {
        let mut s = sample("a@example.com");
        s.retention = Some(Retention {
            effective: Pop3Expire::Never,
            own: Some(Pop3Expire::Never),
            configured: Pop3Expire::Days(14),
            choices: vec![Pop3Expire::Never, Pop3Expire::Days(0), Pop3Expire::Days(30)],
        });
        let html = settings(Lang::En, &s);
        assert!(html.contains("action=\"/account/retention\""));
        assert!(html.contains("value=\"default\"> The server&#39;s setting (Delete from the server 14 days after the download)"));
        assert!(html.contains("value=\"never\" checked> Keep messages on the server"));
        assert!(html.contains("value=\"0\"> Delete from the server soon after the download"));
        assert!(html.contains("value=\"30\">"));
        assert!(!html.contains("set by the server"));
        let ja = settings(Lang::Ja, &s);
        assert!(ja.contains("受信から 30 日後にサーバーから削除する"));
    }

    #[test]
    fn missing_listeners_are_left_out_and_input_is_escaped() {
        let mut s = sample("a@example.com");
        s.ports = MailPorts {
            imaps: Some(993),
            submissions: Some(465),
            ..MailPorts::default()
        };
        let html = settings(Lang::En, &s);
        assert!(!html.contains("POP3)"));
        assert!(!html.contains("STARTTLS"));
        let html = login(Lang::En, "t\"", "<x>\"@y", Some("bad <b>"));
        assert!(html.contains("value=\"&lt;x&gt;&quot;@y\""));
        assert!(html.contains("bad &lt;b&gt;"));
        assert!(html.contains("value=\"t&quot;\""));
    }
}
