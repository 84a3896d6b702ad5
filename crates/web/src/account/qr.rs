//! The QR code of the Apple profile URL, drawn on the server as an inline `<svg>` element (no
//! script, no image request, nothing fetched at run time).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An `<svg>` element encoding `text`, or an empty string when it is too long for a QR code.
pub fn svg(text: &str, label: &str) -> String {
    // Level M (15 % recovery) is the usual choice for a code read off a screen.
    let Ok(code) = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M) else {
        return String::new();
    };
    let doc = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The renderer writes a standalone document: keep the element, and name it for screen
    // readers.
    let start = doc.find("<svg").unwrap_or(0);
    let element = &doc[start..];
    element.replacen(
        "<svg",
        &format!(
            "<svg role=\"img\" aria-label=\"{}\"",
            super::html::escape(label)
        ),
        1,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_inline_svg_element() {
        let s = super::svg(
            "https://mail.example.com/apple/mobileconfig?email=a%40b.c",
            "QR <x>",
        );
        assert!(
            s.starts_with("<svg role=\"img\" aria-label=\"QR &lt;x&gt;\""),
            "{s}"
        );
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(!s.contains("<?xml"));
        assert!(s.contains("<path") || s.contains("<rect"));
        assert_eq!(super::svg(&"x".repeat(10_000), "x"), "");
    }
}
