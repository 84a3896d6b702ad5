//! IMAP keywords as the store keeps them: validated, de-duplicated case-insensitively.

use crate::{StoreError, StoreResult};

/// RFC 9051 §9: `flag-keyword = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing"
/// / atom`; `atom = 1*ATOM-CHAR`, which excludes `(){ SP CTL % * " \ ]`.
pub fn check_keyword(k: &str) -> StoreResult<()> {
    let bad = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || matches!(c, '(' | ')' | '{' | '%' | '*' | '"' | '\\' | ']')
    };
    if k.is_empty() || k.len() > 255 || k.chars().any(bad) {
        return Err(StoreError::Invalid("invalid keyword".into()));
    }
    Ok(())
}

/// Keywords de-duplicated case-insensitively, in first-seen order, after validation.
pub fn normalize_keywords(keywords: &[String]) -> StoreResult<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(keywords.len());
    for k in keywords {
        check_keyword(k)?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(k)) {
            out.push(k.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_dedup_and_refusals() {
        let kw =
            normalize_keywords(&["$Forwarded".into(), "$forwarded".into(), "x".into()]).unwrap();
        assert_eq!(kw, vec!["$Forwarded".to_string(), "x".to_string()]);
        for k in ["", "a b", "\\Seen", "a]", "a\r\n", "(x"] {
            assert!(check_keyword(k).is_err(), "{k:?}");
        }
        assert!(check_keyword("$Junk").is_ok());
    }
}
