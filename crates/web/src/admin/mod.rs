//! The admin console under `/admin/`, on the HTTPS listener only: domains, users with their
//! quota, aliases, DKIM keys and the DNS check, the outbound queue, bans, the recent log, and
//! charts (mail per hour, the queue, authentication failures by address, storage per account).
//!
//! Every action is a `yubin …` command, run in-process by the [`Backend`] through the same
//! code as the CLI, and each page names the command it runs: the console can do nothing the
//! CLI cannot, and an admin learns the CLI from it. The command words are built here from
//! fixed templates and checked form values (never taken whole from the request).
//!
//! Security: the account pages' machinery ([`crate::account`]): sign-in through the same
//! [`auth::Authenticator`] (failure delays, counts, bans), then only addresses listed as
//! admins (403 for others); a server-side session with its cookie on `Path=/admin`; the
//! session's CSRF token in every POST, and Origin/Referer checked; the strict CSP (no script
//! at all: the log page refreshes itself with `<meta http-equiv="refresh">`), no framing,
//! `Cache-Control: no-store`.

pub mod chart;
mod pages;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::WebServer;
use crate::account::session::{SessionLimits, Sessions, random_token, tokens_equal};
use crate::account::{SignInRefused, cookie, form, html, same_origin, signin_form};
use crate::router::Body;

const SESSION_COOKIE: &str = "yubin_admin";
const LOGIN_COOKIE: &str = "yubin_admin_login";
/// RFC 6265 §4.1.2: only sent to the console's paths, over TLS, never to scripts.
const COOKIE_ATTRS: &str = "Path=/admin; Secure; HttpOnly; SameSite=Strict";
/// The console's own additions to the account pages' stylesheet (chart colours, tables).
const ADMIN_STYLE: &str = include_str!("admin.css");

/// One account with its usage and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub address: String,
    pub used: u64,
    pub limit: Option<u64>,
    pub messages: u64,
    pub message_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRow {
    pub source: String,
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimRow {
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub created: i64,
    /// The TXT record to publish (`selector._domainkey.domain. TXT "v=DKIM1; …"`).
    pub record: String,
}

/// One line of `yubin check-dns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRow {
    pub record: String,
    pub expected: String,
    pub found: String,
    /// `ok`, `MISSING`, `WRONG` or `FAILED`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub id: String,
    pub sender: String,
    /// The recipients still pending.
    pub recipients: Vec<String>,
    /// The most attempts of any recipient.
    pub attempts: u32,
    /// Unix seconds; `None` when nothing is pending.
    pub next_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRow {
    pub ip: String,
    pub until: i64,
    pub created: i64,
    pub reason: String,
}

/// A recent log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`.
    pub level: String,
    /// The whole formatted line (time, level, target, message, fields).
    pub text: String,
}

/// What the charts show; hours are Unix seconds at the start of the hour, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// (hour, messages delivered or queued, messages or recipients refused).
    pub hours: Vec<(i64, u64, u64)>,
    /// (hour, queued messages, age of the oldest in seconds): hourly samples, then now.
    pub queue: Vec<(i64, u64, u64)>,
    /// Authentication failures by client address, most first.
    pub auth_failures: Vec<(String, u64)>,
}

/// What the console reads and does; implemented by the binary over the store, the CLI's
/// command functions, the log ring and the activity counters.
#[async_trait]
pub trait Backend: Send + Sync {
    async fn domains(&self) -> Result<Vec<String>, String>;
    async fn users(&self) -> Result<Vec<UserRow>, String>;
    async fn aliases(&self) -> Result<Vec<AliasRow>, String>;
    async fn dkim_keys(&self) -> Result<Vec<DkimRow>, String>;
    /// `yubin check-dns DOMAIN`, in-process.
    async fn check_dns(&self, domain: &str) -> Result<Vec<DnsRow>, String>;
    async fn queue(&self) -> Result<Vec<QueueRow>, String>;
    async fn bans(&self) -> Result<Vec<BanRow>, String>;
    /// The recent log lines, oldest first.
    fn log_tail(&self) -> Vec<LogLine>;
    async fn activity(&self) -> Activity;
    /// Runs `yubin ARGS…` in-process, `stdin` as its standard input (a password); the
    /// command's output, or its error message.
    async fn run(&self, args: Vec<String>, stdin: Option<String>) -> Result<String, String>;
}

/// The console's settings (`[admin]`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The addresses that may sign in (canonical, lower-case).
    pub accounts: Vec<String>,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub max_sessions: usize,
    /// Lines shown on the log page, at most.
    pub log_page_lines: usize,
    /// The log page reloads itself this often (0: never).
    pub log_refresh_secs: u64,
}

pub struct AdminConsole {
    config: AdminConfig,
    admins: HashSet<String>,
    auth: auth::Authenticator,
    backend: Arc<dyn Backend>,
    sessions: Sessions,
}

impl AdminConsole {
    pub fn new(config: AdminConfig, auth: auth::Authenticator, backend: Arc<dyn Backend>) -> Self {
        let sessions = Sessions::new(SessionLimits {
            idle: config.session_idle,
            absolute: config.session_absolute,
            max: config.max_sessions,
        });
        let admins = config
            .accounts
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        AdminConsole {
            config,
            admins,
            auth,
            backend,
            sessions,
        }
    }
}

/// Whether `path` is the console's.
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

fn set_cookie(r: &mut Response<Body>, name: &str, value: &str, max_age: Option<u64>) {
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    if let Ok(v) = HeaderValue::from_str(&format!("{name}={value}; {COOKIE_ATTRS}{age}")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// 303 See Other (RFC 9110 §15.4.4).
fn see_other(location: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn static_file(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The sign-in page with a double-submit form token (as the account pages).
fn login_page(
    headers: &HeaderMap,
    status: StatusCode,
    address: &str,
    error: Option<&str>,
) -> Response<Body> {
    let (token, new) = match cookie(headers, LOGIN_COOKIE) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (t.to_string(), false)
        }
        _ => (random_token(), true),
    };
    let mut r = html(status, pages::login(&token, address, error));
    if new {
        set_cookie(&mut r, LOGIN_COOKIE, &token, None);
    }
    r
}

fn forbidden(msg: &str) -> Response<Body> {
    html(StatusCode::FORBIDDEN, pages::notice(msg))
}

/// Answers a request under `/admin` (HTTPS only: the router redirects plain HTTP).
pub async fn handle(
    server: &WebServer,
    console: &AdminConsole,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Response<Body> {
    crate::account::secure(dispatch(server, console, req, peer).await)
}

/// The pages, by path.
const PAGES: [&str; 8] = [
    "", "domains", "users", "aliases", "dkim", "queue", "bans", "log",
];

async fn dispatch(
    server: &WebServer,
    console: &AdminConsole,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match path.as_str() {
        "/admin" => return see_other("/admin/"),
        "/admin/style.css" if get => {
            return static_file("text/css; charset=utf-8", crate::account::STYLE);
        }
        "/admin/admin.css" if get => return static_file("text/css; charset=utf-8", ADMIN_STYLE),
        "/admin/login" if post => return login(server, console, req, peer).await,
        _ => {}
    }
    let headers = req.headers().clone();
    let session_token = cookie(&headers, SESSION_COOKIE).map(str::to_string);
    let session = session_token
        .as_deref()
        .and_then(|t| console.sessions.touch(t, Instant::now()));
    let Some(s) = session else {
        if post {
            return forbidden("Your session has ended; sign in again.");
        }
        let ended = session_token
            .is_some()
            .then_some("Your session has ended; sign in again.");
        let mut r = login_page(&headers, StatusCode::OK, "", ended);
        if session_token.is_some() {
            set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
        }
        return r;
    };
    let page = path.strip_prefix("/admin/").unwrap_or("");
    if get && PAGES.contains(&page) {
        let query = req.uri().query().map(str::to_string);
        return render(
            console,
            page,
            &s.address,
            &s.csrf,
            query.as_deref(),
            StatusCode::OK,
            None,
        )
        .await;
    }
    if !post || !(PAGES.contains(&page) || page == "logout") {
        return html(StatusCode::NOT_FOUND, pages::notice("No such page."));
    }
    // A POST: CSRF token and origin first (OWASP CSRF cheat sheet: synchronizer token).
    if !same_origin(&headers) {
        return forbidden("Request refused: it did not come from this site.");
    }
    let body = match crate::router::read_body(server, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let f = form(&body);
    if !tokens_equal(&s.csrf, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return forbidden(
            "Request refused: the form's token is missing or wrong; reload the page.",
        );
    }
    if page == "logout" {
        if let Some(t) = &session_token {
            console.sessions.end(t);
        }
        let mut r = see_other("/admin/");
        set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
        return r;
    }
    let (status, outcome) = match action(&f) {
        Err(e) => (StatusCode::BAD_REQUEST, Outcome::Error(String::new(), e)),
        Ok((args, stdin)) => {
            let shown = format!("yubin {}", args.join(" "));
            match console.backend.run(args, stdin).await {
                Ok(out) => {
                    tracing::info!(event = %"admin_action", admin = %s.address, %peer, command = %shown, "admin console action");
                    (StatusCode::OK, Outcome::Done(shown, out))
                }
                Err(e) => {
                    tracing::info!(event = %"admin_action_failed", admin = %s.address, %peer, command = %shown, error = %e, "admin console action failed");
                    (StatusCode::BAD_REQUEST, Outcome::Error(shown, e))
                }
            }
        }
    };
    render(
        console,
        page,
        &s.address,
        &s.csrf,
        None,
        status,
        Some(outcome),
    )
    .await
}

/// What an action did: the command shown and its output or error.
pub(crate) enum Outcome {
    Done(String, String),
    Error(String, String),
}

/// A form value that may become one command word: non-empty, no leading `-` (never an
/// option), no control characters, at most 255 bytes.
fn word(f: &HashMap<String, String>, key: &str) -> Result<String, String> {
    let v = f.get(key).map(|s| s.trim()).unwrap_or("");
    if v.is_empty() {
        return Err(format!("{key}: required"));
    }
    if v.starts_with('-') || v.len() > 255 || v.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!("{key}: not a valid value"));
    }
    Ok(v.to_string())
}

fn optional_word(f: &HashMap<String, String>, key: &str) -> Result<Option<String>, String> {
    match f.get(key).map(|s| s.trim()) {
        None | Some("") => Ok(None),
        Some(_) => word(f, key).map(Some),
    }
}

/// The `yubin` command of an action form (`action` field), and its standard input.
fn action(f: &HashMap<String, String>) -> Result<(Vec<String>, Option<String>), String> {
    let a = f.get("action").map(String::as_str).unwrap_or("");
    // The actions that destroy mail need the "sure" box ticked.
    if matches!(a, "user_del" | "queue_delete")
        && f.get("confirm").map(String::as_str) != Some("yes")
    {
        return Err("tick the box to confirm: this deletes mail".into());
    }
    let w = |k: &str| word(f, k);
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let password = || -> Result<String, String> {
        let p = f.get("password").map(String::as_str).unwrap_or("");
        if p.is_empty() || p.contains(['\r', '\n']) {
            return Err("password: required, on one line".into());
        }
        Ok(p.to_string())
    };
    Ok(match a {
        "domain_add" => (args(&["domain", "add", &w("domain")?]), None),
        "domain_del" => (args(&["domain", "del", &w("domain")?]), None),
        "user_add" => (
            args(&["user", "add", &w("address")?, "--password-stdin"]),
            Some(password()?),
        ),
        "user_passwd" => (
            args(&["user", "passwd", &w("address")?, "--password-stdin"]),
            Some(password()?),
        ),
        "user_del" => (args(&["user", "del", &w("address")?]), None),
        "quota_set" => {
            let mut v = args(&["quota", "set", &w("address")?]);
            let storage = optional_word(f, "storage")?;
            let messages = optional_word(f, "messages")?;
            if storage.is_none() && messages.is_none() {
                return Err("give a storage limit, a message limit, or both".into());
            }
            if let Some(s) = storage {
                v.extend(["--storage".to_string(), s]);
            }
            if let Some(m) = messages {
                v.extend(["--messages".to_string(), m]);
            }
            (v, None)
        }
        "alias_add" => {
            let mut v = args(&["alias", "add", &w("alias")?]);
            let targets: Vec<&str> = f
                .get("targets")
                .map(String::as_str)
                .unwrap_or("")
                .split([',', ' ', '\n', '\r', '\t'])
                .filter(|t| !t.is_empty())
                .collect();
            if targets.is_empty() {
                return Err("targets: at least one address".into());
            }
            for t in targets {
                if t.starts_with('-') || t.chars().any(char::is_control) {
                    return Err("targets: not a valid address".into());
                }
                v.push(t.to_string());
            }
            (v, None)
        }
        "alias_del" => (args(&["alias", "del", &w("alias")?]), None),
        "dkim_generate" => {
            let alg = match f.get("algorithm").map(String::as_str) {
                Some("rsa") => "rsa",
                _ => "ed25519",
            };
            (
                args(&["dkim", "generate", &w("domain")?, "--algorithm", alg]),
                None,
            )
        }
        "queue_retry" => (args(&["queue", "retry", &w("id")?]), None),
        "queue_delete" => (args(&["queue", "delete", &w("id")?]), None),
        "ban_add" => (
            args(&["ban", "add", &w("ip")?, "--for", &w("duration")?]),
            None,
        ),
        "ban_del" => (args(&["ban", "del", &w("ip")?]), None),
        _ => return Err("unknown action".into()),
    })
}

async fn login(
    server: &WebServer,
    console: &AdminConsole,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Response<Body> {
    let (headers, f) = match signin_form(server, req, LOGIN_COOKIE).await {
        Ok(x) => x,
        Err(SignInRefused::Body(r)) => return r,
        Err(SignInRefused::Origin) => {
            return forbidden("Request refused: it did not come from this site.");
        }
        Err(SignInRefused::Token) => {
            return forbidden(
                "Request refused: the form's token is missing or wrong; reload the page.",
            );
        }
    };
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let address = get("address").trim();
    match console
        .auth
        .authenticate(address, get("password"), "web", peer)
        .await
    {
        Ok(a) => {
            let canonical = a.address.to_string();
            // The password is right, but only the listed admins get a console session.
            if !console.admins.contains(&canonical.to_ascii_lowercase()) {
                tracing::info!(event = %"admin_refused", user = %canonical, %peer, "admin console: not an admin account");
                return login_page(
                    &headers,
                    StatusCode::FORBIDDEN,
                    address,
                    Some("This account is not an admin account."),
                );
            }
            let Some(token) = console
                .sessions
                .create(a.account, &canonical, Instant::now())
            else {
                return login_page(
                    &headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    address,
                    Some("Too many sessions; try again later."),
                );
            };
            tracing::info!(event = %"admin_login", admin = %canonical, %peer, "admin console: signed in");
            let mut r = see_other("/admin/");
            set_cookie(&mut r, SESSION_COOKIE, &token, None);
            set_cookie(&mut r, LOGIN_COOKIE, "", Some(0));
            r
        }
        Err(auth::AuthError::Invalid) => login_page(
            &headers,
            StatusCode::OK,
            address,
            Some("Wrong address or password."),
        ),
        Err(auth::AuthError::Banned { until }) => login_page(
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            address,
            Some(&format!(
                "Too many failed sign-ins from this address; try again after {}.",
                auth::format_time(until)
            )),
        ),
        Err(auth::AuthError::Temporary) => login_page(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            address,
            Some("Temporarily unavailable; try again later."),
        ),
    }
}

/// A page with the outcome of an action, if any.
async fn render(
    console: &AdminConsole,
    page: &str,
    admin: &str,
    csrf: &str,
    query: Option<&str>,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Response<Body> {
    let b = console.backend.as_ref();
    let frame = pages::Frame {
        page,
        admin,
        csrf,
        outcome: outcome.as_ref(),
    };
    let main = match page {
        "" => pages::overview(&frame, &b.activity().await, b.users().await),
        "domains" => pages::domains(&frame, b.domains().await),
        "users" => pages::users(&frame, b.users().await),
        "aliases" => pages::aliases(&frame, b.aliases().await),
        "dkim" => {
            let check = crate::request::query_param(query, &["check"]);
            let result = match &check {
                Some(d) => Some((d.clone(), b.check_dns(d).await)),
                None => None,
            };
            pages::dkim(&frame, b.domains().await, b.dkim_keys().await, result)
        }
        "queue" => pages::queue(&frame, b.queue().await),
        "bans" => pages::bans(&frame, b.bans().await),
        "log" => {
            let level = crate::request::query_param(query, &["level"]).unwrap_or_default();
            let filter = crate::request::query_param(query, &["q"]).unwrap_or_default();
            pages::log(
                &frame,
                &b.log_tail(),
                &level,
                &filter,
                console.config.log_page_lines,
                console.config.log_refresh_secs,
            )
        }
        _ => pages::notice("No such page."),
    };
    html(status, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn actions_become_fixed_commands_and_refuse_option_injection() {
        let (args, stdin) = action(&f(&[
            ("action", "user_add"),
            ("address", "a@x.test"),
            ("password", "pw 1"),
        ]))
        .unwrap();
        assert_eq!(args, ["user", "add", "a@x.test", "--password-stdin"]);
        assert_eq!(stdin.as_deref(), Some("pw 1"));
        let (args, _) = action(&f(&[
            ("action", "ban_add"),
            ("ip", "192.0.2.7"),
            ("duration", "2h"),
        ]))
        .unwrap();
        assert_eq!(args, ["ban", "add", "192.0.2.7", "--for", "2h"]);
        let (args, _) = action(&f(&[
            ("action", "quota_set"),
            ("address", "a@x.test"),
            ("storage", "10M"),
        ]))
        .unwrap();
        assert_eq!(args, ["quota", "set", "a@x.test", "--storage", "10M"]);
        let (args, _) = action(&f(&[
            ("action", "alias_add"),
            ("alias", "info@x.test"),
            ("targets", "a@x.test, b@x.test"),
        ]))
        .unwrap();
        assert_eq!(
            args,
            ["alias", "add", "info@x.test", "a@x.test", "b@x.test"]
        );
        assert!(
            action(&f(&[
                ("action", "domain_add"),
                ("domain", "--config=/etc/x")
            ]))
            .is_err()
        );
        assert!(
            action(&f(&[
                ("action", "ban_add"),
                ("ip", "1.2.3.4 --for"),
                ("duration", "1h")
            ]))
            .is_err()
        );
        assert!(
            action(&f(&[
                ("action", "user_add"),
                ("address", "a@x.test"),
                ("password", "a\nb")
            ]))
            .is_err()
        );
        assert!(
            action(&f(&[
                ("action", "alias_add"),
                ("alias", "i@x.test"),
                ("targets", "-x")
            ]))
            .is_err()
        );
        assert!(action(&f(&[("action", "quota_set"), ("address", "a@x.test")])).is_err());
        assert!(action(&f(&[("action", "serve")])).is_err());
        assert!(action(&f(&[("action", "user_del"), ("address", "a@x.test")])).is_err());
        let (args, _) = action(&f(&[
            ("action", "user_del"),
            ("address", "a@x.test"),
            ("confirm", "yes"),
        ]))
        .unwrap();
        assert_eq!(args, ["user", "del", "a@x.test"]);
        assert!(action(&f(&[])).is_err());
    }

    #[test]
    fn admin_paths() {
        assert!(is_admin_path("/admin"));
        assert!(is_admin_path("/admin/queue"));
        assert!(!is_admin_path("/administrator"));
    }
}
