//! SentencePiece-style tokenization (llama.cpp's `llm_tokenizer_spm_session`): start from UTF-8
//! characters, repeatedly merge the adjacent pair whose concatenation is the highest-scoring token,
//! and fall back to `<0xNN>` byte tokens for characters that never formed a token.

use super::unicode::utf8_len;
use super::vocab::Vocab;
use crate::error::{Error, ErrorCode, Result};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: isize,
    next: isize,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// The heap pops the highest score first, and on equal scores the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// The id of a byte's token: `<0xNN>`, or else the byte itself as a one-character token.
pub(super) fn byte_to_token(vocab: &Vocab, b: u8) -> Result<u32> {
    let hex = format!("<0x{b:02X}>");
    if let Some(id) = vocab.find(&hex) {
        return Ok(id);
    }
    if b < 0x80 {
        if let Some(id) = vocab.find(std::str::from_utf8(&[b]).expect("ASCII")) {
            return Ok(id);
        }
    }
    Err(Error::new(
        ErrorCode::BadModel,
        format!("the vocabulary has no token for byte 0x{b:02X} (no {hex})"),
    ))
}

/// Tokenizes already escaped text (spaces replaced by U+2581) and appends the ids to `out`.
pub(super) fn tokenize(vocab: &Vocab, text: &str, out: &mut Vec<u32>) -> Result<()> {
    let bytes = text.as_bytes();
    let mut symbols = Vec::with_capacity(bytes.len());
    let mut offs = 0;
    while offs < bytes.len() {
        let len = utf8_len(bytes[offs]).min(bytes.len() - offs);
        let index = symbols.len() as isize;
        offs += len;
        symbols.push(Symbol {
            start: offs - len,
            len,
            prev: index - 1,
            next: if offs == bytes.len() { -1 } else { index + 1 },
        });
    }
    if symbols.is_empty() {
        return Ok(());
    }

    let mut queue = BinaryHeap::new();
    let try_add =
        |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, left: isize, right: isize| {
            if left < 0 || right < 0 {
                return;
            }
            let (l, r) = (symbols[left as usize], symbols[right as usize]);
            let piece = &bytes[l.start..l.start + l.len + r.len];
            // The symbols hold whole characters, so the piece is valid UTF-8.
            let Ok(piece) = std::str::from_utf8(piece) else {
                return;
            };
            if let Some(id) = vocab.find(piece) {
                queue.push(Bigram {
                    left: left as usize,
                    right: right as usize,
                    score: vocab.tokens[id as usize].score,
                    size: piece.len(),
                });
            }
        };
    for i in 1..symbols.len() {
        try_add(&symbols, &mut queue, i as isize - 1, i as isize);
    }

    while let Some(bigram) = queue.pop() {
        let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
            continue;
        }
        symbols[bigram.left].len += r.len;
        symbols[bigram.right].len = 0;
        symbols[bigram.left].next = r.next;
        if r.next >= 0 {
            symbols[r.next as usize].prev = bigram.left as isize;
        }
        let left = symbols[bigram.left];
        try_add(&symbols, &mut queue, left.prev, bigram.left as isize);
        try_add(&symbols, &mut queue, bigram.left as isize, left.next);
    }

    let mut i = 0isize;
    while i != -1 {
        let s = symbols[i as usize];
        let piece = &text[s.start..s.start + s.len];
        match vocab.find(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    out.push(byte_to_token(vocab, b)?);
                }
            }
        }
        i = s.next;
    }
    Ok(())
}
