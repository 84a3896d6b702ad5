//! The little XML this crate needs, written by hand on purpose: escaping for what it writes,
//! and pulling one element's text out of an Autodiscover request. Nothing here resolves
//! entities, reads a DTD or follows a reference (no XXE, no "billion laughs"): only the five
//! predefined entities and character references are decoded (XML 1.0 §4.6, §4.1).

/// `s` escaped for XML character data and attribute values (XML 1.0 §2.4, §3.3.3).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // A character reference rather than `&apos;`, which HTML 4 lacks: the account
            // pages and the admin console use this escape too.
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a request document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// A `<!DOCTYPE` or `<!ENTITY` declaration: never needed by Autodiscover, refused outright.
    Declaration,
    /// An entity reference other than the predefined ones, or a malformed one.
    BadReference,
    /// The element is not there.
    Missing,
}

/// The text of the first element whose local name is `name` (any namespace prefix), with
/// references decoded — e.g. `EMailAddress` in an Autodiscover v1 request. The input is
/// bounded by the caller (the body limit); this scans it once.
pub fn element_text(doc: &str, name: &str) -> Result<String, XmlError> {
    if doc.contains("<!DOCTYPE") || doc.contains("<!ENTITY") {
        return Err(XmlError::Declaration);
    }
    let mut rest = doc;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let end = rest
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .unwrap_or(rest.len());
        let tag = &rest[..end];
        let local = tag.rsplit(':').next().unwrap_or(tag);
        if local != name {
            continue;
        }
        let Some(gt) = rest.find('>') else {
            return Err(XmlError::Missing);
        };
        if rest[..gt].ends_with('/') {
            return Ok(String::new());
        }
        let body = &rest[gt + 1..];
        let text = &body[..body.find('<').unwrap_or(body.len())];
        return unescape(text);
    }
    Err(XmlError::Missing)
}

/// Decodes the predefined entities and character references (XML 1.0 §4.6, §4.1).
fn unescape(text: &str) -> Result<String, XmlError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or(XmlError::BadReference)?;
        let name = &after[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => char_reference(name).ok_or(XmlError::BadReference)?,
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

/// `CharRef = "&#" [0-9]+ ";" | "&#x" [0-9a-fA-F]+ ";"` (XML 1.0 §4.1; digits only, so no
/// sign that `from_str_radix` would take), naming a character that matches `Char` (§2.2,
/// the well-formedness constraint "Legal Character": no NUL, no other C0 control but TAB,
/// LF, CR, no surrogate, no U+FFFE/U+FFFF).
fn char_reference(name: &str) -> Option<char> {
    let (digits, radix) = match name.strip_prefix("#x") {
        Some(hex) => (hex, 16),
        None => (name.strip_prefix('#')?, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let code = u32::from_str_radix(digits, radix).ok()?;
    let legal =
        matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
    char::from_u32(code).filter(|_| legal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn finds_the_address_as_outlook_sends_it() {
        let req = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress> alice@example.com </EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
        assert_eq!(
            element_text(req, "EMailAddress").unwrap(),
            "alice@example.com"
        );
        let prefixed =
            "<a:Request><a:EMailAddress>b&amp;c@example.com</a:EMailAddress></a:Request>";
        assert_eq!(
            element_text(prefixed, "EMailAddress").unwrap(),
            "b&c@example.com"
        );
        assert_eq!(element_text("<x>&#x41;&#66;</x>", "x").unwrap(), "AB");
    }

    #[test]
    fn character_references_name_legal_characters_only() {
        // Found by the web_request fuzz target: `&#000;` decoded to NUL.
        for bad in [
            "&#000;", "&#0;", "&#x1F;", "&#xD800;", "&#xFFFE;", "&#+65;", "&#x+41;", "&#;", "&#x;",
        ] {
            assert_eq!(
                element_text(
                    &format!("<EMailAddress>a{bad}b</EMailAddress>"),
                    "EMailAddress"
                ),
                Err(XmlError::BadReference),
                "{bad}"
            );
        }
        assert_eq!(
            element_text(
                "<EMailAddress>&#97;&#x40;&#X62;</EMailAddress>",
                "EMailAddress"
            ),
            Err(XmlError::BadReference),
            "&#X is not a hex reference (XML 1.0 §4.1: lower-case x)"
        );
        assert_eq!(
            element_text(
                "<EMailAddress>&#97;&#x40;&#x1F4EC;</EMailAddress>",
                "EMailAddress"
            )
            .as_deref(),
            Ok("a@\u{1F4EC}")
        );
    }

    #[test]
    fn refuses_entities_and_declarations() {
        let xxe = r#"<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><EMailAddress>&e;</EMailAddress>"#;
        assert_eq!(
            element_text(xxe, "EMailAddress"),
            Err(XmlError::Declaration)
        );
        assert_eq!(
            element_text("<EMailAddress>&e;</EMailAddress>", "EMailAddress"),
            Err(XmlError::BadReference)
        );
        assert_eq!(
            element_text("<Other>x</Other>", "EMailAddress"),
            Err(XmlError::Missing)
        );
        assert_eq!(
            element_text("<EMailAddressX>x</EMailAddressX>", "EMailAddress"),
            Err(XmlError::Missing)
        );
        assert_eq!(
            element_text("<EMailAddress", "EMailAddress"),
            Err(XmlError::Missing)
        );
    }
}
