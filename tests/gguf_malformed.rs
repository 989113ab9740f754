//! The GGUF reader on malformed input: a deterministic corpus of broken files, each with the
//! exact [`ErrorCode`] it must produce, valid-but-unusual files that must parse, and a light
//! mutation fuzzer.
//!
//! # Using the corpus from other tests (C API, `chord inspect`)
//!
//! The corpus is generated, not checked in. To write it into a folder:
//!
//! ```sh
//! CHORD_BAD_GGUF_DIR=/tmp/bad-gguf cargo test --test gguf_malformed write_corpus_for_c_tests
//! ```
//!
//! The folder is created if needed and gets one `<case>.gguf` file per case plus a manifest
//! `expected.tsv`: one line per case, `<file name><TAB><ERROR_CODE_NAME>`, where the name is
//! [`ErrorCode::name`] (the C constant without its `CHORD_E_` prefix, e.g. `GGUF_TRUNCATED`).
//! There is no header line; file names are relative to the folder. Opening each file must fail
//! with exactly that code. Without the variable the test does nothing. Some cases are cut from the
//! real default model (`common::default_model()`), which must be present, as for every other test.
//! The `model-*` cases are valid GGUF whose model is wrong (a tiny gemma3 with one thing broken):
//! they fail in `chord_model_load` / `Model::load`, past the reader.
//! Files written earlier into the same folder are overwritten, never deleted.

mod common;

use chord::gguf::{Array, GgufFile, Value, MAX_METADATA_VALUES, MAX_TENSORS};
use chord::quant::GgmlType;
use chord::ErrorCode;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// A tiny GGUF writer that records where each field starts.

/// GGUF metadata value types.
const T_U8: u32 = 0;
const T_U32: u32 = 4;
const T_F32: u32 = 6;
const T_STR: u32 = 8;
const T_ARR: u32 = 9;

/// A metadata value to write; `Bool` takes the raw byte so that invalid ones can be written.
#[derive(Clone, Debug)]
enum V {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(u8),
    Str(&'static str),
    /// Element type and items.
    Arr(u32, Vec<V>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl V {
    fn ty(&self) -> u32 {
        match self {
            V::U8(_) => 0,
            V::I8(_) => 1,
            V::U16(_) => 2,
            V::I16(_) => 3,
            V::U32(_) => 4,
            V::I32(_) => 5,
            V::F32(_) => 6,
            V::Bool(_) => 7,
            V::Str(_) => 8,
            V::Arr(..) => 9,
            V::U64(_) => 10,
            V::I64(_) => 11,
            V::F64(_) => 12,
        }
    }

    /// Writes the payload (not the type); `m` prefixes the marks of the parts.
    fn write(&self, w: &mut W, m: &str) {
        match self {
            V::U8(v) => w.bytes(&[*v]),
            V::I8(v) => w.bytes(&v.to_le_bytes()),
            V::U16(v) => w.bytes(&v.to_le_bytes()),
            V::I16(v) => w.bytes(&v.to_le_bytes()),
            V::U32(v) => w.bytes(&v.to_le_bytes()),
            V::I32(v) => w.bytes(&v.to_le_bytes()),
            V::F32(v) => w.bytes(&v.to_le_bytes()),
            V::Bool(b) => w.bytes(&[*b]),
            V::Str(s) => w.string(m, s.as_bytes()),
            V::Arr(t, items) => {
                w.mark(format!("{m}.arr_type"));
                w.bytes(&t.to_le_bytes());
                w.mark(format!("{m}.arr_len"));
                w.bytes(&(items.len() as u64).to_le_bytes());
                w.mark(format!("{m}.items"));
                for it in items {
                    it.write(w, &format!("{m}.item"));
                }
            }
            V::U64(v) => w.bytes(&v.to_le_bytes()),
            V::I64(v) => w.bytes(&v.to_le_bytes()),
            V::F64(v) => w.bytes(&v.to_le_bytes()),
        }
    }
}

/// Bytes plus the offset where each named field starts (the first one, for repeated names).
#[derive(Clone, Default)]
struct W {
    b: Vec<u8>,
    marks: HashMap<String, usize>,
}

impl W {
    fn mark(&mut self, name: String) {
        let at = self.b.len();
        self.marks.entry(name).or_insert(at);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.b.extend_from_slice(b);
    }
    /// A GGUF string: marks `<m>.str_len` and `<m>.str`.
    fn string(&mut self, m: &str, s: &[u8]) {
        self.mark(format!("{m}.str_len"));
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.mark(format!("{m}.str"));
        self.bytes(s);
    }
    fn at(&self, mark: &str) -> usize {
        *self
            .marks
            .get(mark)
            .unwrap_or_else(|| panic!("no mark {mark}"))
    }
    /// The file cut `plus` bytes after the start of `mark`.
    fn cut(&self, mark: &str, plus: usize) -> Vec<u8> {
        self.b[..self.at(mark) + plus].to_vec()
    }
    fn patch(mut self, mark: &str, bytes: &[u8]) -> Vec<u8> {
        let at = self.at(mark);
        self.b[at..at + bytes.len()].copy_from_slice(bytes);
        self.b
    }
    fn patch_u32(self, mark: &str, v: u32) -> Vec<u8> {
        self.patch(mark, &v.to_le_bytes())
    }
    fn patch_u64(self, mark: &str, v: u64) -> Vec<u8> {
        self.patch(mark, &v.to_le_bytes())
    }
}

/// One tensor info; `off: None` lays the data out after the previous tensor's, aligned.
#[derive(Clone)]
struct T {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    off: Option<u64>,
}

/// A whole file. Marks: `magic`, `version`, `n_tensors`, `n_kv`, `kv<i>.key.str_len`,
/// `kv<i>.key.str`, `kv<i>.type`, `kv<i>.value` (and `kv<i>.value.str_len`, `.arr_type`,
/// `.arr_len`, `.items`, ...), `t<i>.name.str_len`, `t<i>.name.str`, `t<i>.n_dims`, `t<i>.dims`,
/// `t<i>.type`, `t<i>.offset`, `padding`, `data`, `end`.
#[derive(Clone)]
struct Spec {
    magic: [u8; 4],
    version: u32,
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    kvs: Vec<(String, V)>,
    tensors: Vec<T>,
    /// Alignment used to lay out the data (set `general.alignment` separately).
    align: u64,
    /// Whether to write the padding and the tensor data.
    data: bool,
}

/// Bytes of a tensor, or 0 when its type or shape is invalid.
fn tensor_bytes(ty: u32, dims: &[u64]) -> u64 {
    let Ok(t) = GgmlType::from_id(ty) else {
        return 0;
    };
    if dims.is_empty() || dims.iter().any(|&d| d == 0 || d > 1 << 20) {
        return 0;
    }
    let rows: u64 = dims[1..].iter().product();
    t.row_bytes(dims[0] as usize).map_or(0, |r| r as u64 * rows)
}

impl Spec {
    /// A small valid file: six metadata entries (strings, an array of strings, an f32 array, a
    /// bool) and two tensors (F32 and Q8_0).
    fn base() -> Spec {
        Spec {
            magic: *b"GGUF",
            version: 3,
            n_tensors: None,
            n_kv: None,
            kvs: vec![
                ("general.architecture", V::Str("llama")),
                ("general.name", V::Str("tiny malformed")),
                ("llama.block_count", V::U32(1)),
                (
                    "tokenizer.ggml.tokens",
                    V::Arr(T_STR, vec![V::Str("<s>"), V::Str("a"), V::Str("bc")]),
                ),
                (
                    "tokenizer.ggml.scores",
                    V::Arr(T_F32, vec![V::F32(0.0), V::F32(-1.0), V::F32(-2.0)]),
                ),
                ("general.flag", V::Bool(1)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            tensors: vec![
                T {
                    name: "token_embd.weight".into(),
                    dims: vec![4, 3],
                    ty: 0,
                    off: None,
                },
                T {
                    name: "blk.0.attn_q.weight".into(),
                    dims: vec![32, 2],
                    ty: 8,
                    off: None,
                },
            ],
            align: 32,
            data: true,
        }
    }

    fn kv(mut self, key: impl Into<String>, v: V) -> Spec {
        self.kvs.push((key.into(), v));
        self
    }

    fn build(&self) -> W {
        let mut w = W::default();
        w.mark("magic".into());
        w.bytes(&self.magic);
        w.mark("version".into());
        w.bytes(&self.version.to_le_bytes());
        w.mark("n_tensors".into());
        let n_tensors = self.n_tensors.unwrap_or(self.tensors.len() as u64);
        w.bytes(&n_tensors.to_le_bytes());
        w.mark("n_kv".into());
        w.bytes(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for (i, (k, v)) in self.kvs.iter().enumerate() {
            w.string(&format!("kv{i}.key"), k.as_bytes());
            w.mark(format!("kv{i}.type"));
            w.bytes(&v.ty().to_le_bytes());
            w.mark(format!("kv{i}.value"));
            v.write(&mut w, &format!("kv{i}.value"));
        }
        let mut next = 0u64;
        let mut data_len = 0u64;
        for (i, t) in self.tensors.iter().enumerate() {
            w.string(&format!("t{i}.name"), t.name.as_bytes());
            w.mark(format!("t{i}.n_dims"));
            w.bytes(&(t.dims.len() as u32).to_le_bytes());
            w.mark(format!("t{i}.dims"));
            for d in &t.dims {
                w.bytes(&d.to_le_bytes());
            }
            w.mark(format!("t{i}.type"));
            w.bytes(&t.ty.to_le_bytes());
            w.mark(format!("t{i}.offset"));
            w.bytes(&t.off.unwrap_or(next).to_le_bytes());
            let size = tensor_bytes(t.ty, &t.dims);
            data_len = next + size;
            next = (next + size).div_ceil(self.align) * self.align;
        }
        w.mark("padding".into());
        if self.data {
            while !(w.b.len() as u64).is_multiple_of(self.align) {
                w.b.push(0);
            }
            w.mark("data".into());
            for j in 0..data_len {
                w.b.push((j * 7 % 251) as u8);
            }
        }
        w.mark("end".into());
        w
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

/// One malformed file: its name, bytes, the code it must produce and words its message must hold;
/// `model`: the file is valid GGUF and the error comes from loading the model.
struct Case {
    name: String,
    bytes: Vec<u8>,
    code: ErrorCode,
    needles: Vec<String>,
    model: bool,
}

fn case(name: &str, bytes: Vec<u8>, code: ErrorCode, needles: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        bytes,
        code,
        needles: needles.iter().map(|s| s.to_string()).collect(),
        model: false,
    }
}

/// A tiny valid gemma3 model (one layer, width 8, two heads of 4 over one KV head, a window of 16,
/// F32 weights of arbitrary values, a 3-token SentencePiece vocabulary).
fn tiny_gemma3() -> Spec {
    let mut s = Spec::base();
    s.kvs = vec![
        ("general.architecture", V::Str("gemma3")),
        ("gemma3.context_length", V::U32(64)),
        ("gemma3.embedding_length", V::U32(8)),
        ("gemma3.block_count", V::U32(1)),
        ("gemma3.feed_forward_length", V::U32(16)),
        ("gemma3.attention.head_count", V::U32(2)),
        ("gemma3.attention.head_count_kv", V::U32(1)),
        ("gemma3.attention.key_length", V::U32(4)),
        ("gemma3.attention.value_length", V::U32(4)),
        ("gemma3.attention.sliding_window", V::U32(16)),
        ("gemma3.attention.layer_norm_rms_epsilon", V::F32(1e-6)),
        ("tokenizer.ggml.model", V::Str("llama")),
        (
            "tokenizer.ggml.tokens",
            V::Arr(T_STR, vec![V::Str("<s>"), V::Str("a"), V::Str("bc")]),
        ),
        (
            "tokenizer.ggml.scores",
            V::Arr(T_F32, vec![V::F32(0.0), V::F32(-1.0), V::F32(-2.0)]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let t = |name: &str, dims: &[u64]| T {
        name: name.into(),
        dims: dims.to_vec(),
        ty: 0,
        off: None,
    };
    s.tensors = vec![
        t("token_embd.weight", &[8, 3]),
        t("output_norm.weight", &[8]),
        t("blk.0.attn_norm.weight", &[8]),
        t("blk.0.attn_q.weight", &[8, 8]),
        t("blk.0.attn_k.weight", &[8, 4]),
        t("blk.0.attn_v.weight", &[8, 4]),
        t("blk.0.attn_q_norm.weight", &[4]),
        t("blk.0.attn_k_norm.weight", &[4]),
        t("blk.0.attn_output.weight", &[8, 8]),
        t("blk.0.post_attention_norm.weight", &[8]),
        t("blk.0.ffn_norm.weight", &[8]),
        t("blk.0.ffn_gate.weight", &[8, 16]),
        t("blk.0.ffn_up.weight", &[8, 16]),
        t("blk.0.ffn_down.weight", &[16, 8]),
        t("blk.0.post_ffw_norm.weight", &[8]),
    ];
    s
}

/// The tiny gemma3 model with one thing wrong each: what `Model::load` must refuse, and how.
fn model_cases() -> Vec<Case> {
    use ErrorCode::*;
    let set = |key: &str, v: V| {
        let mut s = tiny_gemma3();
        match s.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = v,
            None => s.kvs.push((key.to_string(), v)),
        }
        s
    };
    let without_key = |key: &str| {
        let mut s = tiny_gemma3();
        s.kvs.retain(|(k, _)| k != key);
        s
    };
    let tensors = |f: &dyn Fn(&mut Vec<T>)| {
        let mut s = tiny_gemma3();
        f(&mut s.tensors);
        s
    };
    let flags = |n: usize| V::Arr(T_U8, (0..n).map(|_| V::U8(1)).collect());
    let cases: Vec<(&str, Spec, ErrorCode, &[&str])> = vec![
        (
            "unknown-arch",
            set("general.architecture", V::Str("gemma9")),
            UnknownArchitecture,
            &["'gemma9'", "chord runs: llama"],
        ),
        (
            "missing-width",
            without_key("gemma3.embedding_length"),
            BadModel,
            &["missing metadata key 'gemma3.embedding_length'"],
        ),
        (
            "heads-do-not-group",
            set("gemma3.attention.head_count_kv", V::U32(3)),
            BadModel,
            &["2 query heads cannot be grouped over 3"],
        ),
        (
            "odd-head-size",
            set("gemma3.attention.key_length", V::U32(3)),
            BadModel,
            &["head size 3"],
        ),
        (
            "window-beyond-context",
            set("gemma3.attention.sliding_window", V::U32(65)),
            BadModel,
            &["sliding window of 65 positions is larger than the context of 64"],
        ),
        (
            "window-pattern-flags",
            set("gemma3.attention.sliding_window_pattern", flags(2)),
            BadModel,
            &["not one flag for each of the 1 layers"],
        ),
        (
            "negative-soft-cap",
            set("gemma3.final_logit_softcapping", V::F32(-1.0)),
            BadModel,
            &["'gemma3.final_logit_softcapping' = -1 is not a soft cap"],
        ),
        (
            "rope-scaling-unknown",
            set("gemma3.rope.scaling.type", V::Str("ntk")),
            Unsupported,
            &["RoPE scaling 'ntk'"],
        ),
        (
            "missing-post-norm",
            tensors(&|t| t.retain(|t| t.name != "blk.0.post_ffw_norm.weight")),
            BadModel,
            &["no tensor 'blk.0.post_ffw_norm.weight'"],
        ),
        (
            "missing-head-norm",
            tensors(&|t| t.retain(|t| t.name != "blk.0.attn_k_norm.weight")),
            BadModel,
            &["no tensor 'blk.0.attn_k_norm.weight'"],
        ),
        (
            "key-projection-shape",
            tensors(&|t| t[4].dims = vec![8, 5]),
            BadModel,
            &["tensor 'blk.0.attn_k.weight' has shape [8, 5], expected [8, 4]"],
        ),
        (
            "partial-biases",
            tensors(&|t| {
                t.push(T {
                    name: "blk.0.attn_q.bias".into(),
                    dims: vec![8],
                    ty: 0,
                    off: None,
                })
            }),
            Unsupported,
            &["layer 0 has biases for some"],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, spec, code, needles)| Case {
            model: true,
            ..case(&format!("model-{name}"), spec.build().b, code, needles)
        })
        .collect()
}

/// Every case built from the small synthetic file.
fn synthetic_cases() -> Vec<Case> {
    use ErrorCode::*;
    let base = Spec::base();
    let b = || base.build();
    let mut v = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, code: ErrorCode, needles: &[&str]| {
        v.push(case(name, bytes, code, needles))
    };
    assert!(
        b().at("data") - b().at("padding") > 1,
        "the base file needs padding"
    );

    // Truncation inside every section.
    add("trunc-empty", vec![], GgufTruncated, &["magic"]);
    add(
        "trunc-magic",
        b().cut("magic", 2),
        GgufTruncated,
        &["magic"],
    );
    add(
        "trunc-version",
        b().cut("version", 2),
        GgufTruncated,
        &["version"],
    );
    add(
        "trunc-tensor-count",
        b().cut("n_tensors", 3),
        GgufTruncated,
        &["tensor count"],
    );
    add(
        "trunc-kv-count",
        b().cut("n_kv", 7),
        GgufTruncated,
        &["metadata entry count"],
    );
    add(
        "trunc-after-counts",
        b().cut("kv0.key.str_len", 0),
        GgufTruncated,
        &["key of metadata entry 0"],
    );
    add(
        "trunc-key-length",
        b().cut("kv0.key.str_len", 4),
        GgufTruncated,
        &["key of metadata entry 0"],
    );
    add(
        "trunc-key-bytes",
        b().cut("kv0.key.str", 5),
        GgufTruncated,
        &["key of metadata entry 0", "ends at byte"],
    );
    add(
        "trunc-value-type",
        b().cut("kv1.type", 2),
        GgufTruncated,
        &["value type of metadata entry 1", "general.name"],
    );
    add(
        "trunc-string-length",
        b().cut("kv1.value.str_len", 3),
        GgufTruncated,
        &["value of metadata entry 1", "general.name"],
    );
    add(
        "trunc-string-bytes",
        b().cut("kv1.value.str", 4),
        GgufTruncated,
        &["general.name"],
    );
    add(
        "trunc-u32-value",
        b().cut("kv2.value", 1),
        GgufTruncated,
        &["llama.block_count"],
    );
    add(
        "trunc-array-type",
        b().cut("kv3.value.arr_type", 2),
        GgufTruncated,
        &["tokenizer.ggml.tokens"],
    );
    add(
        "trunc-array-length",
        b().cut("kv3.value.arr_len", 5),
        GgufTruncated,
        &["tokenizer.ggml.tokens"],
    );
    add(
        "trunc-array-items",
        b().cut("kv3.value.items", 13),
        GgufTruncated,
        &["tokenizer.ggml.tokens", "array element [1]"],
    );
    add(
        "trunc-f32-array-items",
        b().cut("kv4.value.items", 6),
        GgufTruncated,
        &["tokenizer.ggml.scores", "array element [1]"],
    );
    add(
        "trunc-bool-value",
        b().cut("kv5.value", 0),
        GgufTruncated,
        &["general.flag"],
    );
    add(
        "trunc-tensor-name-length",
        b().cut("t0.name.str_len", 1),
        GgufTruncated,
        &["name of tensor info 0"],
    );
    add(
        "trunc-tensor-name",
        b().cut("t0.name.str", 5),
        GgufTruncated,
        &["name of tensor info 0"],
    );
    add(
        "trunc-n-dims",
        b().cut("t1.n_dims", 2),
        GgufTruncated,
        &["dimension count of tensor info 1", "blk.0.attn_q.weight"],
    );
    add(
        "trunc-dims",
        b().cut("t1.dims", 12),
        GgufTruncated,
        &["dimensions of tensor info 1", "blk.0.attn_q.weight"],
    );
    add(
        "trunc-tensor-type",
        b().cut("t1.type", 1),
        GgufTruncated,
        &["type of tensor info 1", "blk.0.attn_q.weight"],
    );
    add(
        "trunc-tensor-offset",
        b().cut("t1.offset", 7),
        GgufTruncated,
        &["data offset of tensor info 1", "blk.0.attn_q.weight"],
    );
    add(
        "trunc-padding",
        b().cut("padding", 1),
        GgufTruncated,
        &["padding"],
    );
    add(
        "trunc-data-first-tensor",
        b().cut("data", 10),
        GgufOutOfBounds,
        &["token_embd.weight", "truncated"],
    );
    add(
        "trunc-data-last-tensor",
        b().cut("data", 100),
        GgufOutOfBounds,
        &["blk.0.attn_q.weight", "truncated"],
    );
    let all = b().b;
    add(
        "trunc-data-last-byte",
        all[..all.len() - 1].to_vec(),
        GgufOutOfBounds,
        &["blk.0.attn_q.weight"],
    );
    {
        let mut s = Spec::base();
        s.n_tensors = Some(3);
        s.data = false;
        add(
            "trunc-tensor-count-past-end",
            s.build().b,
            GgufTruncated,
            &["name of tensor info 2"],
        );
        let mut s = Spec::base();
        s.n_kv = Some(7);
        s.tensors.clear();
        s.n_tensors = Some(0);
        s.data = false;
        add(
            "trunc-kv-count-past-end",
            s.build().b,
            GgufTruncated,
            &["key of metadata entry 6"],
        );
    }

    // Magic and version.
    add(
        "magic-ggml",
        b().patch("magic", b"GGML"),
        GgufBadMagic,
        &["GGUF", "GGML"],
    );
    add(
        "magic-lowercase",
        b().patch("magic", b"gguf"),
        GgufBadMagic,
        &["GGUF"],
    );
    add(
        "magic-short-garbage",
        b"PK".to_vec(),
        GgufBadMagic,
        &["GGUF"],
    );
    add(
        "version-0",
        b().patch_u32("version", 0),
        GgufUnsupportedVersion,
        &["version 0"],
    );
    add(
        "version-1",
        b().patch_u32("version", 1),
        GgufUnsupportedVersion,
        &["version 1", "v1"],
    );
    add(
        "version-4",
        b().patch_u32("version", 4),
        GgufUnsupportedVersion,
        &["version 4"],
    );
    add(
        "version-u32-max",
        b().patch_u32("version", u32::MAX),
        GgufUnsupportedVersion,
        &["4294967295"],
    );
    {
        // A big-endian v3 file: every number byte-swapped.
        let mut w = b();
        let be = |w: W, m: &str, v: u64| w.patch(m, &v.to_be_bytes());
        w = W {
            b: w.clone().patch("version", &3u32.to_be_bytes()),
            ..w
        };
        w = W {
            b: be(w.clone(), "n_tensors", 2),
            ..w
        };
        w = W {
            b: be(w.clone(), "n_kv", 6),
            ..w
        };
        add(
            "version-big-endian",
            w.b,
            GgufUnsupportedVersion,
            &["big-endian"],
        );
    }

    // Absurd counts and lengths: must fail before allocating anything.
    add(
        "count-tensors-u64-max",
        b().patch_u64("n_tensors", u64::MAX),
        GgufLimit,
        &["tensor count"],
    );
    add(
        "count-tensors-over-limit",
        b().patch_u64("n_tensors", MAX_TENSORS + 1),
        GgufLimit,
        &["tensor count"],
    );
    add(
        "count-kv-u64-max",
        b().patch_u64("n_kv", u64::MAX - 1),
        GgufLimit,
        &["metadata entry count"],
    );
    add(
        "count-key-length-huge",
        b().patch_u64("kv0.key.str_len", u64::MAX - 7),
        GgufLimit,
        &["string length", "key of metadata entry 0"],
    );
    add(
        "count-string-length-huge",
        b().patch_u64("kv1.value.str_len", u64::MAX),
        GgufLimit,
        &["string length", "general.name"],
    );
    add(
        "count-string-length-past-end",
        b().patch_u64("kv1.value.str_len", 1_000_000),
        GgufTruncated,
        &["general.name"],
    );
    add(
        "count-array-length-huge",
        b().patch_u64("kv3.value.arr_len", u64::MAX),
        GgufLimit,
        &["array length", "tokenizer.ggml.tokens"],
    );
    add(
        "count-array-length-over-value-limit",
        b().patch_u64("kv4.value.arr_len", MAX_METADATA_VALUES),
        GgufLimit,
        &["values", "tokenizer.ggml.scores"],
    );
    add(
        "count-array-length-past-end",
        b().patch_u64("kv4.value.arr_len", 1 << 20),
        GgufTruncated,
        &["tokenizer.ggml.scores"],
    );
    add(
        "count-tensor-name-length-huge",
        b().patch_u64("t0.name.str_len", u64::MAX),
        GgufLimit,
        &["string length", "name of tensor info 0"],
    );

    // Nesting bombs.
    {
        let mut deep = V::Arr(T_U8, vec![V::U8(1)]);
        for _ in 0..9 {
            deep = V::Arr(T_ARR, vec![deep]);
        }
        add(
            "nesting-too-deep",
            base.clone().kv("bomb.deep", deep).build().b,
            GgufLimit,
            &["nested", "bomb.deep"],
        );
        // Each level claims 2^20 arrays; the file holds one of each.
        let mut wide = V::Arr(T_U8, vec![V::U8(1)]);
        for _ in 0..3 {
            wide = V::Arr(T_ARR, vec![wide]);
        }
        // The bomb is the file's last item, so reading it runs into the end of the file.
        let mut s = base.clone().kv("bomb.wide", wide);
        s.tensors.clear();
        s.data = false;
        let w = s.build();
        let mut bytes = w.b.clone();
        let mut at = w.at("kv6.value.arr_len");
        for _ in 0..3 {
            bytes[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
            at += 8 + 4; // this length, the next level's element type
        }
        add(
            "nesting-wide-past-end",
            bytes.clone(),
            GgufTruncated,
            &["bomb.wide"],
        );
        // The same with 2^23 per level: more declared values than the limit.
        let mut at = w.at("kv6.value.arr_len");
        for _ in 0..3 {
            bytes[at..at + 8].copy_from_slice(&(1u64 << 23).to_le_bytes());
            at += 12;
        }
        add(
            "nesting-wide-over-value-limit",
            bytes,
            GgufLimit,
            &["values", "bomb.wide"],
        );
    }

    // Unknown types and invalid values.
    add(
        "value-type-13",
        b().patch_u32("kv2.type", 13),
        GgufUnknownType,
        &["type 13", "llama.block_count"],
    );
    add(
        "value-type-u32-max",
        b().patch_u32("kv2.type", u32::MAX),
        GgufUnknownType,
        &["4294967295", "llama.block_count"],
    );
    add(
        "array-element-type-99",
        b().patch_u32("kv3.value.arr_type", 99),
        GgufUnknownType,
        &["99", "tokenizer.ggml.tokens"],
    );
    add(
        "bool-byte-2",
        b().patch("kv5.value", &[2]),
        GgufUnknownType,
        &["bool", "general.flag"],
    );
    add(
        "bool-byte-255-in-array",
        base.clone()
            .kv("bools", V::Arr(7, vec![V::Bool(0), V::Bool(255)]))
            .build()
            .b,
        GgufUnknownType,
        &["bool", "bools", "array element [1]"],
    );
    add(
        "tensor-type-iq2-xxs",
        b().patch_u32("t1.type", 16),
        GgufUnknownType,
        &["blk.0.attn_q.weight", "16", "IQ"],
    );
    add(
        "tensor-type-999",
        b().patch_u32("t0.type", 999),
        GgufUnknownType,
        &["token_embd.weight", "999"],
    );
    add(
        "tensor-type-q8-1",
        b().patch_u32("t0.type", 9),
        GgufUnknownType,
        &["token_embd.weight", "Q8_1"],
    );

    // Keys are shown escaped and shortened in messages.
    {
        let long = "k".repeat(5000);
        let w = base.clone().kv(long, V::U8(1)).build();
        let bytes = w.patch_u32("kv6.type", 77);
        add(
            "value-type-unknown-long-key",
            bytes,
            GgufUnknownType,
            &["type 77", "kkk... (5000 bytes)"],
        );
        let w = base.clone().kv("bad\nkey\u{1b}[31m", V::U8(1)).build();
        let bytes = w.patch_u32("kv6.type", 78);
        add(
            "value-type-unknown-control-key",
            bytes,
            GgufUnknownType,
            &["type 78", "bad\\nkey\\u{1b}[31m"],
        );
    }

    // Tensor shapes.
    add(
        "n-dims-0",
        b().patch_u32("t0.n_dims", 0),
        GgufLimit,
        &["token_embd.weight", "0 dimensions"],
    );
    add(
        "n-dims-5",
        b().patch_u32("t1.n_dims", 5),
        GgufLimit,
        &["blk.0.attn_q.weight", "5 dimensions"],
    );
    add(
        "n-dims-u32-max",
        b().patch_u32("t1.n_dims", u32::MAX),
        GgufLimit,
        &["blk.0.attn_q.weight"],
    );
    let with_dims = |i: usize, dims: &[u64]| {
        let mut s = Spec::base();
        s.tensors[i].dims = dims.to_vec();
        s.build().b
    };
    add(
        "dim-zero",
        with_dims(0, &[4, 0]),
        GgufLimit,
        &["token_embd.weight", "dimension 1"],
    );
    add(
        "dim-over-i64",
        with_dims(0, &[u64::MAX, 1]),
        GgufLimit,
        &["token_embd.weight", "dimension 0"],
    );
    add(
        "dims-product-overflow",
        with_dims(0, &[1 << 32, 1 << 32]),
        GgufLimit,
        &["token_embd.weight", "elements"],
    );
    add(
        "dims-size-overflow",
        with_dims(0, &[1 << 62, 1]),
        GgufLimit,
        &["token_embd.weight", "too large"],
    );
    add(
        "row-not-block-multiple",
        with_dims(1, &[31, 2]),
        GgufLimit,
        &["blk.0.attn_q.weight", "block size 32"],
    );

    // Tensor offsets.
    let with_off = |off: u64| {
        let mut s = Spec::base();
        s.tensors[1].off = Some(off);
        s.build().b
    };
    add(
        "offset-misaligned",
        with_off(65),
        GgufOutOfBounds,
        &["blk.0.attn_q.weight", "alignment 32"],
    );
    add(
        "offset-past-end",
        with_off(1 << 40),
        GgufOutOfBounds,
        &["blk.0.attn_q.weight"],
    );
    add(
        "offset-near-u64-max",
        with_off(!31),
        GgufOutOfBounds,
        &["blk.0.attn_q.weight"],
    );
    add(
        "offset-overlaps-end",
        with_off(96),
        GgufOutOfBounds,
        &["blk.0.attn_q.weight"],
    );

    // Duplicates.
    {
        let mut s = Spec::base();
        s.kvs[4].0 = "general.architecture".into();
        add(
            "duplicate-key",
            s.build().b,
            GgufDuplicate,
            &["general.architecture", "entries 0 and 4"],
        );
        let mut s = Spec::base();
        s.tensors[1].name = "token_embd.weight".into();
        add(
            "duplicate-tensor-name",
            s.build().b,
            GgufDuplicate,
            &["token_embd.weight", "tensor infos 0 and 1"],
        );
        let s = Spec::base()
            .kv("general.alignment", V::U32(32))
            .kv("general.alignment", V::U32(64));
        add(
            "duplicate-alignment-key",
            s.build().b,
            GgufDuplicate,
            &["general.alignment"],
        );
    }

    // general.alignment.
    let with_align = |v: V| base.clone().kv("general.alignment", v).build().b;
    add(
        "alignment-0",
        with_align(V::U32(0)),
        GgufLimit,
        &["general.alignment", "power of two"],
    );
    add(
        "alignment-3",
        with_align(V::U32(3)),
        GgufLimit,
        &["general.alignment"],
    );
    add(
        "alignment-huge",
        with_align(V::U32(1 << 30)),
        GgufLimit,
        &["general.alignment"],
    );
    add(
        "alignment-u64-max",
        with_align(V::U64(u64::MAX)),
        GgufLimit,
        &["general.alignment"],
    );
    add(
        "alignment-negative",
        with_align(V::I32(-32)),
        GgufLimit,
        &["general.alignment"],
    );
    add(
        "alignment-string",
        with_align(V::Str("32")),
        BadModel,
        &["general.alignment", "string"],
    );
    add(
        "alignment-f32",
        with_align(V::F32(32.0)),
        BadModel,
        &["general.alignment", "f32"],
    );
    add(
        "alignment-array",
        with_align(V::Arr(T_U32, vec![V::U32(32)])),
        BadModel,
        &["general.alignment", "array"],
    );
    v
}

/// Byte offset where tensor info 0 starts in a real file, found by its length-prefixed name.
fn tensor_info_start(header: &[u8], first_name: &str) -> usize {
    let mut pat = (first_name.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(first_name.as_bytes());
    header
        .windows(pat.len())
        .rposition(|w| w == pat.as_slice())
        .expect("first tensor name in the header")
}

/// Cases cut from, or patched into, the header of the real default model.
fn real_model_cases() -> Vec<Case> {
    use ErrorCode::*;
    let path = common::default_model();
    let f = GgufFile::open(&path).expect("the default model opens");
    let data_offset = f.data_offset();
    let t0 = f.tensors()[0].clone();
    let mut head = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .take(data_offset as u64 + 8192)
        .read_to_end(&mut head)
        .unwrap();
    let ti = tensor_info_start(&head[..data_offset], &t0.name);
    let t0_type = ti + 8 + t0.name.len() + 4 + 8 * t0.dims.len();
    let mut v = Vec::new();
    let cuts = [
        ("real-trunc-3", 3),
        ("real-trunc-20", 20),
        ("real-trunc-100", 100),
        ("real-trunc-5000", 5000),
        ("real-trunc-100000", 100_000),
        ("real-trunc-tensor-info-0", ti + 5),
        ("real-trunc-tensor-infos-middle", (ti + data_offset) / 2),
        ("real-trunc-before-data", data_offset - 1),
    ];
    for (name, at) in cuts {
        let needle = format!("ends at byte {at}");
        v.push(case(name, head[..at].to_vec(), GgufTruncated, &[&needle]));
    }
    v.push(case(
        "real-trunc-at-data",
        head[..data_offset].to_vec(),
        GgufOutOfBounds,
        &[&t0.name, "truncated"],
    ));
    v.push(case(
        "real-trunc-in-data",
        head.clone(),
        GgufOutOfBounds,
        &["truncated"],
    ));
    let mut bad = head[..data_offset].to_vec();
    bad[t0_type..t0_type + 4].copy_from_slice(&19u32.to_le_bytes());
    v.push(case(
        "real-tensor-type-iq1-s",
        bad,
        GgufUnknownType,
        &[&t0.name, "IQ"],
    ));
    let mut bad = head.clone();
    bad[0] = b'X';
    v.push(case("real-bad-magic", bad, GgufBadMagic, &["GGUF"]));
    v
}

/// The whole corpus, synthetic cases first. Names are unique.
fn corpus() -> Vec<Case> {
    let mut v = synthetic_cases();
    v.extend(real_model_cases());
    v.extend(model_cases());
    let mut seen = std::collections::HashSet::new();
    for c in &v {
        assert!(
            seen.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
    }
    v
}

/// Writes every case as `<name>.gguf` into `dir` (created if needed) plus the manifest
/// `expected.tsv` (`<file>\t<ERROR_CODE_NAME>` per line).
fn write_corpus(dir: &Path, cases: &[Case]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut manifest = String::new();
    for c in cases {
        let file = format!("{}.gguf", c.name);
        std::fs::write(dir.join(&file), &c.bytes).unwrap();
        manifest.push_str(&format!("{file}\t{}\n", c.code.name()));
    }
    std::fs::write(dir.join("expected.tsv"), manifest).unwrap();
}

/// A fresh folder under the system temp folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("chord-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_err(path: &Path) -> Option<chord::Error> {
    GgufFile::open(path).err()
}

/// The error of loading the model in `path`, if any.
fn load_err(path: &Path) -> Option<chord::Error> {
    chord::model::Model::load(path, &chord::model::ModelOptions::default()).err()
}

/// Opens bytes through an anonymous map, without a file.
fn open_bytes(bytes: &[u8]) -> chord::Result<GgufFile> {
    if bytes.is_empty() {
        // An anonymous map cannot be empty; go through a file instead.
        let dir = TempDir::new("empty-gguf");
        let p = dir.0.join("empty.gguf");
        std::fs::write(&p, bytes).unwrap();
        return GgufFile::open(&p);
    }
    let mut m = memmap2::MmapMut::map_anon(bytes.len()).unwrap();
    m.copy_from_slice(bytes);
    GgufFile::from_map(Arc::new(m.make_read_only().unwrap()))
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Writes the corpus into `$CHORD_BAD_GGUF_DIR` for the C API and `chord inspect` tests; does
/// nothing when the variable is not set.
#[test]
fn write_corpus_for_c_tests() {
    let Some(dir) = std::env::var_os("CHORD_BAD_GGUF_DIR") else {
        return;
    };
    let cases = corpus();
    write_corpus(Path::new(&dir), &cases);
    eprintln!(
        "wrote {} malformed GGUF files to {}",
        cases.len(),
        PathBuf::from(dir).display()
    );
}

#[test]
fn every_corpus_file_fails_with_its_code() {
    let cases = corpus();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let dir = TempDir::new("bad-gguf");
    write_corpus(&dir.0, &cases);
    // Read the cases back through the manifest, as the C tests do.
    let manifest = std::fs::read_to_string(dir.0.join("expected.tsv")).unwrap();
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines.len(), cases.len());
    let mut failures = Vec::new();
    for (line, c) in lines.iter().zip(&cases) {
        let (file, code) = line.split_once('\t').expect("file<TAB>code");
        assert_eq!(file, format!("{}.gguf", c.name));
        let err = match c.model {
            false => open_err(&dir.0.join(file)),
            true => load_err(&dir.0.join(file)),
        };
        match err {
            None => failures.push(format!("{file}: opened, expected {code}")),
            Some(e) => {
                eprintln!("{file}\t{}\t{}", e.code().name(), e.message());
                if e.code().name() != code {
                    failures.push(format!(
                        "{file}: got {} ({}), expected {code}",
                        e.code().name(),
                        e.message()
                    ));
                }
                for n in &c.needles {
                    if !e.message().contains(n.as_str()) {
                        failures.push(format!("{file}: message {:?} lacks {n:?}", e.message()));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_tiny_gemma3_model_of_the_model_cases_loads() {
    let dir = TempDir::new("tiny-gemma3");
    let p = dir.0.join("tiny.gguf");
    std::fs::write(&p, tiny_gemma3().build().b).unwrap();
    let m = chord::model::Model::load(&p, &chord::model::ModelOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(m
        .describe()
        .contains("sliding window of 16 on 1 of 1 layers"));
}

#[test]
fn the_base_file_of_the_corpus_is_valid() {
    let w = Spec::base().build();
    let f = open_bytes(&w.b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.name").unwrap(), "tiny malformed");
    assert_eq!(f.get_array("tokenizer.ggml.tokens").unwrap().len(), 3);
    assert_eq!(f.opt_bool("general.flag").unwrap(), Some(true));
    assert_eq!(f.tensors().len(), 2);
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.offset, q.size), (w.at("data") + 64, 68));
    assert_eq!(f.tensor_data(q).len(), 68);
}

#[test]
fn valid_version_2_file() {
    let mut s = Spec::base();
    s.version = 2;
    let f = open_bytes(&s.build().b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.version(), 2);
    assert_eq!(f.tensors().len(), 2);
}

#[test]
fn valid_vocab_only_files() {
    let mut s = Spec::base();
    s.tensors.clear();
    // With the padding, and ending right after the metadata (llama.cpp accepts both).
    for data in [true, false] {
        s.data = data;
        let w = s.build();
        let f = open_bytes(&w.b).unwrap_or_else(|e| panic!("{e}"));
        assert!(f.tensors().is_empty());
        assert_eq!(f.metadata().len(), 6);
        assert!(f.data_offset() <= f.file_size());
    }
    // No metadata at all either.
    let mut s = Spec::base();
    s.tensors.clear();
    s.kvs.clear();
    s.data = false;
    let f = open_bytes(&s.build().b).unwrap_or_else(|e| panic!("{e}"));
    assert!(f.metadata().is_empty() && f.tensors().is_empty());
}

#[test]
fn valid_every_value_type_and_nested_arrays() {
    let mut nested = V::Arr(T_U8, vec![V::U8(7), V::U8(8)]);
    for _ in 0..7 {
        nested = V::Arr(T_ARR, vec![nested.clone(), nested]);
    }
    let s = Spec::base()
        .kv("t.u8", V::U8(200))
        .kv("t.i8", V::I8(-100))
        .kv("t.u16", V::U16(60000))
        .kv("t.i16", V::I16(-30000))
        .kv("t.u32", V::U32(4_000_000_000))
        .kv("t.i32", V::I32(-2_000_000_000))
        .kv("t.f32", V::F32(1.5))
        .kv("t.bool", V::Bool(0))
        .kv("t.str", V::Str("h\u{e9}llo"))
        .kv("t.empty_str", V::Str(""))
        .kv("t.u64", V::U64(u64::MAX))
        .kv("t.i64", V::I64(i64::MIN))
        .kv("t.f64", V::F64(-0.25))
        .kv("t.empty_arr", V::Arr(T_U32, vec![]))
        .kv(
            "t.arr_of_strs",
            V::Arr(T_STR, vec![V::Str("x"), V::Str("")]),
        )
        .kv(
            "t.arr_of_arrs",
            V::Arr(
                T_ARR,
                vec![
                    V::Arr(T_U8, vec![V::U8(1)]),
                    V::Arr(T_STR, vec![V::Str("y")]),
                ],
            ),
        )
        .kv("t.nested8", nested);
    let f = open_bytes(&s.build().b).unwrap_or_else(|e| panic!("{e}"));
    let g = |k: &str| f.get(k).unwrap().clone();
    assert_eq!(g("t.u8"), Value::U8(200));
    assert_eq!(g("t.i8"), Value::I8(-100));
    assert_eq!(g("t.u16"), Value::U16(60000));
    assert_eq!(g("t.i16"), Value::I16(-30000));
    assert_eq!(g("t.u32"), Value::U32(4_000_000_000));
    assert_eq!(g("t.i32"), Value::I32(-2_000_000_000));
    assert_eq!(g("t.f32"), Value::F32(1.5));
    assert_eq!(g("t.bool"), Value::Bool(false));
    assert_eq!(g("t.str"), Value::String("h\u{e9}llo".into()));
    assert_eq!(g("t.empty_str"), Value::String(String::new()));
    assert_eq!(g("t.u64"), Value::U64(u64::MAX));
    assert_eq!(g("t.i64"), Value::I64(i64::MIN));
    assert_eq!(g("t.f64"), Value::F64(-0.25));
    // Arrays keep their element type, also when empty.
    assert_eq!(g("t.empty_arr"), Value::Array(Array::U32(vec![])));
    assert_eq!(
        g("t.arr_of_arrs"),
        Value::Array(Array::Array(vec![
            Array::U8(vec![1]),
            Array::String(vec!["y".into()])
        ]))
    );
    // Eight levels of arrays (the limit): 2^7 leaves of [7, 8].
    let mut v = g("t.nested8");
    for _ in 0..7 {
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        v = a.get(1).unwrap();
    }
    assert_eq!(v, Value::Array(Array::U8(vec![7, 8])));
}

#[test]
fn valid_custom_alignments() {
    for (align, v) in [
        (1u64, V::U32(1)),
        (8, V::U32(8)),
        (64, V::U32(64)),
        (4096, V::U64(4096)),
        (1 << 20, V::U32(1 << 20)),
    ] {
        let mut s = Spec::base().kv("general.alignment", v);
        s.align = align;
        let w = s.build();
        let f = open_bytes(&w.b).unwrap_or_else(|e| panic!("alignment {align}: {e}"));
        assert_eq!(f.alignment() as u64, align);
        assert_eq!(f.data_offset(), w.at("data"));
        assert_eq!(f.data_offset() as u64 % align, 0);
        for t in f.tensors() {
            assert_eq!((t.offset - f.data_offset()) as u64 % align, 0);
            assert!(t.offset + t.size <= f.file_size());
        }
    }
}

#[test]
fn valid_four_dimensional_tensors_of_every_type() {
    let mut s = Spec::base();
    s.tensors = GgmlType::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| T {
            name: format!("t{i}.{}", t.name()),
            dims: vec![t.block_size() as u64 * 2, 3, 1, 2],
            ty: *t as u32,
            off: None,
        })
        .collect();
    let f = open_bytes(&s.build().b).unwrap_or_else(|e| panic!("{e}"));
    for (t, ty) in f.tensors().iter().zip(GgmlType::ALL) {
        assert_eq!(t.ty, ty);
        assert_eq!(t.n_rows(), 6);
        assert_eq!(t.size, 2 * ty.type_size() * 6);
    }
}

/// xorshift64*: a deterministic PRNG, enough for mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random mutation of `b`: byte flips, interesting values, truncation, splices.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    const INTERESTING: [u64; 9] = [0, 1, 2, 3, 31, 255, 1 << 31, i64::MAX as u64, u64::MAX];
    for _ in 0..1 + rng.below(3) {
        if b.is_empty() {
            return;
        }
        let at = rng.below(b.len());
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => {
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let width = [1, 4, 8][rng.below(3)];
                let end = (at + width).min(b.len());
                b[at..end].copy_from_slice(&v[..end - at]);
            }
            3 => b.truncate(at),
            4 => {
                let len = rng.below(16).min(b.len() - at);
                let chunk = b[at..at + len].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, chunk);
            }
            _ => {
                let len = rng.below(16).min(b.len() - at);
                b.drain(at..at + len);
            }
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut s = Spec::base().kv("general.alignment", V::U32(16));
    s.align = 16;
    s.kvs.push((
        "nested".into(),
        V::Arr(
            T_ARR,
            vec![V::Arr(T_STR, vec![V::Str("ab")]), V::Arr(T_U8, vec![])],
        ),
    ));
    let seed = s.build().b;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err) = (0, 0);
    for i in 0..2000 {
        let mut b = seed.clone();
        mutate(&mut rng, &mut b);
        let r = std::panic::catch_unwind(|| {
            open_bytes(&b).map(|f| {
                // Whatever parsed must be usable: every tensor's data is inside the map.
                for t in f.tensors() {
                    assert_eq!(f.tensor_data(t).len(), t.size);
                }
                f.metadata().len()
            })
        });
        match r {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                assert!(!e.message().is_empty());
                assert_ne!(e.code(), ErrorCode::Internal);
                err += 1;
            }
            Err(_) => panic!("mutation {i} panicked; bytes: {b:02x?}"),
        }
    }
    eprintln!("{ok} mutations parsed, {err} were rejected");
    assert!(err > 1000, "the mutations should mostly break the file");
}
