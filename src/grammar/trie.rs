//! The vocabulary as a trie of code points, so that a grammar checks the tokens that share a
//! beginning together and drops a whole branch at its first disallowed character: in a state
//! that allows few tokens (a digit, a key) the walk visits little more than the first characters.
//!
//! Tokens whose text does not decode into whole characters (byte tokens, pieces of a character,
//! invalid UTF-8) are kept aside and checked one by one, as is everything while the previous
//! token left a character unfinished.

use super::state::{decode, Partial};

/// A node's children (code point, node) lie in `edges[first..first + count]`, sorted by code point.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    first: u32,
    count: u32,
    /// Tokens whose text ends here: `ends[ends_first..ends_first + ends_count]`.
    ends_first: u32,
    ends_count: u32,
}

/// The tokens of a vocabulary by their code points, and the tokens that are not whole characters.
#[derive(Debug, Default)]
pub struct TokenTrie {
    nodes: Vec<Node>,
    edges: Vec<(u32, u32)>,
    /// Every token of the trie, grouped by the node where its text ends.
    pub(super) ends: Vec<u32>,
    /// Tokens checked one by one: pieces that are not whole characters.
    pub(super) irregular: Vec<u32>,
}

impl TokenTrie {
    /// Builds the trie of the tokens `0..n_vocab` whose text is `piece(t)`, leaving out those for
    /// which `skip(t)` (end-of-generation tokens) and empty pieces or pieces that begin with NUL
    /// (which a grammar never allows).
    pub fn new<P: AsRef<[u8]>>(
        n_vocab: u32,
        piece: impl Fn(u32) -> P,
        skip: impl Fn(u32) -> bool,
    ) -> Self {
        // Every regular token's code points, end to end, then the tokens sorted by them: a node's
        // children are then contiguous runs, laid out when the node is, with no map per node.
        let mut cps: Vec<u32> = Vec::new();
        let mut keys: Vec<(u32, u32, u32)> = Vec::new(); // (start, end, token)
        let mut irregular = Vec::new();
        let mut buf = Vec::new();
        for t in 0..n_vocab {
            if skip(t) {
                continue;
            }
            let p = piece(t);
            let p = p.as_ref();
            if p.first().is_none_or(|&b| b == 0) {
                continue;
            }
            let rest = decode(p, Partial::default(), &mut buf);
            if rest.remain != 0 || buf.is_empty() {
                irregular.push(t);
                continue;
            }
            let start = cps.len() as u32;
            cps.extend_from_slice(&buf);
            keys.push((start, cps.len() as u32, t));
        }
        let key = |k: &(u32, u32, u32)| &cps[k.0 as usize..k.1 as usize];
        keys.sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.2.cmp(&b.2)));
        let mut trie = TokenTrie {
            irregular,
            ..Default::default()
        };
        // (node, depth, keys[from..to]): the keys whose first `depth` code points lead to node.
        trie.nodes.push(Node::default());
        let mut todo = vec![(0u32, 0usize, 0usize, keys.len())];
        while let Some((node, depth, mut from, to)) = todo.pop() {
            let ends_first = trie.ends.len() as u32;
            while from < to && key(&keys[from]).len() == depth {
                trie.ends.push(keys[from].2);
                from += 1;
            }
            let first = trie.edges.len() as u32;
            let mut i = from;
            while i < to {
                let c = key(&keys[i])[depth];
                let mut j = i + 1;
                while j < to && key(&keys[j])[depth] == c {
                    j += 1;
                }
                let child = trie.nodes.len() as u32;
                trie.nodes.push(Node::default());
                trie.edges.push((c, child));
                todo.push((child, depth + 1, i, j));
                i = j;
            }
            trie.nodes[node as usize] = Node {
                first,
                count: trie.edges.len() as u32 - first,
                ends_first,
                ends_count: trie.ends.len() as u32 - ends_first,
            };
        }
        trie
    }

    /// The children of `node`: (code point, node).
    pub(super) fn children(&self, node: u32) -> &[(u32, u32)] {
        let n = self.nodes[node as usize];
        &self.edges[n.first as usize..(n.first + n.count) as usize]
    }

    /// The tokens whose text ends at `node`.
    pub(super) fn ends(&self, node: u32) -> &[u32] {
        let n = self.nodes[node as usize];
        &self.ends[n.ends_first as usize..(n.ends_first + n.ends_count) as usize]
    }
}
