//! STORE's flag arithmetic (RFC 9051 §6.4.6), the same in every backend.

use crate::{FlagOp, Flags};

/// Applies `op` to `current`; keywords compare case-insensitively (RFC 9051 §2.3.2).
pub fn apply(op: FlagOp, current: &Flags, change: &Flags) -> Flags {
    match op {
        FlagOp::Replace => change.clone(),
        FlagOp::Add => {
            let mut out = current.clone();
            out.system.insert(change.system);
            for k in &change.keywords {
                if !out.keywords.iter().any(|o| o.eq_ignore_ascii_case(k)) {
                    out.keywords.push(k.clone());
                }
            }
            out
        }
        FlagOp::Remove => {
            let mut out = current.clone();
            out.system.remove(change.system);
            out.keywords
                .retain(|o| !change.keywords.iter().any(|k| k.eq_ignore_ascii_case(o)));
            out
        }
    }
}

/// Whether two flag sets are the same (keywords as case-insensitive sets).
pub fn same_flags(a: &Flags, b: &Flags) -> bool {
    a.system == b.system
        && a.keywords.len() == b.keywords.len()
        && a.keywords
            .iter()
            .all(|k| b.keywords.iter().any(|o| o.eq_ignore_ascii_case(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemFlags;

    fn f(bits: u8, kw: &[&str]) -> Flags {
        Flags {
            system: SystemFlags(bits),
            keywords: kw.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn flag_ops() {
        let cur = f(1, &["$Junk"]);
        assert_eq!(
            apply(FlagOp::Add, &cur, &f(4, &["$junk", "x"])),
            f(5, &["$Junk", "x"])
        );
        assert_eq!(apply(FlagOp::Remove, &cur, &f(1, &["$JUNK"])), f(0, &[]));
        assert_eq!(apply(FlagOp::Replace, &cur, &f(8, &[])), f(8, &[]));
        assert!(same_flags(&f(1, &["a", "B"]), &f(1, &["b", "A"])));
        assert!(!same_flags(&f(1, &["a"]), &f(1, &["a", "b"])));
    }
}
