//! The vocabulary as llama.cpp loads it (`llama_vocab::impl::load`): token texts, scores and
//! attributes, special token ids, the end-of-generation set, the `add_bos`/`add_eos`/space-prefix
//! flags with llama.cpp's defaults per model type, and the BPE merge ranks.

use super::index::{FxMap, TokenIndex};
use super::pretokenize::{config_for, PreConfig};
use super::unicode::byte_to_char_table;
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{Array, GgufFile};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

/// Token attribute bits (llama.cpp's `llama_token_attr`).
pub(super) mod attr {
    /// `LLAMA_TOKEN_ATTR_UNKNOWN`.
    pub const UNKNOWN: u32 = 1 << 0;
    /// `LLAMA_TOKEN_ATTR_UNUSED`.
    pub const UNUSED: u32 = 1 << 1;
    /// `LLAMA_TOKEN_ATTR_NORMAL`.
    pub const NORMAL: u32 = 1 << 2;
    /// `LLAMA_TOKEN_ATTR_CONTROL`.
    pub const CONTROL: u32 = 1 << 3;
    /// `LLAMA_TOKEN_ATTR_USER_DEFINED`.
    pub const USER_DEFINED: u32 = 1 << 4;
    /// `LLAMA_TOKEN_ATTR_BYTE`.
    pub const BYTE: u32 = 1 << 5;
    /// `LLAMA_TOKEN_ATTR_LSTRIP`.
    pub const LSTRIP: u32 = 1 << 7;
    /// `LLAMA_TOKEN_ATTR_RSTRIP`.
    pub const RSTRIP: u32 = 1 << 8;
}

/// Which tokenizer algorithm a vocabulary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `tokenizer.ggml.model = "llama"`: SentencePiece-style merges by score with byte fallback.
    Spm,
    /// `tokenizer.ggml.model = "gpt2"`: byte-level BPE with ranked merges and a pre-tokenizer.
    Bpe,
}

/// One token of the vocabulary.
#[derive(Debug, Clone)]
pub(super) struct TokenData {
    pub text: String,
    pub score: f32,
    pub attr: u32,
}

/// One BPE merge.
pub(super) struct Merge {
    /// Lower merges first.
    pub rank: u32,
    /// The id of the merged text: [`MERGED_UNKNOWN`] until first needed, [`MERGED_NONE`] when the
    /// merged text is not a token. Resolved lazily because the lookup would otherwise dominate
    /// loading a vocabulary with hundreds of thousands of merges.
    merged: AtomicU32,
}

/// [`Merge::merged`] not looked up yet.
const MERGED_UNKNOWN: u32 = u32::MAX - 1;
/// The merged text of a [`Merge`] is not a token.
pub(super) const MERGED_NONE: u32 = u32::MAX;

/// Everything the tokenizer knows about the vocabulary.
pub(super) struct Vocab {
    pub kind: ModelKind,
    pub pre_name: String,
    pub pre: Option<PreConfig>,
    pub tokens: Vec<TokenData>,
    pub index: TokenIndex,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub fim: [Option<u32>; 6],
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub eog: BTreeSet<u32>,
    /// Control, user-defined and unknown tokens, longest text first (llama.cpp's
    /// `cache_special_tokens`).
    pub special_cache: Vec<u32>,
    /// BPE merges by `left id << 32 | right id`.
    pub merges: FxMap<u64, Merge>,
    /// BPE: the token of each byte's GPT-2 character.
    pub byte_tokens: [Option<u32>; 256],
}

fn bad(msg: String) -> Error {
    Error::new(ErrorCode::BadModel, msg)
}

/// Indices of the FIM token slots in [`Vocab::fim`].
const FIM_PRE: usize = 0;
const FIM_SUF: usize = 1;
const FIM_MID: usize = 2;
const FIM_PAD: usize = 3;
const FIM_REP: usize = 4;
const FIM_SEP: usize = 5;

/// Texts that llama.cpp recognises as EOT / FIM tokens when the metadata does not name them, in
/// the order chord prefers them (llama.cpp walks a hash map, so its choice among several present
/// candidates is unspecified).
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_TEXTS: [&[&str]; 6] = [
    &[
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<｜fim▁begin｜>",
        "<PRE>",
        "▁<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
    ],
    &[
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<｜fim▁hole｜>",
        "<SUF>",
        "▁<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
    ],
    &[
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<｜fim▁end｜>",
        "<MID>",
        "▁<MID>",
        "<|code_middle|>",
        "<|middle|>",
    ],
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &[
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
    ],
    &["<|file_sep|>"],
];
/// Texts of end-of-generation tokens (llama.cpp's `special_eog_ids` detection).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Reads an array of numbers as f32 (scores may be stored as f32 or i32).
fn read_scores(arr: &Array, n: usize) -> Result<Vec<f32>> {
    if arr.len() != n {
        return Err(bad(format!(
            "tokenizer.ggml.scores has {} entries for {n} tokens",
            arr.len()
        )));
    }
    match arr {
        Array::F32(v) => Ok(v.clone()),
        Array::I32(v) => Ok(v.iter().map(|&x| x as f32).collect()),
        other => Err(bad(format!(
            "tokenizer.ggml.scores holds {}s, not f32s",
            other.elem_type_name()
        ))),
    }
}

fn read_types(arr: &Array, n: usize) -> Result<Vec<u32>> {
    if arr.len() != n {
        return Err(bad(format!(
            "tokenizer.ggml.token_type has {} entries for {n} tokens",
            arr.len()
        )));
    }
    arr.values()
        .enumerate()
        .map(|(i, v)| {
            let t = v.as_i64().ok_or_else(|| {
                bad(format!(
                    "tokenizer.ggml.token_type[{i}] is a {}, not an integer",
                    v.type_name()
                ))
            })?;
            Ok(match t {
                1 => attr::NORMAL,
                2 => attr::UNKNOWN,
                3 => attr::CONTROL,
                4 => attr::USER_DEFINED,
                5 => attr::UNUSED,
                6 => attr::BYTE,
                _ => 0,
            })
        })
        .collect()
}

impl Vocab {
    /// Loads the vocabulary from GGUF metadata.
    pub(super) fn load(gguf: &GgufFile) -> Result<Vocab> {
        let model = gguf.get_str("tokenizer.ggml.model")?;
        let pre_name = gguf
            .opt_str("tokenizer.ggml.pre")?
            .unwrap_or("")
            .to_string();
        let kind = match model {
            "llama" => ModelKind::Spm,
            "gpt2" => ModelKind::Bpe,
            other => {
                return Err(Error::new(
                    ErrorCode::Unsupported,
                    format!("tokenizer model '{other}' is not supported (chord supports 'llama' and 'gpt2')"),
                ))
            }
        };

        // Defaults per model type, then per pre-tokenizer.
        let (mut bos, mut eos, mut unk): (Option<u32>, Option<u32>, Option<u32>);
        let (mut add_bos, add_eos_default, mut add_space_prefix, clean_spaces, ignore_merges);
        let mut pre = None;
        match kind {
            ModelKind::Spm => {
                (bos, eos, unk) = (Some(1), Some(2), Some(0));
                add_bos = true;
                add_eos_default = false;
                add_space_prefix = true;
                clean_spaces = false;
                ignore_merges = false;
            }
            ModelKind::Bpe => {
                let cfg = config_for(&pre_name).ok_or_else(|| {
                    Error::new(
                        ErrorCode::Unsupported,
                        format!("pre-tokenizer '{pre_name}' is not supported"),
                    )
                })?;
                (bos, eos, unk) = (Some(11), Some(11), None);
                add_bos = cfg.add_bos;
                add_eos_default = false;
                add_space_prefix = false;
                clean_spaces = cfg.clean_spaces;
                ignore_merges = cfg.ignore_merges;
                pre = Some(cfg);
            }
        }
        let mut add_eos = add_eos_default;
        if let Some(v) = gguf.opt_bool("tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }

        // Tokens, scores, types.
        let list = gguf.get_array("tokenizer.ggml.tokens")?;
        let n = list.len();
        if n == 0 {
            return Err(bad("tokenizer.ggml.tokens is empty".into()));
        }
        if n > u32::MAX as usize / 2 {
            return Err(bad(format!("tokenizer.ggml.tokens has {n} entries")));
        }
        let scores = gguf
            .opt_array("tokenizer.ggml.scores")?
            .map(|a| read_scores(a, n))
            .transpose()?;
        let types = gguf
            .opt_array("tokenizer.ggml.token_type")?
            .map(|a| read_types(a, n))
            .transpose()?;
        let list = list.strings().ok_or_else(|| {
            bad(format!(
                "tokenizer.ggml.tokens holds {}s, not strings",
                list.elem_type_name()
            ))
        })?;
        let mut tokens = Vec::with_capacity(n);
        for (i, text) in list.iter().enumerate() {
            let text = if text.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                text.to_string()
            };
            tokens.push(TokenData {
                text,
                score: scores.as_ref().map_or(0.0, |s| s[i]),
                attr: types.as_ref().map_or(attr::NORMAL, |t| t[i]),
            });
        }

        let index = TokenIndex::build(n, |id| tokens[id as usize].text.as_str());

        // Special token ids: defaults outside the vocabulary are dropped; a key naming a token
        // outside the vocabulary is ignored (llama.cpp warns and keeps the default).
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let read_id = |key: &str, id: &mut Option<u32>| -> Result<()> {
            *id = in_range(*id);
            if let Some(v) = gguf.opt_u64(key)? {
                if (v as usize) < n {
                    *id = Some(v as u32);
                }
            }
            Ok(())
        };
        let (mut eot, mut eom, mut sep, mut pad, mut mask) = (None, None, None, None, None);
        let mut fim = [None; 6];
        read_id("tokenizer.ggml.bos_token_id", &mut bos)?;
        read_id("tokenizer.ggml.eos_token_id", &mut eos)?;
        read_id("tokenizer.ggml.eot_token_id", &mut eot)?;
        read_id("tokenizer.ggml.eom_token_id", &mut eom)?;
        read_id("tokenizer.ggml.unknown_token_id", &mut unk)?;
        read_id("tokenizer.ggml.seperator_token_id", &mut sep)?;
        read_id("tokenizer.ggml.padding_token_id", &mut pad)?;
        read_id("tokenizer.ggml.mask_token_id", &mut mask)?;
        read_id("tokenizer.ggml.fim_pre_token_id", &mut fim[FIM_PRE])?;
        read_id("tokenizer.ggml.fim_suf_token_id", &mut fim[FIM_SUF])?;
        read_id("tokenizer.ggml.fim_mid_token_id", &mut fim[FIM_MID])?;
        read_id("tokenizer.ggml.fim_pad_token_id", &mut fim[FIM_PAD])?;
        read_id("tokenizer.ggml.fim_rep_token_id", &mut fim[FIM_REP])?;
        read_id("tokenizer.ggml.fim_sep_token_id", &mut fim[FIM_SEP])?;
        read_id("tokenizer.ggml.prefix_token_id", &mut fim[FIM_PRE])?;
        read_id("tokenizer.ggml.suffix_token_id", &mut fim[FIM_SUF])?;
        read_id("tokenizer.ggml.middle_token_id", &mut fim[FIM_MID])?;

        if let Some(v) = gguf.opt_bool("tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = gguf.opt_bool("tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }

        let mut vocab = Vocab {
            kind,
            pre_name,
            pre,
            tokens,
            index,
            bos,
            eos,
            eot,
            eom,
            unk,
            sep,
            pad,
            fim,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            ignore_merges,
            eog: BTreeSet::new(),
            special_cache: Vec::new(),
            merges: FxMap::default(),
            byte_tokens: [None; 256],
        };
        vocab.detect_specials();
        vocab.build_special_cache();
        vocab.per_model_attrs(gguf)?;
        if kind == ModelKind::Bpe {
            vocab.load_merges(gguf)?;
            let table = byte_to_char_table();
            let mut buf = [0u8; 4];
            for (b, c) in table.iter().enumerate() {
                vocab.byte_tokens[b] = vocab.find(c.encode_utf8(&mut buf));
            }
        }
        Ok(vocab)
    }

    /// The id of the text a merge produces, or [`MERGED_NONE`].
    pub(super) fn merged_id(&self, left: u32, right: u32, merge: &Merge) -> u32 {
        let id = merge.merged.load(Ordering::Relaxed);
        if id != MERGED_UNKNOWN {
            return id;
        }
        let mut text = String::with_capacity(32);
        text.push_str(&self.tokens[left as usize].text);
        text.push_str(&self.tokens[right as usize].text);
        let id = self.find(&text).unwrap_or(MERGED_NONE);
        merge.merged.store(id, Ordering::Relaxed);
        id
    }

    /// The id of a token text.
    pub(super) fn find(&self, text: &str) -> Option<u32> {
        self.index
            .get(text, |id| self.tokens[id as usize].text.as_str())
    }

    /// Marks a token found by its text as control (llama.cpp warns that the model's type was
    /// wrong).
    fn force_control(&mut self, id: u32) {
        self.tokens[id as usize].attr |= attr::CONTROL;
    }

    /// The first present token among `texts`.
    fn first_of(&self, texts: &[&str]) -> Option<u32> {
        texts.iter().find_map(|t| self.find(t))
    }

    /// Auto-detects EOT/EOM/FIM tokens, unused tokens and the end-of-generation set by text.
    fn detect_specials(&mut self) {
        if self.eot.is_none() {
            self.eot = self.first_of(EOT_TEXTS);
            if let Some(id) = self.eot {
                self.force_control(id);
            }
        }
        if self.eom.is_none() {
            self.eom = self.first_of(EOM_TEXTS);
            if let Some(id) = self.eom {
                self.force_control(id);
            }
        }
        for (slot, texts) in FIM_TEXTS.iter().enumerate() {
            if self.fim[slot].is_none() {
                self.fim[slot] = self.first_of(texts);
                if let Some(id) = self.fim[slot] {
                    self.force_control(id);
                }
            }
        }

        // Control tokens whose text says "unused" are unused.
        let ids: Vec<u32> = self.index.ids().collect();
        for id in ids {
            let t = &mut self.tokens[id as usize];
            if t.attr & attr::CONTROL != 0 && t.text.contains("unused") {
                t.attr |= attr::UNUSED;
            }
        }

        let mut eog = BTreeSet::new();
        for id in [self.fim[FIM_PAD], self.fim[FIM_REP], self.fim[FIM_SEP]]
            .into_iter()
            .flatten()
        {
            eog.insert(id);
        }
        for text in EOG_TEXTS {
            if let Some(id) = self.find(text) {
                eog.insert(id);
                self.force_control(id);
            }
        }
        // gpt-oss: always render these tokens.
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = self.find(text) {
                self.tokens[id as usize].attr = attr::USER_DEFINED;
            }
        }
        for id in [self.eos, self.eot, self.eom].into_iter().flatten() {
            eog.insert(id);
        }

        // o200k_harmony / solar-open: "<|end|>" is not end-of-generation there.
        let has = |text: &str| self.find(text).filter(|id| eog.contains(id));
        let has_return = has("<|return|>").is_some();
        let has_call = has("<|call|>").is_some() || has("<|calls|>").is_some();
        let has_flush = has("<|flush|>").is_some();
        let end = has("<|end|>");
        // gemma4 / plamo: "</s>" is a normal token there.
        let marker = has("<|tool_response>").is_some() || has("<|plamo:eos|>").is_some();
        let s_id = has("</s>");
        if let Some(end) = end {
            if has_call && (has_return || has_flush) {
                eog.remove(&end);
                self.tokens[end as usize].attr = attr::USER_DEFINED;
            }
        }
        if let Some(s) = s_id {
            if marker {
                eog.remove(&s);
                self.tokens[s as usize].attr = attr::NORMAL;
            }
        }
        self.eog = eog;
    }

    fn build_special_cache(&mut self) {
        let mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        let mut cache: Vec<u32> = (0..self.tokens.len() as u32)
            .filter(|&id| self.tokens[id as usize].attr & mask != 0)
            .collect();
        // llama.cpp's sort is unstable; ties (equal lengths) keep id order here.
        cache.sort_by_key(|&id| std::cmp::Reverse(self.tokens[id as usize].text.len()));
        self.special_cache = cache;
    }

    /// Per-model token attributes that GGUF files do not carry (llama.cpp sets them by name).
    fn per_model_attrs(&mut self, gguf: &GgufFile) -> Result<()> {
        let name = gguf
            .opt_str("general.name")?
            .unwrap_or("")
            .to_ascii_lowercase();
        let arch = gguf.opt_str("general.architecture")?.unwrap_or("");
        let set = |v: &mut Vocab, text: &str, bit: u32, on: bool| {
            if let Some(id) = v.find(text) {
                let a = &mut v.tokens[id as usize].attr;
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        let contains_any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
        if contains_any(
            &self.pre_name,
            &["jina-v2-de", "jina-v2-es", "jina-v2-code"],
        ) || contains_any(arch, &["nomic-bert-moe", "jina-bert-v3"])
        {
            set(self, "<mask>", attr::LSTRIP, true);
        } else if contains_any(&name, &["phi-3", "phi3"]) {
            for i in 0..self.special_cache.len() {
                let id = self.special_cache[i];
                self.tokens[id as usize].attr |= attr::RSTRIP;
            }
            set(self, "</s>", attr::RSTRIP, true);
            for text in ["<unk>", "<s>", "<|endoftext|>"] {
                set(self, text, attr::RSTRIP, false);
            }
        } else if name.contains("modern-bert") {
            set(self, "[MASK]", attr::LSTRIP, true);
        }
        Ok(())
    }

    /// Reads `tokenizer.ggml.merges` into rank order; every merge must name two tokens.
    fn load_merges(&mut self, gguf: &GgufFile) -> Result<()> {
        let merges = gguf.get_array("tokenizer.ggml.merges")?;
        let merges = merges.strings().ok_or_else(|| {
            bad(format!(
                "tokenizer.ggml.merges holds {}s, not strings",
                merges.elem_type_name()
            ))
        })?;
        let mut map = FxMap::with_capacity_and_hasher(merges.len(), Default::default());
        for (rank, m) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte.
            let split = m
                .as_bytes()
                .iter()
                .skip(1)
                .position(|&b| b == b' ')
                .map(|p| p + 1)
                .ok_or_else(|| {
                    bad(format!(
                        "tokenizer.ggml.merges[{rank}] '{m}' is not two tokens separated by a space"
                    ))
                })?;
            let (a, b) = (&m[..split], &m[split + 1..]);
            let (Some(ia), Some(ib)) = (self.index.get_trusted(a), self.index.get_trusted(b))
            else {
                return Err(bad(format!(
                    "tokenizer.ggml.merges[{rank}] '{m}' names a token that is not in the vocabulary"
                )));
            };
            map.entry((ia as u64) << 32 | ib as u64).or_insert(Merge {
                rank: rank as u32,
                merged: AtomicU32::new(MERGED_UNKNOWN),
            });
        }
        self.merges = map;
        Ok(())
    }
}
