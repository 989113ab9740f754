//! Tokenizers built from GGUF metadata: SentencePiece-style (`llama`) and byte-level BPE (`gpt2`),
//! producing exactly llama.cpp's token ids (`llama_tokenize`) and text (`llama_token_to_piece`,
//! `llama_detokenize`).
//!
//! Module map:
//! * `index`: fast token-text and merge lookups.
//! * `vocab`: loading tokens, attributes, special ids, flags and merges from GGUF metadata.
//! * `special`: splitting input around special-token texts.
//! * `spm`: SentencePiece-style merges by score.
//! * `pretokenize`: the BPE pre-tokenizers (word splitting) per `tokenizer.ggml.pre`.
//! * `bpe`: byte-level BPE merges by rank inside a word.
//! * `unicode`, `unicode_data`: llama.cpp's code point categories and the GPT-2 byte mapping.
//! * `stream`: [`Utf8Stream`], whole characters out of streamed token pieces.

mod bpe;
mod index;
mod pretokenize;
mod special;
mod spm;
mod stream;
mod unicode;
mod unicode_data;
mod vocab;

pub use stream::Utf8Stream;
pub use vocab::ModelKind;

use crate::error::{Error, ErrorCode, Result};
use crate::gguf::GgufFile;
use pretokenize::PreTokenizer;
use special::Fragment;
use vocab::{attr, Vocab};

/// A tokenizer for one model's vocabulary. Immutable and cheap to share between threads.
pub struct Tokenizer {
    vocab: Vocab,
    pre: Option<PreTokenizer>,
    /// Every token's piece with control tokens rendered, end to end, and where each ends; made at
    /// the first [`Tokenizer::rendered_piece`] (grammars check each candidate token's bytes).
    rendered: std::sync::OnceLock<(Vec<u8>, Vec<u32>)>,
    /// The rendered pieces as a trie (grammars check tokens through it), made at first use.
    trie: std::sync::OnceLock<crate::grammar::TokenTrie>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("pre", &self.vocab.pre_name)
            .field("n_vocab", &self.vocab.tokens.len())
            .finish()
    }
}

impl Tokenizer {
    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata (tensors are not
    /// needed). Inconsistent metadata is a `BadModel` error; an unknown tokenizer model or
    /// pre-tokenizer is `Unsupported`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer> {
        let vocab = Vocab::load(gguf)?;
        let pre = vocab
            .pre
            .as_ref()
            .map(|cfg| PreTokenizer::new(cfg.exprs))
            .transpose()?;
        Ok(Tokenizer {
            vocab,
            pre,
            rendered: std::sync::OnceLock::new(),
            trie: std::sync::OnceLock::new(),
        })
    }

    /// Text to token ids, as llama.cpp's `llama_tokenize`: `add_special` adds BOS/EOS as the
    /// file's flags say; `parse_special` turns the text of control tokens (e.g. `<|im_start|>`)
    /// into those tokens (user-defined tokens are always recognised).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let v = &self.vocab;
        let frags = special::partition(v, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let bos = |out: &mut Vec<u32>| -> Result<()> {
            out.push(v.bos.ok_or_else(|| {
                Error::new(
                    ErrorCode::BadModel,
                    "the model asks for a BOS token but has none",
                )
            })?);
            Ok(())
        };
        let eos = |out: &mut Vec<u32>| -> Result<()> {
            out.push(v.eos.ok_or_else(|| {
                Error::new(
                    ErrorCode::BadModel,
                    "the model asks for an EOS token but has none",
                )
            })?);
            Ok(())
        };
        if add_special && v.add_bos {
            bos(&mut out)?;
        }
        match v.kind {
            ModelKind::Spm => {
                // A space prefix goes before the first text and before text after a special token.
                let mut prev_special = true;
                for frag in frags {
                    match frag {
                        Fragment::Text(s, e) => {
                            let mut t = String::with_capacity(e - s + 4);
                            if v.add_space_prefix && prev_special {
                                t.push(' ');
                            }
                            t.push_str(&text[s..e]);
                            let t = t.replace(' ', "\u{2581}");
                            spm::tokenize(v, &t, &mut out)?;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            ModelKind::Bpe => {
                let pre = self
                    .pre
                    .as_ref()
                    .expect("BPE vocabularies have a pre-tokenizer");
                let mut session = bpe::Session::new(v);
                for frag in frags {
                    match frag {
                        Fragment::Text(s, e) => {
                            let piece = &text[s..e];
                            for (a, b) in pre.split(piece)? {
                                session.tokenize_word(&piece.as_bytes()[a..b], &mut out);
                            }
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && v.add_eos {
            eos(&mut out)?;
        }
        Ok(out)
    }

    /// The bytes of one token, as llama.cpp's `llama_token_to_piece` with `lstrip` 0: control and
    /// unknown tokens give nothing unless `special`. An id outside the vocabulary gives nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_piece(id, special, false, &mut out);
        out
    }

    /// [`Tokenizer::token_to_piece`] with `special`, from a table made once (about the size of the
    /// vocabulary's text); empty outside the vocabulary.
    pub fn rendered_piece(&self, id: u32) -> &[u8] {
        let (text, ends) = self.rendered.get_or_init(|| {
            let mut text = Vec::new();
            let mut ends = Vec::with_capacity(self.n_vocab());
            for t in 0..self.n_vocab() as u32 {
                self.append_piece(t, true, false, &mut text);
                ends.push(text.len() as u32);
            }
            (text, ends)
        });
        let Some(&end) = ends.get(id as usize) else {
            return &[];
        };
        let start = if id == 0 { 0 } else { ends[id as usize - 1] };
        &text[start as usize..end as usize]
    }

    /// The vocabulary's rendered pieces as a trie of code points, end-of-generation tokens left
    /// out; made once (a few tens of milliseconds for 150,000 tokens).
    pub fn token_trie(&self) -> &crate::grammar::TokenTrie {
        self.trie.get_or_init(|| {
            crate::grammar::TokenTrie::new(
                self.n_vocab() as u32,
                |t| self.rendered_piece(t),
                |t| self.is_eog(t),
            )
        })
    }

    /// Appends a token's piece; `lstrip` drops one leading space.
    fn append_piece(&self, id: u32, special: bool, lstrip: bool, out: &mut Vec<u8>) {
        let Some(tok) = self.vocab.tokens.get(id as usize) else {
            return;
        };
        let a = tok.attr;
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return;
        }
        let start = out.len();
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(tok.text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            match self.vocab.kind {
                ModelKind::Spm => {
                    out.extend_from_slice(tok.text.replace('\u{2581}', " ").as_bytes());
                }
                ModelKind::Bpe => decode_byte_level(&tok.text, out),
            }
        } else if a & attr::BYTE != 0 {
            out.push(hex_byte(&tok.text));
        }
        if lstrip && out.len() > start && out[start] == b' ' {
            out.remove(start);
        }
    }

    /// Token ids to text, as llama.cpp's `llama_detokenize`: `remove_special` drops a leading BOS
    /// and trailing EOS that the model's flags would add; `unparse_special` renders control
    /// tokens' text. The result may contain invalid UTF-8 where the ids split a character.
    pub fn decode(&self, ids: &[u32], remove_special: bool, unparse_special: bool) -> Vec<u8> {
        let v = &self.vocab;
        let mut ids = ids;
        let mut remove_space = v.add_space_prefix;
        if remove_special && v.add_bos && !ids.is_empty() && Some(ids[0]) == v.bos {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special && v.add_eos && !ids.is_empty() && Some(ids[ids.len() - 1]) == v.eos {
            ids = &ids[..ids.len() - 1];
        }
        let mut text = Vec::new();
        for &id in ids {
            self.append_piece(id, unparse_special, remove_space, &mut text);
            remove_space = false;
        }
        if v.clean_spaces {
            clean_up_spaces(&mut text);
        }
        text
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.tokens.len()
    }

    /// The tokenizer algorithm.
    pub fn model_kind(&self) -> ModelKind {
        self.vocab.kind
    }

    /// The pre-tokenizer name (`tokenizer.ggml.pre`; empty when absent).
    pub fn pre_tokenizer(&self) -> &str {
        &self.vocab.pre_name
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// The end-of-turn token (from metadata, else found by text such as `<|im_end|>`).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.eot
    }

    /// The unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.vocab.unk
    }

    /// The padding token.
    pub fn pad(&self) -> Option<u32> {
        self.vocab.pad
    }

    /// The separator token.
    pub fn sep(&self) -> Option<u32> {
        self.vocab.sep
    }

    /// Whether `add_special` adds a BOS token.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// Whether `add_special` adds an EOS token.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// Whether SPM tokenization prefixes text with a space (and detokenization removes it).
    pub fn add_space_prefix(&self) -> bool {
        self.vocab.add_space_prefix
    }

    /// Whether generation ends at this token (EOS, EOT, `<|im_end|>`, `<|endoftext|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.contains(&id)
    }

    /// All end-of-generation tokens, ascending.
    pub fn eog_tokens(&self) -> Vec<u32> {
        self.vocab.eog.iter().copied().collect()
    }

    /// Whether the token is a control token (rendered only on request).
    pub fn is_control(&self, id: u32) -> bool {
        self.attr(id) & attr::CONTROL != 0
    }

    /// llama.cpp's attribute bits of a token (`llama_token_attr`); 0 outside the vocabulary.
    pub fn token_attr(&self, id: u32) -> u32 {
        self.attr(id)
    }

    fn attr(&self, id: u32) -> u32 {
        self.vocab.tokens.get(id as usize).map_or(0, |t| t.attr)
    }

    /// The token's text as stored in the vocabulary (with `▁` or GPT-2 byte characters).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.tokens.get(id as usize).map(|t| t.text.as_str())
    }

    /// The token's score (SPM merge priority; 0 when the file has none).
    pub fn token_score(&self, id: u32) -> Option<f32> {
        self.vocab.tokens.get(id as usize).map(|t| t.score)
    }

    /// The id of the token whose vocabulary text is exactly `text`.
    pub fn find_token(&self, text: &str) -> Option<u32> {
        self.vocab.find(text)
    }
}

/// Maps GPT-2 byte characters back to bytes (llama.cpp's `llama_decode_text`).
fn decode_byte_level(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// The byte of a `<0xNN>` token (`strtol` of the two characters after `<0x`).
fn hex_byte(text: &str) -> u8 {
    let digits = text.get(3..).unwrap_or("");
    let mut v = 0u8;
    for c in digits.chars().take(2) {
        match c.to_digit(16) {
            Some(d) => v = v.wrapping_mul(16).wrapping_add(d as u8),
            None => break,
        }
    }
    v
}

/// llama.cpp's `clean_up_tokenization_spaces` passes, ported literally (including their
/// in-place quirks).
fn clean_up_spaces(text: &mut Vec<u8>) {
    // First pass: " ?", " !", " .", " ," lose the space.
    let total1 = text.len();
    let mut total = usize::from(total1 > 0);
    for i in 1..total1 {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    // Second pass: " ' " becomes "'".
    let total2 = text.len();
    let mut total = usize::from(total2 > 0);
    let mut i = 1;
    while i < total2 {
        let x = text[i];
        if x == b'\'' && i + 1 < total2 && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    // Third pass: " 's", " 'm", " 're", " 've" lose the space.
    let total3 = text.len();
    let mut total = usize::from(total3 > 0);
    for i in 1..total3 {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < total3 {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if i + 2 < total3 {
                let x2 = text[i + 2];
                if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_up_spaces(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn clean_up_matches_llama_cpp() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("it 's a ' b"), "it's a'b");
        assert_eq!(clean("we 're here"), "we're here");
        assert_eq!(clean("don 't"), "don 't");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn tokenizer_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokenizer>();
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(hex_byte("<0x0A>"), 10);
        assert_eq!(hex_byte("<0xFF>"), 255);
        assert_eq!(hex_byte("<0x"), 0);
    }
}
