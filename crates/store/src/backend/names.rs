//! Mailbox name rules, enforced in create and rename so IMAP can rely on them.
//!
//! Names are UTF-8 with `/` as the hierarchy separator. `INBOX` is case-insensitive
//! (RFC 9051 §5.1); a leading `inbox` component is stored as `INBOX`, so `inbox/x` and `INBOX/x`
//! are the same mailbox.

use crate::{INBOX, StoreError, StoreResult};

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// Validates `name` and returns its canonical form.
pub fn canonical(name: &str) -> StoreResult<String> {
    let invalid = |why: &str| Err(StoreError::Invalid(format!("mailbox name: {why}")));
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("too long");
    }
    if name.starts_with('/') || name.ends_with('/') {
        return invalid("leading or trailing '/'");
    }
    if name.chars().any(char::is_control) {
        return invalid("control character");
    }
    // RFC 9051 §5.1: `%` and `*` are LIST wildcards; a name containing them could not be listed
    // unambiguously.
    if name.contains(['%', '*']) {
        return invalid("wildcard character");
    }
    let mut out = String::with_capacity(name.len());
    for (i, part) in name.split('/').enumerate() {
        if part.is_empty() {
            return invalid("empty component");
        }
        if part == ".." || part == "." {
            return invalid("'.' or '..' component");
        }
        if i > 0 {
            out.push('/');
            out.push_str(part);
        } else if part.eq_ignore_ascii_case(INBOX) {
            out.push_str(INBOX);
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// The superior names of a canonical name, outermost first: `a/b/c` → `a`, `a/b`.
pub fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(i, _)| &name[..i])
}

/// Whether `name` is `parent` itself or below it.
pub fn is_inferior(name: &str, parent: &str) -> bool {
    name.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical("inbox").unwrap(), "INBOX");
        assert_eq!(canonical("Inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(canonical("Work/inbox").unwrap(), "Work/inbox");
        assert_eq!(canonical("Ärger/Ω").unwrap(), "Ärger/Ω");
    }

    #[test]
    fn bad_names() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for n in [
            "", "/a", "a/", "a//b", "a/../b", "..", ".", "a\tb", "a\0", "a*", "%", &long,
        ] {
            assert!(
                matches!(canonical(n), Err(StoreError::Invalid(_))),
                "{n:?} accepted"
            );
        }
        assert!(canonical(&"a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn parents_and_inferiors() {
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(parents("a").count(), 0);
        assert!(is_inferior("a/b", "a"));
        assert!(!is_inferior("ab", "a"));
        assert!(!is_inferior("a", "a"));
    }
}
