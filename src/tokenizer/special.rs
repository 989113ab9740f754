//! Splitting input text around special-token texts before tokenization (llama.cpp's
//! `tokenizer_st_partition`): longest special tokens first, every occurrence, honouring the
//! lstrip/rstrip attributes. Control and unknown tokens are recognised only with `parse_special`;
//! user-defined tokens always are.

use super::vocab::{attr, Vocab};

/// A piece of the input: raw text (a byte range) or an already recognised token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fragment {
    /// Text still to be tokenized: `text[start..end]`.
    Text(usize, usize),
    /// A special token.
    Token(u32),
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Partitions `text` into fragments.
pub(super) fn partition(vocab: &Vocab, text: &str, parse_special: bool) -> Vec<Fragment> {
    if text.is_empty() {
        return Vec::new();
    }
    let bytes = text.as_bytes();
    let mut frags = vec![Fragment::Text(0, text.len())];
    let mut next = Vec::new();
    for &id in &vocab.special_cache {
        let tok = &vocab.tokens[id as usize];
        if !parse_special && tok.attr & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let needle = tok.text.as_str();
        // Cheap pre-check: skip tokens that occur nowhere in the remaining text.
        if !frags
            .iter()
            .any(|f| matches!(*f, Fragment::Text(s, e) if text[s..e].contains(needle)))
        {
            continue;
        }
        next.clear();
        for &frag in &frags {
            let Fragment::Text(mut start, end) = frag else {
                next.push(frag);
                continue;
            };
            loop {
                let Some(found) = text[start..end].find(needle) else {
                    next.push(Fragment::Text(start, end));
                    break;
                };
                let m = start + found;
                if m > start {
                    let mut left_end = m;
                    if tok.attr & attr::LSTRIP != 0 {
                        while left_end > start && is_space(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > start {
                        next.push(Fragment::Text(start, left_end));
                    }
                }
                next.push(Fragment::Token(id));
                let mut right = m + needle.len();
                if right >= end {
                    break;
                }
                if tok.attr & attr::RSTRIP != 0 {
                    while right < end && is_space(bytes[right]) {
                        right += 1;
                    }
                }
                if right >= end {
                    break;
                }
                start = right;
            }
        }
        std::mem::swap(&mut frags, &mut next);
    }
    frags
}
