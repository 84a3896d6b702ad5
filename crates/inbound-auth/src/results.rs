//! The `Authentication-Results:` header field (RFC 8601), rendered from plain values so that
//! the rendering can be tested without DNS or mail-auth's output types.
//!
//! ```text
//! authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
//!                   ( no-result / 1*resinfo ) [CFWS] CRLF          — RFC 8601 §2.2
//! resinfo   = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//! propspec  = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//! pvalue    = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
//! ```
//! The version is left out (RFC 8601 §2.2: absent means 1). Each resinfo goes on its own
//! folded line.

use std::fmt::Write;

/// A result keyword (RFC 8601 §2.7; `softfail` and `policy` only where the method has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Res {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Res {
    pub fn as_str(self) -> &'static str {
        match self {
            Res::Pass => "pass",
            Res::Fail => "fail",
            Res::SoftFail => "softfail",
            Res::Neutral => "neutral",
            Res::None => "none",
            Res::TempError => "temperror",
            Res::PermError => "permerror",
        }
    }
}

/// One `resinfo`: a method, its result, an optional reason and the properties checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// `spf`, `dkim`, `dmarc`, `arc`, `iprev` (RFC 8601 §6.3 registry).
    pub method: &'static str,
    pub result: Res,
    /// Free text for a human (`reason=` is a `value`, always quoted here).
    pub reason: Option<String>,
    /// `(ptype.property, pvalue)`, e.g. `("smtp.mailfrom", "a@b.example")`.
    pub props: Vec<(&'static str, String)>,
}

impl MethodResult {
    pub fn new(method: &'static str, result: Res) -> MethodResult {
        MethodResult {
            method,
            result,
            reason: None,
            props: Vec::new(),
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> MethodResult {
        self.reason = Some(reason.into());
        self
    }

    pub fn prop(mut self, name: &'static str, value: impl Into<String>) -> MethodResult {
        self.props.push((name, value.into()));
        self
    }

    /// The value of a property, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The whole field, name included, ending in CRLF. With no results: `; none` (RFC 8601 §2.2
/// `no-result`).
pub fn render(authserv_id: &str, results: &[MethodResult]) -> String {
    let mut out = String::with_capacity(64 + 80 * results.len());
    out.push_str("Authentication-Results: ");
    push_value(&mut out, authserv_id);
    if results.is_empty() {
        out.push_str("; none");
    }
    for r in results {
        let _ = write!(out, ";\r\n\t{}={}", r.method, r.result.as_str());
        if let Some(reason) = &r.reason {
            out.push_str(" reason=");
            push_quoted(&mut out, reason);
        }
        for (name, value) in &r.props {
            let _ = write!(out, " {name}=");
            push_pvalue(&mut out, value);
        }
    }
    out.push_str("\r\n");
    out
}

/// RFC 2045 §5.1 `tspecials`, which a `token` may not contain (nor SP and CTLs).
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// `value = token / quoted-string` (RFC 2045 §5.1, used by RFC 8601 §2.2).
fn push_value(out: &mut String, s: &str) {
    if is_token(s) {
        out.push_str(s);
    } else {
        push_quoted(out, s);
    }
}

/// A pvalue: a token, an address `local-part@domain` (dot-atom local part), or else a
/// quoted-string.
fn push_pvalue(out: &mut String, s: &str) {
    let dot_atom = |p: &str| {
        !p.is_empty()
            && p.split('.').all(|a| {
                !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
            })
    };
    let address = s
        .rsplit_once('@')
        .is_some_and(|(l, d)| (l.is_empty() || dot_atom(l)) && dot_atom(d));
    if is_token(s) || address {
        out.push_str(s);
    } else {
        push_quoted(out, s);
    }
}

/// RFC 5322 §3.2.4 quoted-string; controls (CR, LF…) are dropped so a client's words can
/// never end the field.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_method_on_its_own_line() {
        let results = vec![
            MethodResult::new("iprev", Res::Pass).prop("policy.iprev", "192.0.2.1"),
            MethodResult::new("spf", Res::Pass).prop("smtp.mailfrom", "a@b.example"),
            MethodResult::new("dkim", Res::Fail)
                .reason("body hash did not verify")
                .prop("header.d", "b.example")
                .prop("header.s", "s1")
                .prop("header.b", "AbC+/123"),
            MethodResult::new("dmarc", Res::Pass)
                .prop("header.from", "b.example")
                .prop("policy.dmarc", "reject"),
        ];
        assert_eq!(
            render("mx.example.com", &results),
            "Authentication-Results: mx.example.com;\r\n\
             \tiprev=pass policy.iprev=192.0.2.1;\r\n\
             \tspf=pass smtp.mailfrom=a@b.example;\r\n\
             \tdkim=fail reason=\"body hash did not verify\" header.d=b.example header.s=s1 \
             header.b=\"AbC+/123\";\r\n\
             \tdmarc=pass header.from=b.example policy.dmarc=reject\r\n"
        );
    }

    #[test]
    fn no_results_is_none() {
        assert_eq!(
            render("mx.example.com", &[]),
            "Authentication-Results: mx.example.com; none\r\n"
        );
    }

    #[test]
    fn client_words_are_quoted_and_cannot_break_the_field() {
        let r = MethodResult::new("spf", Res::None).prop("smtp.helo", "evil\r\nX-Injected: 1");
        let out = render("mx", &[r]);
        assert_eq!(
            out,
            "Authentication-Results: mx;\r\n\tspf=none smtp.helo=\"evilX-Injected: 1\"\r\n"
        );
        let r = MethodResult::new("spf", Res::Fail).prop("smtp.mailfrom", "we\"ird x@b.example");
        assert!(render("mx", &[r]).contains("smtp.mailfrom=\"we\\\"ird x@b.example\""));
        // The null sender's stand-in and a bare domain stay unquoted.
        let r = MethodResult::new("spf", Res::Pass).prop("smtp.mailfrom", "@b.example");
        assert!(render("mx", &[r]).contains("smtp.mailfrom=@b.example\r\n"));
        assert_eq!(Res::TempError.as_str(), "temperror");
        assert_eq!(Res::SoftFail.as_str(), "softfail");
    }
}
