//! The THREAD response — RFC 5256 §4:
//!
//! ```text
//! thread-data   = "THREAD" [SP 1*thread-list]
//! thread-list   = "(" (thread-members / thread-nested) ")"
//! thread-members = nz-number *(SP nz-number) [SP thread-nested]
//! thread-nested = 2*thread-list
//! ```
//!
//! A thread forest is given flat, in pre-order, so that neither building, encoding nor
//! dropping a very deep thread (a reply chain of 100,000 messages) recurses.

/// One node of a thread forest in pre-order: its number (`None` for a dummy, which only
/// groups its children) and how many children follow it. The top-level nodes are the
/// threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadNode {
    pub id: Option<u32>,
    pub children: u32,
}

/// Appends ` (..)(..)` for the forest `nodes` (pre-order) to `out`. A chain of single
/// children is one list (`(1 2 3)`); two or more children are nested lists
/// (`(1 (2 4)(3))`); a dummy only opens the lists of its children (`((1)(2))`).
pub(crate) fn write_threads(out: &mut Vec<u8>, nodes: &[ThreadNode]) {
    // Remaining lists at each nesting level; the bottom entry is the top level.
    let mut levels: Vec<u64> = Vec::new();
    if !nodes.is_empty() {
        out.push(b' ');
    }
    let mut i = 0;
    while i < nodes.len() {
        if levels.is_empty() {
            // A new thread at the top level (thread lists follow each other without spaces).
            levels.push(1);
        }
        // One `thread-list`: a chain of members, ending at a leaf or at a branch.
        out.push(b'(');
        let mut wrote = false;
        let mut branched = false;
        while let Some(node) = nodes.get(i) {
            i += 1;
            if let Some(id) = node.id {
                if wrote {
                    out.push(b' ');
                }
                out.extend_from_slice(id.to_string().as_bytes());
                wrote = true;
            }
            match node.children {
                0 => break,
                1 => continue,
                n => {
                    if wrote {
                        out.push(b' ');
                    }
                    levels.push(u64::from(n));
                    branched = true;
                    break;
                }
            }
        }
        if branched {
            // The children's lists come next, inside this one.
            continue;
        }
        out.push(b')');
        // Close every list whose last child list just ended.
        while let Some(left) = levels.last_mut() {
            *left -= 1;
            if *left > 0 {
                break;
            }
            levels.pop();
            if levels.is_empty() {
                break;
            }
            out.push(b')');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: u32, children: u32) -> ThreadNode {
        ThreadNode {
            id: Some(id),
            children,
        }
    }

    fn dummy(children: u32) -> ThreadNode {
        ThreadNode { id: None, children }
    }

    fn enc(nodes: &[ThreadNode]) -> String {
        let mut out = Vec::new();
        write_threads(&mut out, nodes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc_5256_example() {
        // RFC 5256 §4: (2)(3 6 (4 23)(44 7 96))
        let nodes = [
            n(2, 0),
            n(3, 1),
            n(6, 2),
            n(4, 1),
            n(23, 0),
            n(44, 1),
            n(7, 1),
            n(96, 0),
        ];
        assert_eq!(enc(&nodes), " (2)(3 6 (4 23)(44 7 96))");
    }

    #[test]
    fn dummies_and_nesting() {
        assert_eq!(enc(&[dummy(2), n(1, 0), n(2, 0)]), " ((1)(2))");
        assert_eq!(enc(&[n(1, 0), dummy(2), n(2, 0), n(3, 0)]), " (1)((2)(3))");
        assert_eq!(enc(&[n(1, 2), n(2, 1), n(4, 0), n(3, 0)]), " (1 (2 4)(3))");
        // Nested branches close every level.
        assert_eq!(
            enc(&[n(1, 2), n(2, 2), n(3, 0), n(4, 0), n(5, 0), n(6, 0)]),
            " (1 (2 (3)(4))(5))(6)"
        );
        assert_eq!(enc(&[]), "");
    }

    #[test]
    fn deep_chain_does_not_recurse() {
        let mut nodes: Vec<ThreadNode> = (1..200_000).map(|i| n(i, 1)).collect();
        nodes.push(n(200_000, 0));
        let s = enc(&nodes);
        assert!(s.starts_with(" (1 2 3 "));
        assert!(s.ends_with(" 199999 200000)"));
    }
}
