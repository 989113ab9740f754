//! Tokenizers built from GGUF metadata: SentencePiece-style (`llama`) and byte-level BPE (`gpt2`).
//! BRING-UP STUB, replaced by the tokenizer branch.
#![allow(missing_docs, dead_code)]
use crate::error::Result;
use crate::gguf::GgufFile;

pub struct Tokenizer {
    tokens: Vec<String>,
    eos: u32,
}
impl Tokenizer {
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let tokens = f
            .get_array("tokenizer.ggml.tokens")?
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect();
        Ok(Tokenizer {
            tokens,
            eos: f.get_u64("tokenizer.ggml.eos_token_id")? as u32,
        })
    }
    pub fn bos(&self) -> Option<u32> {
        Some(1)
    }
    pub fn eos(&self) -> Option<u32> {
        Some(self.eos)
    }
    pub fn add_bos(&self) -> bool {
        false
    }
    pub fn decode(&self, ids: &[u32], _r: bool, _u: bool) -> Vec<u8> {
        ids.iter()
            .flat_map(|&i| self.token_to_piece(i, false))
            .collect()
    }
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }
    pub fn encode(&self, _t: &str, _a: bool, _p: bool) -> Result<Vec<u32>> {
        Ok(vec![])
    }
    pub fn is_eog(&self, id: u32) -> bool {
        id == self.eos
    }
    pub fn token_to_piece(&self, id: u32, _special: bool) -> Vec<u8> {
        self.tokens[id as usize]
            .replace('Ġ', " ")
            .replace('Ċ', "\n")
            .into_bytes()
    }
}
pub struct Utf8Stream(Vec<u8>);
impl Default for Utf8Stream {
    fn default() -> Self {
        Self::new()
    }
}
impl Utf8Stream {
    pub fn new() -> Self {
        Utf8Stream(vec![])
    }
    pub fn push(&mut self, b: &[u8]) -> String {
        self.0.extend_from_slice(b);
        String::from_utf8_lossy(&std::mem::take(&mut self.0)).into_owned()
    }
    pub fn finish(&mut self) -> String {
        String::new()
    }
}
