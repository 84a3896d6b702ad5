//! `GET /metrics`: the Prometheus text exposition of the server's metrics, for clients the
//! configuration allows: an address in `[metrics] allow` (by default `[limits]
//! trusted_networks`, loopback), or a request with `Authorization: Bearer <[metrics] token>`.
//! Everyone else gets 403. The handler renders what [`MetricsSource`] gives; the registry
//! itself lives in the binary, so this crate does not depend on the exporter.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use server_kit::TrustedNetworks;
use subtle::ConstantTimeEq;

use crate::router::Body;

/// The path Prometheus scrapes by default.
pub const PATH: &str = "/metrics";

/// The text exposition format, version 0.0.4 (what Prometheus expects from a scrape).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the current metrics.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// The exposition text; refreshes the gauges that are read at scrape time first.
    async fn render(&self) -> String;
}

/// Who may read `/metrics`, and where the text comes from.
pub struct MetricsEndpoint {
    /// Client addresses allowed without a token.
    pub allow: TrustedNetworks,
    /// A bearer token that allows any client (`None`: no token is accepted).
    pub token: Option<String>,
    pub source: Arc<dyn MetricsSource>,
}

/// Whether a request from `peer` with this `Authorization` header may read the metrics.
/// A token that is presented but wrong is refused even from an allowed address: a client
/// that sends one is misconfigured, and saying so beats answering anyway.
pub fn allowed(endpoint: &MetricsEndpoint, peer: IpAddr, authorization: Option<&[u8]>) -> bool {
    match authorization {
        Some(value) => {
            // RFC 6750 §2.1: `Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
            let Some(expected) = &endpoint.token else {
                return false;
            };
            let Some(given) = bearer_token(value) else {
                return false;
            };
            given.ct_eq(expected.as_bytes()).into()
        }
        None => endpoint.allow.contains(peer),
    }
}

fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Answers `/metrics` (any method: GET and HEAD get the text, others 405).
pub async fn handle<B>(
    endpoint: &MetricsEndpoint,
    req: &Request<B>,
    peer: IpAddr,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if !allowed(endpoint, peer, authorization) {
        tracing::info!(%peer, "metrics: refused (address not allowed, or wrong token)");
        // RFC 9110 §15.5.4: 403, the server refuses; no challenge is sent, so the endpoint
        // does not advertise that a token exists.
        return plain(StatusCode::FORBIDDEN, "forbidden\n");
    }
    let text = endpoint.source.render().await;
    let mut r = Response::new(Full::new(Bytes::from(text)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Empty;
    #[async_trait]
    impl MetricsSource for Empty {
        async fn render(&self) -> String {
            String::new()
        }
    }

    fn endpoint(allow: &[&str], token: Option<&str>) -> MetricsEndpoint {
        MetricsEndpoint {
            allow: TrustedNetworks::parse(allow).unwrap(),
            token: token.map(str::to_string),
            source: Arc::new(Empty),
        }
    }

    #[test]
    fn addresses_and_tokens() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let far: IpAddr = "192.0.2.7".parse().unwrap();
        let e = endpoint(&["127.0.0.0/8"], Some("s3cret"));
        assert!(allowed(&e, lo, None));
        assert!(!allowed(&e, far, None));
        assert!(allowed(&e, far, Some(b"Bearer s3cret")));
        assert!(allowed(&e, far, Some(b"bearer  s3cret ")));
        assert!(!allowed(&e, far, Some(b"Bearer s3cre")));
        assert!(!allowed(&e, lo, Some(b"Bearer wrong")));
        assert!(!allowed(&e, far, Some(b"Basic czNjcmV0")));
        assert!(!allowed(&e, far, Some(b"Bearer ")));
        let no_token = endpoint(&[], None);
        assert!(!allowed(&no_token, lo, None));
        assert!(!allowed(&no_token, lo, Some(b"Bearer anything")));
    }
}
