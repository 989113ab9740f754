//! Byte-level BPE inside one pre-tokenized word (llama.cpp's `llm_tokenizer_bpe_session`): every
//! byte starts as its GPT-2 character's token, and the adjacent pair with the lowest merge rank is
//! merged until no listed merge applies.
//!
//! llama.cpp compares symbol texts; chord compares token ids, which is equivalent because every
//! merge names two tokens (checked when loading) and a merged symbol's text is a token whenever a
//! later merge can name it.

use super::vocab::{Merge, Vocab, MERGED_NONE};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

const NONE: u32 = MERGED_NONE;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: isize,
    next: isize,
    id: u32,
}

struct Bigram<'v> {
    rank: u32,
    left: usize,
    right: usize,
    size: usize,
    merge: &'v Merge,
}

impl PartialEq for Bigram<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram<'_> {}

impl PartialOrd for Bigram<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram<'_> {
    /// The heap pops the lowest rank first, and on equal ranks the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// Reusable buffers for tokenizing many words with one vocabulary.
pub(super) struct Session<'v> {
    vocab: &'v Vocab,
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram<'v>>,
}

impl<'v> Session<'v> {
    /// A session for `vocab`.
    pub(super) fn new(vocab: &'v Vocab) -> Self {
        Session {
            vocab,
            symbols: Vec::new(),
            queue: BinaryHeap::new(),
        }
    }

    /// Tokenizes one word (raw bytes, before the GPT-2 byte mapping) and appends the ids to `out`.
    pub(super) fn tokenize_word(&mut self, word: &[u8], out: &mut Vec<u32>) {
        let vocab = self.vocab;
        if word.is_empty() {
            return;
        }
        if vocab.ignore_merges {
            let encoded: String = word.iter().map(|&b| byte_char(b)).collect();
            if let Some(id) = vocab.find(&encoded) {
                out.push(id);
                return;
            }
        }
        let symbols = &mut self.symbols;
        let queue = &mut self.queue;
        symbols.clear();
        queue.clear();
        for (i, &b) in word.iter().enumerate() {
            symbols.push(Symbol {
                start: i,
                len: 1,
                prev: i as isize - 1,
                next: if i + 1 == word.len() {
                    -1
                } else {
                    i as isize + 1
                },
                id: vocab.byte_tokens[b as usize].unwrap_or(NONE),
            });
        }
        let add =
            |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram<'v>>, left: isize, right: isize| {
                if left < 0 || right < 0 {
                    return;
                }
                let (l, r) = (symbols[left as usize], symbols[right as usize]);
                if l.id == NONE || r.id == NONE {
                    return;
                }
                if let Some(merge) = vocab.merges.get(&((l.id as u64) << 32 | r.id as u64)) {
                    queue.push(Bigram {
                        rank: merge.rank,
                        left: left as usize,
                        right: right as usize,
                        size: l.len + r.len,
                        merge,
                    });
                }
            };
        for i in 1..symbols.len() {
            add(symbols, queue, i as isize - 1, i as isize);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
            // Outdated: one side already merged elsewhere.
            if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
                continue;
            }
            let merged = vocab.merged_id(l.id, r.id, bigram.merge);
            let left = &mut symbols[bigram.left];
            left.len += r.len;
            left.next = r.next;
            left.id = merged;
            let left = *left;
            symbols[bigram.right].len = 0;
            if r.next >= 0 {
                symbols[r.next as usize].prev = bigram.left as isize;
            }
            add(symbols, queue, left.prev, bigram.left as isize);
            add(symbols, queue, bigram.left as isize, left.next);
        }
        for s in symbols.iter().filter(|s| s.len > 0) {
            if s.id != NONE {
                out.push(s.id);
                continue;
            }
            // llama.cpp looks up each byte of the mapped text as a one-byte token: only printable
            // ASCII maps to itself, every other byte's character is multi-byte and is dropped.
            for &b in &word[s.start..s.start + s.len] {
                if (0x21..=0x7E).contains(&b) {
                    if let Some(id) = vocab.byte_tokens[b as usize] {
                        out.push(id);
                    }
                }
            }
        }
    }
}

/// The GPT-2 character of a byte.
fn byte_char(b: u8) -> char {
    static TABLE: std::sync::OnceLock<[char; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(super::unicode::byte_to_char_table)[b as usize]
}
