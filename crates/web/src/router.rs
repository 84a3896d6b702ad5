//! Which handler answers a request, and the handlers of the autoconfiguration formats.
//!
//! Over HTTPS every route is served. Over plain HTTP only Thunderbird's file is (Thunderbird
//! fetches `http://autoconfig.<domain>/mail/config-v1.1.xml` when HTTPS fails, and the file
//! holds no secret); everything else is redirected to HTTPS with 301, since profiles and the
//! Autodiscover answers carry the user's address (RFC 9110 §15.4.2).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use mail_types::{Address, Domain};

use crate::autoconfig::{autodiscover, mobileconfig, pacc, thunderbird};
use crate::request::{self, address, query_param};
use crate::{WebServer, xml};

pub type Body = Full<Bytes>;

/// The routes, matched on the path without regard to case (Outlook's clients send
/// `/Autodiscover/Autodiscover.xml` and `/autodiscover/autodiscover.xml` alike).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Thunderbird,
    AutodiscoverV1,
    /// With the address of the `/autodiscover/autodiscover.json/v1.0/{email}` form.
    AutodiscoverV2(Option<String>),
    Pacc,
    Mobileconfig,
    Other,
}

/// The path form of Autodiscover v2, followed by the address.
const V2_PATH_PREFIX: &str = "/autodiscover/autodiscover.json/v1.0/";

fn route_of(path: &str) -> Route {
    let lower = path.to_ascii_lowercase();
    match lower.as_str() {
        "/.well-known/autoconfig/mail/config-v1.1.xml" | "/mail/config-v1.1.xml" => {
            Route::Thunderbird
        }
        "/autodiscover/autodiscover.xml" => Route::AutodiscoverV1,
        "/autodiscover/autodiscover.json" => Route::AutodiscoverV2(None),
        "/.well-known/user-agent-configuration.json" => Route::Pacc,
        "/apple/mobileconfig" => Route::Mobileconfig,
        // ASCII lower-casing keeps byte offsets, so the address is cut from the original.
        _ if lower.starts_with(V2_PATH_PREFIX) => {
            Route::AutodiscoverV2(Some(path[V2_PATH_PREFIX.len()..].to_string()))
        }
        _ => Route::Other,
    }
}

/// Answers one request from `peer`; never fails (errors are 4xx/5xx responses).
pub async fn route(
    server: &WebServer,
    req: Request<Incoming>,
    tls: bool,
    peer: std::net::IpAddr,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    // RFC 8555 §8.3: answered on plain HTTP, before the redirect to HTTPS.
    if let Some(token) = path.strip_prefix(crate::acme::PATH_PREFIX) {
        return acme_challenge(server, req.method(), token);
    }
    // The account pages: HTTPS only (a password never crosses plain HTTP).
    if crate::account::is_account_path(&path) {
        return match (&server.account, tls) {
            (Some(_), false) => crate::account::secure(redirect(server, &req)),
            (Some(pages), true) => crate::account::handle(server, pages, req, peer).await,
            (None, _) => text(StatusCode::NOT_FOUND, "not found\n"),
        };
    }
    // The admin console: HTTPS only, like the account pages.
    if crate::admin::is_admin_path(&path) {
        return match (&server.admin, tls) {
            (Some(_), false) => crate::account::secure(redirect(server, &req)),
            (Some(console), true) => crate::admin::handle(server, console, req, peer).await,
            (None, _) => text(StatusCode::NOT_FOUND, "not found\n"),
        };
    }
    let route = route_of(&path);
    let method = req.method().clone();
    if !tls && route != Route::Thunderbird {
        return redirect(server, &req);
    }
    let get = method == Method::GET || method == Method::HEAD;
    let allowed = match route {
        Route::AutodiscoverV1 => get || method == Method::POST,
        Route::Other => true,
        _ => get,
    };
    if !allowed {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        let allow = if route == Route::AutodiscoverV1 {
            "GET, HEAD, POST"
        } else {
            "GET, HEAD"
        };
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return r;
    }
    let query = req.uri().query().map(str::to_string);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .map(str::to_string);
    let q = query.as_deref();
    let cfg = &server.config;
    match route {
        Route::Thunderbird => {
            let addr = match optional_address(query_param(q, &["emailaddress"])) {
                Ok(a) => a,
                Err(r) => return r,
            };
            let domain = match resolve_domain(server, addr.as_ref(), host.as_deref()).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let user = addr.map(|a| a.to_string());
            let body =
                thunderbird::render(domain.as_str(), &cfg.hostname, &cfg.ports, user.as_deref());
            document(StatusCode::OK, "text/xml; charset=utf-8", body)
        }
        Route::AutodiscoverV1 => {
            let from_body = if method == Method::POST {
                match read_body(server, req).await {
                    Ok(b) => match xml::element_text(&b, "EMailAddress") {
                        Ok(a) => Some(a),
                        Err(xml::XmlError::Missing) => None,
                        Err(_) => return text(StatusCode::BAD_REQUEST, "malformed request\n"),
                    },
                    Err(r) => return r,
                }
            } else {
                None
            };
            let given = from_body.or_else(|| query_param(q, &["email", "emailaddress"]));
            let addr = match optional_address(given) {
                Ok(a) => a,
                Err(r) => return r,
            };
            let domain = resolve_domain(server, addr.as_ref(), host.as_deref()).await;
            if let Err(r) = domain {
                return r;
            }
            let user = addr.map(|a| a.to_string());
            let body = autodiscover::render_v1(&cfg.hostname, &cfg.ports, user.as_deref());
            document(StatusCode::OK, "text/xml; charset=utf-8", body)
        }
        Route::AutodiscoverV2(in_path) => {
            let given = in_path
                .and_then(|s| request::percent_decode(&s))
                .or_else(|| query_param(q, &["email"]));
            let addr = match optional_address(given) {
                Ok(a) => a,
                Err(r) => return r,
            };
            if let Err(r) = resolve_domain(server, addr.as_ref(), host.as_deref()).await {
                return r;
            }
            let protocol = query_param(q, &["protocol"]).unwrap_or_default();
            if !protocol.eq_ignore_ascii_case("AutodiscoverV1") {
                return document(
                    StatusCode::BAD_REQUEST,
                    "application/json",
                    autodiscover::render_v2_error(&protocol),
                );
            }
            let url = autodiscover::v1_url(&cfg.hostname, cfg.https_port.unwrap_or(443));
            document(
                StatusCode::OK,
                "application/json",
                autodiscover::render_v2(&url),
            )
        }
        Route::Pacc => {
            let domain = match resolve_domain(server, None, host.as_deref()).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let body = pacc::render(domain.as_str(), &cfg.hostname, &cfg.ports);
            document(StatusCode::OK, "application/json", body)
        }
        Route::Mobileconfig => {
            let Some(addr) =
                optional_address(query_param(q, &["email", "emailaddress"])).unwrap_or(None)
            else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "a valid ?email= address is required\n",
                );
            };
            let domain = match resolve_domain(server, Some(&addr), host.as_deref()).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let user = addr.to_string();
            let Some(body) =
                mobileconfig::render(domain.as_str(), &cfg.hostname, &cfg.ports, &user)
            else {
                return text(
                    StatusCode::NOT_FOUND,
                    "no IMAP or POP3 listener is configured\n",
                );
            };
            let mut r = document(StatusCode::OK, mobileconfig::CONTENT_TYPE, body);
            if let Some(c) = &server.certificate
                && let Some(signed) = sign_profile(r.body(), c.as_ref())
            {
                *r.body_mut() = Full::new(Bytes::from(signed));
            }
            // A safe file name: the domain is a checked domain name.
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"{}.mobileconfig\"",
                domain.as_str()
            )) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Route::Other => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The profile signed with the served certificate, `None` (served unsigned) when that is
/// self-signed or cannot sign.
fn sign_profile(
    body: &Body,
    cert: &dyn crate::autoconfig::profile_signing::CurrentCertificate,
) -> Option<Vec<u8>> {
    use crate::autoconfig::profile_signing::{is_self_signed, sign};
    let key = cert.current();
    if is_self_signed(&key) {
        return None;
    }
    let bytes = body.clone().into_inner()?; // a cheap clone: `Bytes` is reference-counted
    match sign(&bytes, &key) {
        Ok(der) => Some(der),
        Err(e) => {
            tracing::warn!(error = %e, "cannot sign the Apple profile; serving it unsigned");
            None
        }
    }
}

/// The key authorization of an HTTP-01 challenge in progress (RFC 8555 §8.3), 404 otherwise.
fn acme_challenge(server: &WebServer, method: &Method, token: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match server.acme.get(token) {
        Some(key_authorization) => {
            // RFC 8555 §8.3's example answers with application/octet-stream.
            let mut r = Response::new(Full::new(Bytes::from(key_authorization)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        None => text(StatusCode::NOT_FOUND, "no such challenge\n"),
    }
}

/// `None` when absent or empty; 400 when present but not an address.
fn optional_address(given: Option<String>) -> Result<Option<Address>, Response<Body>> {
    match given.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => address(s)
            .map(Some)
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "invalid address\n")),
    }
}

/// The domain a request is about: the address's; else the one the host name asks about
/// (`autoconfig.example.com`, or `example.com` itself); else the primary domain. 404 when it
/// is not one of this server's domains.
async fn resolve_domain(
    server: &WebServer,
    addr: Option<&Address>,
    host: Option<&str>,
) -> Result<Domain, Response<Body>> {
    let not_found = || text(StatusCode::NOT_FOUND, "no such mail domain here\n");
    let unavailable = |e: String| {
        tracing::warn!(error = %e, "cannot read the domains");
        text(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n")
    };
    let candidate = match addr {
        Some(a) => Some(a.domain().clone()),
        None => match host.and_then(request::host_name) {
            Some(h) => match request::prefixed_domain(&h) {
                Some(Ok(d)) => Some(d),
                Some(Err(())) => return Err(not_found()),
                // A bare host: the domain itself if it is ours, else the primary domain.
                None => match server.domains.is_local(&h).await {
                    Ok(true) => Some(h),
                    Ok(false) => None,
                    Err(e) => return Err(unavailable(e)),
                },
            },
            None => None,
        },
    };
    match candidate {
        Some(d) => match server.domains.is_local(&d).await {
            Ok(true) => Ok(d),
            Ok(false) => Err(not_found()),
            Err(e) => Err(unavailable(e)),
        },
        None => match server.domains.primary().await {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(not_found()),
            Err(e) => Err(unavailable(e)),
        },
    }
}

/// Beyond the body limit, up to this much more is read and thrown away before the 413 is
/// sent: closing a socket with unread data makes the kernel send a reset, which can destroy
/// the response before the client reads it (what nginx's "lingering close" avoids).
const DRAIN_MAX: u64 = 1024 * 1024;
/// How long that draining may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// The body as UTF-8, at most `max_body_bytes`: 413 beyond (RFC 9110 §15.5.14), decided from
/// Content-Length before reading when the client sends one.
pub(crate) async fn read_body(
    server: &WebServer,
    req: Request<Incoming>,
) -> Result<String, Response<Body>> {
    let max = server.config.max_body_bytes as u64;
    let too_large = || text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max + DRAIN_MAX) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut data = Vec::new();
    let mut seen: u64 = 0;
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Some(chunk) = frame.data_ref() {
                seen += chunk.len() as u64;
                if seen <= max {
                    data.extend_from_slice(chunk);
                } else if seen > max + DRAIN_MAX {
                    break;
                }
            }
        }
        true
    };
    let complete = tokio::time::timeout(DRAIN_TIME, read)
        .await
        .unwrap_or(false);
    if seen > max || declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    if !complete {
        return Err(text(StatusCode::BAD_REQUEST, "incomplete request body\n"));
    }
    String::from_utf8(data)
        .map_err(|_| text(StatusCode::BAD_REQUEST, "request body is not UTF-8\n"))
}

/// 301 to the same path on HTTPS (RFC 9110 §15.4.2); 404 when there is no HTTPS listener.
fn redirect(server: &WebServer, req: &Request<Incoming>) -> Response<Body> {
    let Some(port) = server.config.https_port else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    // The host the client asked for, if it is a plain domain name; else ours.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(request::host_name)
        .map(|d| d.as_str().to_string())
        .filter(|h| h.is_ascii())
        .unwrap_or_else(|| server.config.hostname.clone());
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{target}");
    let mut r = text(StatusCode::MOVED_PERMANENTLY, "moved to HTTPS\n");
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "bad request\n"),
    }
}

fn document(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Personal documents (they may name the user) are not kept by caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    document(status, "text/plain; charset=utf-8", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ignore_case_and_keep_the_address_of_the_path_form() {
        assert_eq!(route_of("/mail/config-v1.1.xml"), Route::Thunderbird);
        assert_eq!(
            route_of("/.well-known/autoconfig/mail/config-v1.1.xml"),
            Route::Thunderbird
        );
        assert_eq!(
            route_of("/Autodiscover/Autodiscover.xml"),
            Route::AutodiscoverV1
        );
        assert_eq!(
            route_of("/AUTODISCOVER/autodiscover.XML"),
            Route::AutodiscoverV1
        );
        assert_eq!(
            route_of("/autodiscover/autodiscover.json"),
            Route::AutodiscoverV2(None)
        );
        assert_eq!(
            route_of("/Autodiscover/Autodiscover.json/v1.0/Alice%40Example.com"),
            Route::AutodiscoverV2(Some("Alice%40Example.com".into()))
        );
        assert_eq!(
            route_of("/.well-known/user-agent-configuration.json"),
            Route::Pacc
        );
        assert_eq!(route_of("/apple/mobileconfig"), Route::Mobileconfig);
        assert_eq!(route_of("/"), Route::Other);
        assert_eq!(route_of("/autodiscover/autodiscover.xml/x"), Route::Other);
    }
}
