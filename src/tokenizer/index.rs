//! Fast lookup tables for large vocabularies: [`TokenIndex`] (token text to id, storing only ids
//! and comparing against the vocabulary's own texts) and [`FxMap`] (a `HashMap` with FxHash) for
//! the merge ranks. The vocabulary is trusted input, and SipHash with a second copy of every text
//! would make loading a 150k-token vocabulary several times slower.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (as in rustc): one multiply per 8 bytes.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn finish(&self) -> u64 {
        // The multiply mixes into the high bits; tables index with the low ones.
        self.0.rotate_left(26)
    }
}

/// A `HashMap` with [`FxHasher`].
pub(super) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(b);
    h.finish()
}

/// Token text to id, by open addressing over ids. When two tokens share a text the later id wins,
/// as in llama.cpp's `token_to_id`. Each slot keeps the text's 64-bit hash next to the id, so a
/// probe only reads a token's text when the hashes agree.
pub(super) struct TokenIndex {
    slots: Vec<Slot>,
    mask: usize,
}

#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    id: u32,
}

const EMPTY: u32 = u32::MAX;

impl TokenIndex {
    /// An index of `n` tokens, where `text(id)` gives each token's text.
    pub(super) fn build<'a>(n: usize, text: impl Fn(u32) -> &'a str) -> TokenIndex {
        let cap = (n * 2).next_power_of_two().max(16);
        let mut index = TokenIndex {
            slots: vec![Slot { hash: 0, id: EMPTY }; cap],
            mask: cap - 1,
        };
        for id in 0..n as u32 {
            let t = text(id);
            let hash = hash_bytes(t.as_bytes());
            let mut slot = hash as usize & index.mask;
            loop {
                let cur = index.slots[slot];
                if cur.id == EMPTY || (cur.hash == hash && text(cur.id) == t) {
                    index.slots[slot] = Slot { hash, id };
                    break;
                }
                slot = (slot + 1) & index.mask;
            }
        }
        index
    }

    /// The id whose text is `key`.
    pub(super) fn get<'a>(&self, key: &str, text: impl Fn(u32) -> &'a str) -> Option<u32> {
        self.probe(key, |id| text(id) == key)
    }

    /// The id whose text has the same 64-bit hash as `key`, without reading any token's text.
    /// Only for keys that come from the vocabulary file itself (merges), where a collision could
    /// only be crafted into the file, which could as well list any other merge.
    pub(super) fn get_trusted(&self, key: &str) -> Option<u32> {
        self.probe(key, |_| true)
    }

    fn probe(&self, key: &str, same: impl Fn(u32) -> bool) -> Option<u32> {
        let hash = hash_bytes(key.as_bytes());
        let mut slot = hash as usize & self.mask;
        loop {
            let cur = self.slots[slot];
            if cur.id == EMPTY {
                return None;
            }
            if cur.hash == hash && same(cur.id) {
                return Some(cur.id);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// Every id that its text maps to (one per distinct text), in no particular order.
    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().map(|s| s.id).filter(|&id| id != EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_duplicates_win() {
        let texts = ["a", "bb", "a", "ccc"];
        let idx = TokenIndex::build(texts.len(), |i| texts[i as usize]);
        assert_eq!(idx.get("a", |i| texts[i as usize]), Some(2));
        assert_eq!(idx.get("ccc", |i| texts[i as usize]), Some(3));
        assert_eq!(idx.get("d", |i| texts[i as usize]), None);
        assert_eq!(idx.ids().count(), 3);
    }
}
