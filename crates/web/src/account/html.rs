//! HTML output: the escape every interpolated string goes through, and the page frame.

use super::i18n::Lang;

/// Escapes text for HTML element content and quoted attribute values (the five characters
/// of the OWASP XSS prevention rule #1); the same escape as the XML documents'.
pub use crate::xml::escape;

/// Percent-encodes a query parameter value (the URL standard's form encoding).
pub fn query_value(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A whole page: `title` and `main` are already HTML (escaped by the caller); `header` is
/// the extra header content (the signed-in address and the sign-out form).
pub fn page(lang: Lang, title: &str, header: &str, main: &str) -> String {
    let t = lang.texts();
    let other = lang.other();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title} — {site}</title>\n<link rel=\"stylesheet\" href=\"/account/style.css\">\n</head>\n<body>\n\
<header><span class=\"site\">{site}</span>{header}\
<a class=\"lang\" href=\"/account/lang?to={other_tag}\" hreflang=\"{other_tag}\" lang=\"{other_tag}\">{other_name}</a></header>\n\
<main>\n<h1>{title}</h1>\n{main}</main>\n</body>\n</html>\n",
        lang = lang.tag(),
        site = escape(t.site),
        other_tag = other.tag(),
        other_name = escape(other.texts().name),
    )
}

/// A message box; `kind` is `error` or `notice` (the CSS class).
pub fn message(kind: &str, text: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!("<p class=\"{kind}\" role=\"{role}\">{}</p>\n", escape(text))
}

/// Bytes for people: B, KiB, MiB, GiB, TiB with one decimal above bytes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("受信サーバー"), "受信サーバー");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn query_values_and_sizes() {
        assert_eq!(query_value("a+b@x.test"), "a%2Bb%40x.test");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_page_frame_escapes_and_links_the_other_language() {
        let p = page(Lang::Ja, "T&amp;", "", "<p>x</p>");
        assert!(p.contains("<html lang=\"ja\">"));
        assert!(p.contains("href=\"/account/lang?to=en\""));
        assert!(p.contains(">English</a>"));
        assert!(!p.contains("<script"));
    }
}
