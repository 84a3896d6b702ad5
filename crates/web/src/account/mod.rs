//! The account pages under `/account/`, on the HTTPS listener only (plain HTTP is redirected
//! before it gets here): sign in with the mail address and password, then the account's
//! mail app settings (the seed articles' table), one-click profiles with a QR code, quota
//! usage, the POP3 retention in force, and a password change. English and Japanese.
//!
//! Security, in one place:
//! - Sign-in goes through the same [`auth::Authenticator`] as IMAP, POP3 and SMTP (protocol
//!   `web`): the same failure delays, per-address and per-account failure counts, and bans.
//! - The session is a random 256-bit token in a cookie `Secure; HttpOnly; SameSite=Strict;
//!   Path=/account` (RFC 6265 §4.1.2.5–6, RFC 6265bis SameSite); the state is server-side
//!   ([`session::Sessions`]) with idle and absolute expiry.
//! - CSRF: every POST of a signed-in page carries the session's token in a hidden field,
//!   compared in constant time; the sign-in form carries a random token that must equal its
//!   cookie (double submit). Origin, or else Referer, must name this site when sent.
//! - Every response has a strict Content-Security-Policy (no script at all), refuses framing,
//!   sends no Referer, forbids MIME sniffing and caching ([`secure`]).
//! - Every interpolated string is HTML-escaped ([`html::escape`]).

mod changes;
pub(crate) mod html;
pub mod i18n;
mod pages;
mod qr;
pub mod session;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use store::AccountId;

use crate::WebServer;
use crate::router::Body;
use changes::{change_password, set_retention};
use i18n::Lang;
use session::{Session, SessionLimits, Sessions, tokens_equal};

/// The session cookie.
const SESSION_COOKIE: &str = "yubin_session";
/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "yubin_login";
/// The language the user picked.
const LANG_COOKIE: &str = "lang";
/// Attributes of every cookie set here (RFC 6265 §4.1.2).
const COOKIE_ATTRS: &str = "Path=/account; Secure; HttpOnly; SameSite=Strict";
/// The stylesheet, compiled in (nothing is fetched at run time).
pub(crate) const STYLE: &str = include_str!("style.css");
/// No script, no plugin, nothing from elsewhere; forms only to this site; no framing.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The account pages' settings (`[account_pages]`).
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// A session ends after this long without a request...
    pub session_idle: Duration,
    /// ...and this long after the sign-in, whatever the activity.
    pub session_absolute: Duration,
    /// Signed-in sessions at most (sign-in is refused with 503 beyond).
    pub max_sessions: usize,
    /// A new password's length in characters, at least and at most.
    pub min_password_length: usize,
    pub max_password_length: usize,
    /// Password changes per account and hour, at most.
    pub password_changes_per_hour: usize,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            max_sessions: 10_000,
            min_password_length: 10,
            max_password_length: 256,
            password_changes_per_hour: 5,
        }
    }
}

/// The POP3 retention policy (`[retention]`) as the pages need it; the user's own choice is
/// in the store (`store::Directory::pop3_expire`).
pub trait Pop3RetentionPolicy: Send + Sync {
    /// The configured period for `address`, before any choice of the user's.
    fn configured(&self, address: &str) -> store::Pop3Expire;
    /// The periods a user may pick (empty: the setting is shown, not changed).
    fn choices(&self) -> Vec<store::Pop3Expire>;
    /// Called once a choice is stored, so that POP3 CAPA on this node announces it at once.
    fn chosen(&self, address: &str, choice: Option<store::Pop3Expire>);
}

/// The account pages' state.
pub struct AccountPages {
    config: AccountConfig,
    auth: auth::Authenticator,
    store: Arc<dyn store::Store>,
    retention: Option<Arc<dyn Pop3RetentionPolicy>>,
    sessions: Sessions,
    /// When each account's password was changed here in the last hour.
    changes: Mutex<HashMap<AccountId, Vec<Instant>>>,
}

impl AccountPages {
    pub fn new(
        config: AccountConfig,
        auth: auth::Authenticator,
        store: Arc<dyn store::Store>,
        retention: Option<Arc<dyn Pop3RetentionPolicy>>,
    ) -> AccountPages {
        let sessions = Sessions::new(SessionLimits {
            idle: config.session_idle,
            absolute: config.session_absolute,
            max: config.max_sessions,
        });
        AccountPages {
            config,
            auth,
            store,
            retention,
            sessions,
            changes: Mutex::new(HashMap::new()),
        }
    }
}

/// Whether `path` is one of the account pages.
pub fn is_account_path(path: &str) -> bool {
    path == "/account" || path.starts_with("/account/")
}

/// The value of cookie `name` (RFC 6265 §5.4: `name=value` pairs separated by `; `).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The security headers of every account response.
pub(crate) fn secure(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// 303 See Other (RFC 9110 §15.4.4): after a POST, the browser GETs `location`.
fn see_other(location: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    r
}

fn set_cookie(r: &mut Response<Body>, name: &str, value: &str, max_age: Option<u64>) {
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    if let Ok(v) = HeaderValue::from_str(&format!("{name}={value}; {COOKIE_ATTRS}{age}")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether the request comes from a page of this site, as far as the browser says: Origin
/// (RFC 6454 §7) when sent, else Referer. Browsers send `Origin: null` on a POST from a page
/// whose referrer policy is `no-referrer` (ours; Fetch §3.2.5), and nothing from old
/// browsers: then only the token decides.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = header_str(headers, header::HOST) else {
        return true;
    };
    let ours = format!("https://{}", host.to_ascii_lowercase());
    match header_str(headers, header::ORIGIN) {
        Some(o) if o != "null" => return o.to_ascii_lowercase() == ours,
        _ => {}
    }
    match header_str(headers, header::REFERER) {
        Some(r) => {
            let r = r.to_ascii_lowercase();
            r == ours || r.starts_with(&format!("{ours}/"))
        }
        None => true,
    }
}

/// A sign-in form token: the browser's, if it has a well-formed one, else a new one.
fn login_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_COOKIE) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (t.to_string(), false)
        }
        _ => (session::random_token(), true),
    }
}

/// The sign-in page, with the form token's cookie when it is new.
fn login_page(
    headers: &HeaderMap,
    lang: Lang,
    status: StatusCode,
    address: &str,
    error: Option<&str>,
) -> Response<Body> {
    let (token, new) = login_token(headers);
    let mut r = html(status, pages::login(lang, &token, address, error));
    if new {
        set_cookie(&mut r, LOGIN_COOKIE, &token, None);
    }
    r
}

/// Answers a request under `/account`.
pub async fn handle(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Response<Body> {
    secure(dispatch(server, pages, req, peer).await)
}

async fn dispatch(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Response<Body> {
    let headers = req.headers().clone();
    let lang = i18n::choose(
        cookie(&headers, LANG_COOKIE),
        header_str(&headers, header::ACCEPT_LANGUAGE),
    );
    let t = lang.texts();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let not_allowed = |allow: &'static str| {
        let mut r = html(
            StatusCode::METHOD_NOT_ALLOWED,
            pages::notice(lang, t.not_found),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        r
    };
    match path.as_str() {
        "/account" => see_other("/account/"),
        "/account/style.css" if get => {
            let mut r = Response::new(Full::new(Bytes::from_static(STYLE.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            r
        }
        "/account/lang" if get => {
            let to = crate::request::query_param(query.as_deref(), &["to"])
                .and_then(|s| Lang::from_tag(&s));
            let mut r = see_other("/account/");
            if let Some(l) = to {
                set_cookie(&mut r, LANG_COOKIE, l.tag(), Some(365 * 86_400));
            }
            r
        }
        "/account/" if get => {
            let token = cookie(&headers, SESSION_COOKIE);
            match token.and_then(|tok| pages.sessions.touch(tok, Instant::now())) {
                Some(s) => {
                    let done = crate::request::query_param(query.as_deref(), &["done"]);
                    let notice = match done.as_deref() {
                        Some("password") => Some(t.password_changed),
                        Some("retention") => Some(t.retention_saved),
                        _ => None,
                    };
                    settings_page(server, pages, lang, &s, StatusCode::OK, notice, None).await
                }
                None => {
                    let ended = token.is_some().then_some(t.session_ended);
                    let mut r = login_page(&headers, lang, StatusCode::OK, "", ended);
                    if token.is_some() {
                        set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
                    }
                    r
                }
            }
        }
        "/account/login" if post => login(server, pages, req, peer, lang).await,
        "/account/logout" if post => logout(server, pages, req, lang).await,
        "/account/password" if post => change_password(server, pages, req, peer, lang).await,
        "/account/retention" if post => set_retention(server, pages, req, lang).await,
        "/account/" | "/account/style.css" | "/account/lang" => not_allowed("GET, HEAD"),
        "/account/login" | "/account/logout" | "/account/password" | "/account/retention" => {
            not_allowed("POST")
        }
        _ => html(StatusCode::NOT_FOUND, pages::notice(lang, t.not_found)),
    }
}

/// The form fields of a POST body (`application/x-www-form-urlencoded`).
/// Why a sign-in POST was refused before its password was looked at.
pub(crate) enum SignInRefused {
    /// Origin/Referer name another site.
    Origin,
    /// The double-submit token is missing or differs from its cookie.
    Token,
    /// The body could not be read (its answer).
    Body(Response<Body>),
}

/// The checks every sign-in POST (account pages and admin console) passes first: the same
/// origin, then the form's token equal to cookie `login_cookie` (double submit, OWASP CSRF
/// sheet). Returns the request's headers and its form fields.
pub(crate) async fn signin_form(
    server: &WebServer,
    req: Request<Incoming>,
    login_cookie: &str,
) -> Result<(HeaderMap, HashMap<String, String>), SignInRefused> {
    let headers = req.headers().clone();
    if !same_origin(&headers) {
        return Err(SignInRefused::Origin);
    }
    let body = crate::router::read_body(server, req)
        .await
        .map_err(SignInRefused::Body)?;
    let f = form(&body);
    match (cookie(&headers, login_cookie), f.get("form_token")) {
        (Some(c), Some(t)) if !c.is_empty() && tokens_equal(c, t) => Ok((headers, f)),
        _ => Err(SignInRefused::Token),
    }
}

pub(crate) fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn forbidden(lang: Lang) -> Response<Body> {
    html(
        StatusCode::FORBIDDEN,
        pages::notice(lang, lang.texts().forbidden),
    )
}

async fn login(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    peer: IpAddr,
    lang: Lang,
) -> Response<Body> {
    let t = lang.texts();
    let (headers, f) = match signin_form(server, req, LOGIN_COOKIE).await {
        Ok(x) => x,
        Err(SignInRefused::Body(r)) => return r,
        Err(SignInRefused::Origin | SignInRefused::Token) => return forbidden(lang),
    };
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let address = get("address").trim();
    let result = pages
        .auth
        .authenticate(address, get("password"), "web", peer)
        .await;
    auth::count_attempt("web", "password", &result);
    match result {
        Ok(a) => {
            let Some(token) =
                pages
                    .sessions
                    .create(a.account, &a.address.to_string(), Instant::now())
            else {
                tracing::warn!("account pages: the session table is full");
                return login_page(
                    &headers,
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    address,
                    Some(t.unavailable),
                );
            };
            let mut r = see_other("/account/");
            set_cookie(&mut r, SESSION_COOKIE, &token, None);
            set_cookie(&mut r, LOGIN_COOKIE, "", Some(0));
            r
        }
        Err(auth::AuthError::Invalid) => login_page(
            &headers,
            lang,
            StatusCode::OK,
            address,
            Some(t.login_failed),
        ),
        Err(auth::AuthError::Banned { until }) => {
            let msg = pages::fill_n(t.banned, "until", &auth::format_time(until));
            let mut r = login_page(
                &headers,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                address,
                Some(&msg),
            );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let wait = until.saturating_sub(now).max(1);
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(auth::AuthError::Temporary) => login_page(
            &headers,
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            address,
            Some(t.unavailable),
        ),
    }
}

/// The signed-in session of a POST and its form, after the CSRF checks; else the response.
async fn session_post(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    lang: Lang,
) -> Result<(String, Session, HashMap<String, String>), Response<Body>> {
    let headers = req.headers().clone();
    if !same_origin(&headers) {
        return Err(forbidden(lang));
    }
    let Some(token) = cookie(&headers, SESSION_COOKIE).map(str::to_string) else {
        return Err(forbidden(lang));
    };
    let Some(s) = pages.sessions.touch(&token, Instant::now()) else {
        let t = lang.texts();
        return Err(login_page(
            &headers,
            lang,
            StatusCode::FORBIDDEN,
            "",
            Some(t.session_ended),
        ));
    };
    let body = crate::router::read_body(server, req).await?;
    let f = form(&body);
    if !tokens_equal(&s.csrf, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return Err(forbidden(lang));
    }
    Ok((token, s, f))
}

async fn logout(
    server: &WebServer,
    pages: &AccountPages,
    req: Request<Incoming>,
    lang: Lang,
) -> Response<Body> {
    let (token, _, _) = match session_post(server, pages, req, lang).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    pages.sessions.end(&token);
    let mut r = see_other("/account/");
    set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
    r
}

/// The settings page of session `s`.
async fn settings_page(
    server: &WebServer,
    pages: &AccountPages,
    lang: Lang,
    s: &Session,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response<Body> {
    let t = lang.texts();
    let cfg = &server.config;
    let quota = match pages.store.quota(s.account).await {
        Ok(q) => Some(q),
        Err(e) => {
            tracing::warn!(user = %s.address, error = %e, "account pages: cannot read the quota");
            None
        }
    };
    let retention = match &pages.retention {
        None => None,
        Some(policy) => {
            let own = match mail_types::Address::parse(&s.address) {
                Ok(a) => pages.store.pop3_expire(&a).await.unwrap_or_else(|e| {
                    tracing::warn!(user = %s.address, error = %e, "account pages: cannot read the POP3 retention choice");
                    None
                }),
                Err(_) => None,
            };
            let configured = policy.configured(&s.address);
            Some(pages::Retention {
                effective: own.unwrap_or(configured),
                own,
                configured,
                choices: policy.choices(),
            })
        }
    };
    // Absolute URLs on the mail host name: the name on the certificate, which a phone that
    // scans the code can reach.
    let port = match cfg.https_port {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let q = html::query_value(&s.address);
    let base = format!("https://{}{port}", cfg.hostname);
    let apple_url = format!("{base}/apple/mobileconfig?email={q}");
    let thunderbird_url =
        format!("{base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={q}");
    let qr_svg = qr::svg(&apple_url, t.apple_profile);
    let view = pages::Settings {
        address: &s.address,
        csrf: &s.csrf,
        hostname: &cfg.hostname,
        ports: cfg.ports,
        quota,
        retention,
        apple_url: &apple_url,
        thunderbird_url: &thunderbird_url,
        qr_svg: &qr_svg,
        min_password: pages.config.min_password_length,
        max_password: pages.config.max_password_length,
        notice,
        error,
    };
    html(status, pages::settings(lang, &view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_among_several() {
        let h = headers(&[
            ("cookie", "a=1; yubin_session=abc ;lang=ja"),
            ("cookie", "x=y"),
        ]);
        assert_eq!(cookie(&h, "yubin_session"), Some("abc"));
        assert_eq!(cookie(&h, "lang"), Some("ja"));
        assert_eq!(cookie(&h, "x"), Some("y"));
        assert_eq!(cookie(&h, "yubin"), None);
    }

    #[test]
    fn origin_and_referer_checks() {
        let host = ("host", "mail.example.com:8443");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "https://mail.example.com:8443")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "https://evil.test")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://mail.example.com:8443")
        ])));
        // `Origin: null` (our no-referrer policy) falls back to Referer, then to the token.
        assert!(same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("referer", "https://evil.test/account/")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("referer", "https://mail.example.com:8443/account/")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("referer", "https://mail.example.com:8443.evil.test/")
        ])));
    }

    #[test]
    fn the_login_token_is_reused_only_when_well_formed() {
        let good = "a".repeat(64);
        let (t, new) = login_token(&headers(&[("cookie", &format!("yubin_login={good}"))]));
        assert_eq!((t.as_str(), new), (good.as_str(), false));
        let (t, new) = login_token(&headers(&[("cookie", "yubin_login=short")]));
        assert!(new && t.len() == 64 && t != "short");
    }
}
