//! Bad or unusual tokenizer metadata gives clear errors, never panics; a small synthetic
//! vocabulary exercises SPM byte fallback and BPE merges without any model file.

use chord::gguf::GgufFile;
use chord::tokenizer::{ModelKind, Tokenizer};
use chord::ErrorCode;

/// A metadata value for the tiny GGUF writer below.
enum V {
    Str(&'static str),
    Strs(Vec<String>),
    F32s(Vec<f32>),
    I32s(Vec<i32>),
    U32(u32),
    Bool(bool),
}

/// Writes a GGUF v3 file with metadata only and opens it.
fn gguf(name: &str, kvs: &[(&str, V)]) -> GgufFile {
    fn s(out: &mut Vec<u8>, t: &str) {
        out.extend_from_slice(&(t.len() as u64).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        s(&mut out, k);
        match v {
            V::Str(t) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                s(&mut out, t);
            }
            V::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            V::Bool(b) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(*b as u8);
            }
            V::Strs(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for t in a {
                    s(&mut out, t);
                }
            }
            V::F32s(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            V::I32s(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&5u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    // A distinct file per call: tests run in parallel and may build files with the same name.
    static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "chord-tokenizer-{}-{serial}-{name}.gguf",
        std::process::id()
    ));
    std::fs::write(&path, &out).unwrap();
    let g = GgufFile::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    g
}

/// A tiny SPM vocabulary: <unk>, <s>, </s>, 256 byte tokens, then a few pieces.
fn spm_tokens() -> Vec<String> {
    let mut t: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    t.extend((0..256).map(|b| format!("<0x{b:02X}>")));
    t.extend(["▁", "h", "i", "▁h", "▁hi", "<|ctl|>"].map(String::from));
    t
}

fn spm_types(n: usize) -> Vec<i32> {
    let mut ty = vec![1; n];
    ty[0] = 2;
    ty[1] = 3;
    ty[2] = 3;
    for t in ty.iter_mut().skip(3).take(256) {
        *t = 6;
    }
    ty[n - 1] = 3;
    ty
}

fn err(kvs: &[(&str, V)]) -> chord::Error {
    Tokenizer::from_gguf(&gguf("err", kvs)).expect_err("should fail")
}

#[test]
fn spm_merges_by_score_with_byte_fallback() {
    let tokens = spm_tokens();
    let n = tokens.len();
    let mut scores = vec![0.0f32; n];
    scores[n - 3] = -2.0; // ▁h
    scores[n - 2] = -1.0; // ▁hi
    let g = gguf(
        "spm",
        &[
            ("tokenizer.ggml.model", V::Str("llama")),
            ("tokenizer.ggml.tokens", V::Strs(tokens)),
            ("tokenizer.ggml.scores", V::F32s(scores)),
            ("tokenizer.ggml.token_type", V::I32s(spm_types(n))),
        ],
    );
    let tok = Tokenizer::from_gguf(&g).unwrap();
    assert_eq!(tok.model_kind(), ModelKind::Spm);
    assert!(tok.add_bos() && !tok.add_eos() && tok.add_space_prefix());
    let hi = tok.find_token("▁hi").unwrap();
    // "hi é": ▁hi, ▁, then é as two byte tokens.
    let ids = tok.encode("hi é", true, false).unwrap();
    assert_eq!(ids, vec![1, hi, 259, 3 + 0xC3, 3 + 0xA9]);
    // As llama.cpp: the space prefix is dropped from a leading word, not after a removed BOS.
    assert_eq!(tok.decode(&ids[1..], false, false), "hi é".as_bytes());
    assert_eq!(tok.decode(&ids, true, false), " hi é".as_bytes());
    // Control text is plain text unless parse_special.
    let ctl = tok.find_token("<|ctl|>").unwrap();
    assert!(tok.is_control(ctl));
    assert!(!tok.encode("<|ctl|>", false, false).unwrap().contains(&ctl));
    assert_eq!(tok.encode("<|ctl|>", false, true).unwrap(), vec![ctl]);
    assert_eq!(tok.token_to_piece(ctl, false), b"");
    assert_eq!(tok.token_to_piece(ctl, true), b"<|ctl|>");
    assert!(tok.is_eog(2));
    assert_eq!(tok.encode("", true, false).unwrap(), vec![1]);
}

fn bpe_kvs(merges: Vec<String>, pre: &'static str) -> Vec<(&'static str, V)> {
    // Every GPT-2 byte character, then a few merged tokens.
    let table: Vec<char> = {
        let mut t = Vec::new();
        let mut n = 0;
        for b in 0u32..256 {
            let keep = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            t.push(
                char::from_u32(if keep {
                    b
                } else {
                    n += 1;
                    255 + n
                })
                .unwrap(),
            );
        }
        t
    };
    let mut tokens: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    tokens.extend(["he", "ll", "hell", "hello", "Ġw", "<|im_end|>"].map(String::from));
    vec![
        ("tokenizer.ggml.model", V::Str("gpt2")),
        ("tokenizer.ggml.pre", V::Str(pre)),
        ("tokenizer.ggml.tokens", V::Strs(tokens)),
        ("tokenizer.ggml.merges", V::Strs(merges)),
        ("tokenizer.ggml.eos_token_id", V::U32(261)),
        ("tokenizer.ggml.add_bos_token", V::Bool(false)),
    ]
}

fn good_merges() -> Vec<String> {
    ["h e", "l l", "he ll", "hell o", "Ġ w"]
        .map(String::from)
        .to_vec()
}

#[test]
fn bpe_merges_by_rank() {
    let tok = Tokenizer::from_gguf(&gguf("bpe", &bpe_kvs(good_merges(), "gpt-2"))).unwrap();
    assert_eq!(tok.model_kind(), ModelKind::Bpe);
    let ids = tok.encode("hello world", true, true).unwrap();
    let hello = tok.find_token("hello").unwrap();
    let gw = tok.find_token("Ġw").unwrap();
    assert_eq!(ids[..2], [hello, gw]);
    assert_eq!(tok.decode(&ids, false, false), b"hello world");
    let end = tok.find_token("<|im_end|>").unwrap();
    assert!(tok.is_eog(end) && tok.is_control(end) && tok.is_eog(261));
}

#[test]
fn unknown_pre_tokenizer_is_unsupported() {
    let e = err(&bpe_kvs(good_merges(), "klingon"));
    assert_eq!(e.code(), ErrorCode::Unsupported);
    assert!(e.message().contains("klingon"), "{e}");
}

#[test]
fn unknown_model_is_unsupported() {
    let e = err(&[
        ("tokenizer.ggml.model", V::Str("t5")),
        ("tokenizer.ggml.tokens", V::Strs(vec!["a".into()])),
    ]);
    assert_eq!(e.code(), ErrorCode::Unsupported);
}

#[test]
fn merge_with_unknown_token_is_bad_model() {
    let mut m = good_merges();
    m.push("zz q".into());
    let e = err(&bpe_kvs(m, "gpt-2"));
    assert_eq!(e.code(), ErrorCode::BadModel);
    assert!(e.message().contains("zz q"), "{e}");
    let e = err(&bpe_kvs(vec!["nospace".into()], "gpt-2"));
    assert_eq!(e.code(), ErrorCode::BadModel);
}

#[test]
fn missing_merges_is_bad_model() {
    let mut kvs = bpe_kvs(good_merges(), "gpt-2");
    kvs.retain(|(k, _)| *k != "tokenizer.ggml.merges");
    assert_eq!(err(&kvs).code(), ErrorCode::BadModel);
}

#[test]
fn missing_tokens_is_bad_model() {
    let e = err(&[("tokenizer.ggml.model", V::Str("llama"))]);
    assert_eq!(e.code(), ErrorCode::BadModel);
    assert!(e.message().contains("tokenizer.ggml.tokens"), "{e}");
    assert_eq!(err(&[]).code(), ErrorCode::BadModel);
}

#[test]
fn wrong_length_scores_and_types_are_bad_model() {
    let tokens = spm_tokens();
    let n = tokens.len();
    let e = err(&[
        ("tokenizer.ggml.model", V::Str("llama")),
        ("tokenizer.ggml.tokens", V::Strs(tokens.clone())),
        ("tokenizer.ggml.scores", V::F32s(vec![0.0; n - 1])),
    ]);
    assert_eq!(e.code(), ErrorCode::BadModel);
    assert!(e.message().contains("scores"), "{e}");
    let e = err(&[
        ("tokenizer.ggml.model", V::Str("llama")),
        ("tokenizer.ggml.tokens", V::Strs(tokens)),
        ("tokenizer.ggml.token_type", V::I32s(vec![1; n + 1])),
    ]);
    assert_eq!(e.code(), ErrorCode::BadModel);
}

#[test]
fn wrong_types_are_bad_model() {
    let e = err(&[
        ("tokenizer.ggml.model", V::U32(1)),
        ("tokenizer.ggml.tokens", V::Strs(vec!["a".into()])),
    ]);
    assert_eq!(e.code(), ErrorCode::BadModel);
    let e = err(&[
        ("tokenizer.ggml.model", V::Str("llama")),
        ("tokenizer.ggml.tokens", V::F32s(vec![1.0])),
    ]);
    assert_eq!(e.code(), ErrorCode::BadModel);
}

#[test]
fn missing_byte_token_is_an_error_not_a_panic() {
    let g = gguf(
        "nobytes",
        &[
            ("tokenizer.ggml.model", V::Str("llama")),
            (
                "tokenizer.ggml.tokens",
                V::Strs(["<unk>", "<s>", "</s>", "▁"].map(String::from).to_vec()),
            ),
        ],
    );
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let e = tok.encode("x", false, false).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadModel);
    // Out-of-range ids decode to nothing.
    assert_eq!(tok.decode(&[99, 1000], false, true), b"");
    assert_eq!(tok.token_to_piece(12345, true), b"");
}
