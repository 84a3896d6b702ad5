//! The THREAD algorithms of RFC 5256 §3: ORDEREDSUBJECT and REFERENCES.
//!
//! Pure functions from the searched messages (in sequence order) to the thread forest in
//! pre-order, as the THREAD response is written ([`ThreadNode`]). Nothing recurses on the
//! depth of a thread — a reply chain can be as long as the mailbox — and the work is
//! O(n log n) plus the loop checks of step 1, which are bounded (see [`MAX_WALK`]).

use std::collections::HashMap;

use imap_proto::ThreadNode;

/// One searched message, as the algorithms see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadMessage {
    /// What the response shows: the sequence number or the UID.
    pub id: u32,
    /// The sent date (RFC 5256 §2.2: the `Date:` field, else the INTERNALDATE), UTC.
    pub date: i64,
    /// The base subject, case-mapped (`i;ascii-casemap`) for comparison.
    pub subject: Box<[u8]>,
    /// The subject was a reply or forward (RFC 5256 §3 REFERENCES step 5).
    pub reply: bool,
    pub message_id: Option<String>,
    /// References, oldest first (RFC 5256 §3 step 1A).
    pub references: Vec<String>,
}

/// The order of RFC 5256 §2.2: sent date, then sequence number (the input index).
fn by_date(msgs: &[ThreadMessage], a: usize, b: usize) -> std::cmp::Ordering {
    msgs[a].date.cmp(&msgs[b].date).then(a.cmp(&b))
}

/// ORDEREDSUBJECT — RFC 5256 §3: messages sorted by base subject then sent date; one thread
/// per base subject whose first message is the parent of all the others; threads ordered by
/// the sent date of their first message.
pub(crate) fn ordered_subject(msgs: &[ThreadMessage]) -> Vec<ThreadNode> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        msgs[a]
            .subject
            .cmp(&msgs[b].subject)
            .then_with(|| by_date(msgs, a, b))
    });
    let mut threads: Vec<&[usize]> = order
        .chunk_by(|&a, &b| msgs[a].subject == msgs[b].subject)
        .collect();
    threads.sort_unstable_by(|a, b| by_date(msgs, a[0], b[0]));
    let mut out = Vec::with_capacity(msgs.len());
    for t in threads {
        out.push(ThreadNode {
            id: Some(msgs[t[0]].id),
            children: (t.len() - 1) as u32,
        });
        out.extend(t[1..].iter().map(|&i| ThreadNode {
            id: Some(msgs[i].id),
            children: 0,
        }));
    }
    out
}

/// A link whose loop check (is the child an ancestor of the parent?) would walk more
/// ancestors than this is not made, as if it made a loop. Threads that deep with such
/// links are hostile, and the limit keeps THREAD's CPU bounded.
const MAX_WALK: usize = 1000;

/// All loop checks of one THREAD command together walk at most this far; past it, links that
/// need a check are not made.
const WALK_BUDGET: usize = 20_000_000;

/// A container of the REFERENCES algorithm: a message or a dummy.
#[derive(Debug, Clone, Default)]
struct Node {
    /// Index into the messages; `None` for a dummy.
    msg: Option<usize>,
    parent: Option<usize>,
    /// Only counted during step 1; the lists are built after it.
    child_count: usize,
    children: Vec<usize>,
}

struct Forest<'a> {
    msgs: &'a [ThreadMessage],
    nodes: Vec<Node>,
    budget: usize,
}

impl Forest<'_> {
    fn is_dummy(&self, n: usize) -> bool {
        self.nodes[n].msg.is_none()
    }

    /// Whether `ancestor` is `node` or above it; `None` when the walk is too long.
    fn has_ancestor(&mut self, mut node: usize, ancestor: usize) -> Option<bool> {
        for _ in 0..MAX_WALK {
            if node == ancestor {
                return Some(true);
            }
            self.budget = self.budget.checked_sub(1)?;
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return Some(false),
            }
        }
        None
    }

    /// Step 1A: makes `child` a child of `parent` unless it has a parent already ("if they
    /// are already linked, don't change the existing links") or that would make a loop.
    fn link(&mut self, parent: usize, child: usize) {
        if parent == child || self.nodes[child].parent.is_some() {
            return;
        }
        // A node without children is nobody's ancestor: no walk needed.
        if self.nodes[child].child_count > 0 && self.has_ancestor(parent, child) != Some(false) {
            return;
        }
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].child_count += 1;
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].child_count -= 1;
        }
    }

    /// The date to sort a node by: its message's, or a dummy's first child's (children are
    /// sorted first) — RFC 5256 §3 steps 4 and 6.
    fn date_key(&self, n: usize) -> Option<usize> {
        let mut n = n;
        loop {
            match self.nodes[n].msg {
                Some(m) => return Some(m),
                None => n = *self.nodes[n].children.first()?,
            }
        }
    }

    fn sort_siblings(&self, list: &mut [usize]) {
        list.sort_by(|&a, &b| match (self.date_key(a), self.date_key(b)) {
            (Some(a), Some(b)) => by_date(self.msgs, a, b),
            (a, b) => a.cmp(&b),
        });
    }

    /// A node's base subject and reply flag; a dummy has its first child's subject.
    fn subject(&self, n: usize) -> Option<(&[u8], bool)> {
        let m = &self.msgs[self.date_key(n)?];
        Some((&m.subject, self.nodes[n].msg.is_some() && m.reply))
    }

    /// The nodes under `roots` in post-order (children before their parent), iteratively.
    fn post_order(&self, roots: &[usize]) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        // Pre-order with children reversed, reversed: every child before its parent.
        out.reverse();
        out
    }

    fn new_dummy(&mut self, children: Vec<usize>) -> usize {
        let d = self.nodes.len();
        for &c in &children {
            self.nodes[c].parent = Some(d);
        }
        self.nodes.push(Node {
            msg: None,
            parent: None,
            child_count: children.len(),
            children,
        });
        d
    }
}

/// REFERENCES — RFC 5256 §3, steps 1 to 6.
pub(crate) fn references(msgs: &[ThreadMessage]) -> Vec<ThreadNode> {
    let mut f = Forest {
        msgs,
        nodes: Vec::with_capacity(msgs.len()),
        budget: WALK_BUDGET,
    };
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(msgs.len());
    // Step 1: containers and links, message by message in sequence order.
    for (i, m) in msgs.iter().enumerate() {
        // A missing or duplicate Message-ID makes the message unique (only the first
        // message with an ID owns it).
        let own = match m.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&n) if f.nodes[n].msg.is_none() => Some(n),
                Some(_) => None,
                None => {
                    ids.insert(id, f.nodes.len());
                    f.nodes.push(Node::default());
                    Some(f.nodes.len() - 1)
                }
            },
            None => None,
        };
        let node = own.unwrap_or_else(|| {
            f.nodes.push(Node::default());
            f.nodes.len() - 1
        });
        f.nodes[node].msg = Some(i);
        // 1A: link the references in order, parent before child.
        let mut prev: Option<usize> = None;
        for r in &m.references {
            let n = *ids.entry(r.as_str()).or_insert_with(|| {
                f.nodes.push(Node::default());
                f.nodes.len() - 1
            });
            if let Some(p) = prev {
                f.link(p, n);
            }
            prev = Some(n);
        }
        // 1B: the last reference is the parent; a different parent found before came from
        // a truncated References field elsewhere, so the link is replaced. No references: no
        // parent.
        if f.nodes[node].parent != prev {
            f.unlink(node);
            if let Some(p) = prev {
                f.link(p, node);
            }
        }
    }
    for n in 0..f.nodes.len() {
        if let Some(p) = f.nodes[n].parent {
            f.nodes[p].children.push(n);
        }
    }
    // Step 2: the roots.
    let roots: Vec<usize> = (0..f.nodes.len())
        .filter(|&n| f.nodes[n].parent.is_none())
        .collect();
    // Step 3: prune dummies, children first so that a dummy's own children are final.
    for n in f.post_order(&roots) {
        if f.nodes[n].children.iter().all(|&c| !f.is_dummy(c)) {
            continue;
        }
        let old = std::mem::take(&mut f.nodes[n].children);
        let mut new = Vec::with_capacity(old.len());
        for c in old {
            if f.is_dummy(c) {
                // 3A drops an empty dummy; 3B splices its children in its place.
                let grandchildren = std::mem::take(&mut f.nodes[c].children);
                for &g in &grandchildren {
                    f.nodes[g].parent = Some(n);
                }
                new.extend(grandchildren);
            } else {
                new.push(c);
            }
        }
        f.nodes[n].children = new;
    }
    // 3B at the top: a dummy's children are promoted only if there is just one.
    let mut top = Vec::with_capacity(roots.len());
    for r in roots {
        if !f.is_dummy(r) {
            top.push(r);
            continue;
        }
        match f.nodes[r].children.len() {
            0 => {}
            1 => {
                let c = f.nodes[r].children[0];
                f.nodes[c].parent = None;
                top.push(c);
            }
            _ => top.push(r),
        }
    }
    // Step 4: sort the top level by sent date (a dummy by its first child, children sorted
    // first).
    for &r in &top {
        if f.is_dummy(r) {
            let mut children = std::mem::take(&mut f.nodes[r].children);
            f.sort_siblings(&mut children);
            f.nodes[r].children = children;
        }
    }
    f.sort_siblings(&mut top);
    // Step 5: gather threads with the same base subject.
    let mut at_top = vec![false; f.nodes.len()];
    for &r in &top {
        at_top[r] = true;
    }
    let mut table: HashMap<Box<[u8]>, usize> = HashMap::new();
    // 5A-5C: the subject table.
    for &r in &top {
        let Some((subject, reply)) = f.subject(r) else {
            continue;
        };
        if subject.is_empty() {
            continue;
        }
        match table.get(subject) {
            None => {
                table.insert(subject.into(), r);
            }
            Some(&t) => {
                let t_reply = f.subject(t).is_some_and(|(_, reply)| reply);
                if !f.is_dummy(t) && (f.is_dummy(r) || (t_reply && !reply)) {
                    table.insert(subject.into(), r);
                }
            }
        }
    }
    // 5D: merge.
    let mut new_top = Vec::new();
    for &r in &top {
        if !at_top[r] {
            continue;
        }
        let Some((subject, reply)) = f.subject(r) else {
            continue;
        };
        if subject.is_empty() {
            continue;
        }
        let subject: Box<[u8]> = subject.into();
        let Some(&t) = table.get(&subject) else {
            continue;
        };
        if t == r {
            continue;
        }
        let t_reply = f.subject(t).is_some_and(|(_, reply)| reply);
        let (t_dummy, r_dummy) = (f.is_dummy(t), f.is_dummy(r));
        if t_dummy && r_dummy {
            // Both dummies: the children of both become siblings.
            let children = std::mem::take(&mut f.nodes[r].children);
            for &c in &children {
                f.nodes[c].parent = Some(t);
            }
            f.nodes[t].children.extend(children);
            at_top[r] = false;
        } else if t_dummy || (!r_dummy && reply && !t_reply) {
            // A message joins the dummy of its subject; a reply goes under the original.
            f.nodes[r].parent = Some(t);
            f.nodes[t].children.push(r);
            at_top[r] = false;
        } else {
            // Otherwise both become children of a new dummy, which takes the table's place.
            let d = f.new_dummy(vec![t, r]);
            at_top.push(true);
            at_top[t] = false;
            at_top[r] = false;
            table.insert(subject, d);
            new_top.push(d);
        }
    }
    let mut top: Vec<usize> = top
        .into_iter()
        .chain(new_top)
        .filter(|&n| at_top[n])
        .collect();
    // Step 6: sort every set of siblings by sent date, the deepest first.
    for n in f.post_order(&top) {
        if f.nodes[n].children.len() > 1 {
            let mut children = std::mem::take(&mut f.nodes[n].children);
            f.sort_siblings(&mut children);
            f.nodes[n].children = children;
        }
    }
    f.sort_siblings(&mut top);
    // The forest in pre-order.
    let mut out = Vec::with_capacity(msgs.len());
    let mut stack: Vec<usize> = top.into_iter().rev().collect();
    while let Some(n) = stack.pop() {
        let node = &f.nodes[n];
        out.push(ThreadNode {
            id: node.msg.map(|m| msgs[m].id),
            children: node.children.len() as u32,
        });
        stack.extend(node.children.iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a forest the way the THREAD response does, for readable assertions.
    fn show(nodes: &[ThreadNode]) -> String {
        let mut r = imap_proto::Response::Data(imap_proto::Data::Thread(nodes.to_vec()))
            .to_bytes(imap_proto::EncodeOptions::default());
        r.truncate(r.len() - 2);
        let s = String::from_utf8(r).unwrap();
        s.strip_prefix("* THREAD").unwrap().trim_start().to_string()
    }

    fn msg(
        id: u32,
        date: i64,
        subject: &str,
        message_id: Option<&str>,
        refs: &[&str],
    ) -> ThreadMessage {
        let base = super::super::subject::base_subject(subject);
        ThreadMessage {
            id,
            date,
            subject: super::super::order::casemap(&base.text),
            reply: base.reply,
            message_id: message_id.map(String::from),
            references: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn imaptest_thread() {
        // thread.mbox: dates 17:06, 15:06, 16:06.
        let m = [
            msg(1, 1706, "", Some("a@b"), &[]),
            msg(2, 1506, "", Some("b@b"), &["a@b", "c@b"]),
            msg(3, 1606, "", Some("c@b"), &["b@b"]),
        ];
        assert_eq!(show(&references(&m)), "(3 2)(1)");
        // After expunging the first: renumbered 1 and 2.
        let m = [
            msg(1, 1506, "", Some("b@b"), &["a@b", "c@b"]),
            msg(2, 1606, "", Some("c@b"), &["b@b"]),
        ];
        assert_eq!(show(&references(&m)), "(2 1)");
    }

    #[test]
    fn imaptest_thread2_to_8() {
        // thread2: a duplicate Message-ID makes the second message unique.
        let m = [
            msg(1, 0, "", Some("a@b"), &[]),
            msg(2, 0, "", Some("a@b"), &[]),
        ];
        assert_eq!(show(&references(&m)), "(1)(2)");
        // thread3: the same, merged by subject (a reply goes under the original).
        let m = [
            msg(1, 0, "foo", Some("a@b"), &[]),
            msg(2, 1, "Re: foo", Some("a@b"), &[]),
        ];
        assert_eq!(show(&references(&m)), "(1 2)");
        // thread4: a lone dummy parent is pruned, then the subjects merge.
        let m = [
            msg(1, 0, "foo", Some("a@b"), &[]),
            msg(2, 1, "Re: foo", Some("b@b"), &["c@b"]),
        ];
        assert_eq!(show(&references(&m)), "(1 2)");
        // thread5 with In-Reply-To as the only reference.
        let m = [
            msg(1, 2, "", Some("1@b"), &[]),
            msg(2, 0, "", Some("2@b"), &["1@b"]),
            msg(3, 0, "", Some("3@b"), &["1@b"]),
            msg(4, 0, "", Some("4@b"), &["2@b"]),
        ];
        assert_eq!(show(&references(&m)), "(1 (2 4)(3))");
        let m = [
            msg(1, 0, "", Some("3@b"), &["1@b"]),
            msg(2, 0, "", Some("4@b"), &["2@b"]),
        ];
        assert_eq!(show(&references(&m)), "(1)(2)");
        let m = [
            msg(1, 0, "", Some("3@b"), &["1@b"]),
            msg(2, 0, "", Some("4@b"), &["2@b"]),
            msg(3, 0, "", Some("5@b"), &["2@b"]),
        ];
        assert_eq!(show(&references(&m)), "(1)((2)(3))");
        // thread6: two children of a missing message stay under a dummy at the top.
        let m = [msg(1, 0, "", None, &["a@b"]), msg(2, 1, "", None, &["a@b"])];
        assert_eq!(show(&references(&m)), "((1)(2))");
        // thread7: a duplicate ID gets its own container.
        let m = [
            msg(1, 0, "", Some("a@b"), &[]),
            msg(2, 0, "", Some("b@b"), &["a@b"]),
            msg(3, 0, "", Some("c@b"), &["b@b"]),
            msg(4, 0, "", Some("b@b"), &["a@b"]),
        ];
        assert_eq!(show(&references(&m)), "(1 (2 3)(4))");
        let m = [
            msg(1, 0, "", Some("a@b"), &[]),
            msg(2, 0, "", Some("c@b"), &["b@b"]),
            msg(3, 0, "", Some("b@b"), &["a@b"]),
        ];
        assert_eq!(show(&references(&m)), "(1 3 2)");
    }

    #[test]
    fn subject_merging() {
        // Two originals with the same subject: a dummy holds both; a third joins it.
        let m = [
            msg(1, 3, "hello", Some("1"), &[]),
            msg(2, 1, "Hello", Some("2"), &[]),
            msg(3, 2, "Re: hello", Some("3"), &[]),
            msg(4, 0, "other", Some("4"), &[]),
        ];
        assert_eq!(show(&references(&m)), "(4)((2 3)(1))");
        // A reply and its original: the reply goes under it, whichever is older.
        let m = [
            msg(1, 0, "Re: x", Some("1"), &[]),
            msg(2, 5, "x", Some("2"), &[]),
        ];
        assert_eq!(show(&references(&m)), "(2 1)");
        // Empty subjects are never merged.
        let m = [
            msg(1, 0, "", Some("1"), &[]),
            msg(2, 1, "Re:", Some("2"), &[]),
        ];
        assert_eq!(show(&references(&m)), "(1)(2)");
    }

    #[test]
    fn loops_are_not_made() {
        // a -> b and b -> a in the references; a message referencing itself.
        let m = [
            msg(1, 0, "", Some("a"), &["b"]),
            msg(2, 1, "", Some("b"), &["a"]),
            msg(3, 2, "", Some("c"), &["c"]),
        ];
        assert_eq!(show(&references(&m)), "(2 1)(3)");
    }

    #[test]
    fn ordered_subject_rfc() {
        // imaptest thread-orderedsubject2: subjects a/b alternating, dates descending then a
        // second run of descending dates.
        let dates = [10, 9, 8, 7, 30, 29, 28, 27];
        let m: Vec<ThreadMessage> = (0..8)
            .map(|i| {
                msg(
                    i as u32 + 1,
                    dates[i],
                    if i % 2 == 0 { "a" } else { "b" },
                    None,
                    &[],
                )
            })
            .collect();
        assert_eq!(show(&ordered_subject(&m)), "(4 (2)(8)(6))(3 (1)(7)(5))");
        let m = [
            msg(1, 0, "x", None, &[]),
            msg(2, 0, "Re: X", None, &[]),
            msg(3, 0, "y", None, &[]),
        ];
        assert_eq!(show(&ordered_subject(&m)), "(1 2)(3)");
        assert_eq!(show(&ordered_subject(&[])), "");
    }

    /// 100,000 messages in one reply chain, and a fan of 100,000 replies to one message: no
    /// recursion, no quadratic work.
    #[test]
    fn large_threads() {
        let n = 100_000u32;
        let chain: Vec<ThreadMessage> = (1..=n)
            .map(|i| {
                let refs: Vec<String> = (i.saturating_sub(20).max(1)..i)
                    .map(|r| r.to_string())
                    .collect();
                ThreadMessage {
                    id: i,
                    date: i64::from(i),
                    message_id: Some(i.to_string()),
                    references: refs,
                    ..ThreadMessage::default()
                }
            })
            .collect();
        let t = std::time::Instant::now();
        let out = references(&chain);
        assert_eq!(out.len(), n as usize);
        assert!(out[..out.len() - 1].iter().all(|x| x.children == 1));
        let fan: Vec<ThreadMessage> = (1..=n)
            .map(|i| ThreadMessage {
                id: i,
                date: -i64::from(i),
                message_id: Some(i.to_string()),
                references: if i == 1 { vec![] } else { vec!["1".into()] },
                ..ThreadMessage::default()
            })
            .collect();
        let out = references(&fan);
        assert_eq!(out[0].children, n - 1);
        assert_eq!(
            out[1].id,
            Some(n),
            "the youngest reply has the earliest date"
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
    }
}
