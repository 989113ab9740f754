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
    pub fn new(n_vocab: u32, piece: impl Fn(u32) -> Vec<u8>, skip: impl Fn(u32) -> bool) -> Self {
        // Children while building: a map per node.
        let mut kids: Vec<Vec<(u32, u32)>> = vec![Vec::new()];
        let mut ends: Vec<Vec<u32>> = vec![Vec::new()];
        let mut irregular = Vec::new();
        let mut cps = Vec::new();
        for t in 0..n_vocab {
            if skip(t) {
                continue;
            }
            let p = piece(t);
            if p.first().is_none_or(|&b| b == 0) {
                continue;
            }
            let rest = decode(&p, Partial::default(), &mut cps);
            if rest.remain != 0 || cps.is_empty() {
                irregular.push(t);
                continue;
            }
            let mut at = 0usize;
            for &c in &cps {
                at = match kids[at].binary_search_by_key(&c, |e| e.0) {
                    Ok(i) => kids[at][i].1 as usize,
                    Err(i) => {
                        let n = kids.len() as u32;
                        kids[at].insert(i, (c, n));
                        kids.push(Vec::new());
                        ends.push(Vec::new());
                        n as usize
                    }
                };
            }
            ends[at].push(t);
        }
        let mut trie = TokenTrie {
            irregular,
            ..Default::default()
        };
        for (k, e) in kids.into_iter().zip(ends) {
            trie.nodes.push(Node {
                first: trie.edges.len() as u32,
                count: k.len() as u32,
                ends_first: trie.ends.len() as u32,
                ends_count: e.len() as u32,
            });
            trie.edges.extend(k);
            trie.ends.extend(e);
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
