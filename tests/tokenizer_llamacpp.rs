//! chord's token ids against llama.cpp's own tokenizer test vectors (`models/ggml-vocab-*.gguf`
//! with `.inp`/`.out` pairs, made by llama.cpp's `test-tokenizer-0` with add_special=false and
//! parse_special=false). Missing files fail the test.

mod common;

use chord::gguf::GgufFile;
use chord::tokenizer::Tokenizer;
use std::path::PathBuf;

fn vocab_dir() -> PathBuf {
    common::cache_dir().join("llama.cpp-0.3.36").join("models")
}

/// Reads the `.inp`/`.out` pair the way test-tokenizer-0.cpp does.
fn read_tests(name: &str) -> Vec<(String, Vec<u32>)> {
    let base = vocab_dir().join(format!("ggml-vocab-{name}.gguf"));
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp"))
        .unwrap_or_else(|e| panic!("missing test inputs for {name}: {e}"));
    let out = std::fs::read_to_string(base.with_extension("gguf.out"))
        .unwrap_or_else(|e| panic!("missing test outputs for {name}: {e}"));
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].find(sep) {
            Some(n) => {
                inputs.push(inp[pos..pos + n].to_string());
                pos += n + sep.len();
            }
            None => {
                inputs.push(inp[pos..].to_string());
                break;
            }
        }
    }
    let outputs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(inputs.len(), outputs.len(), "{name}: input/output count");
    inputs.into_iter().zip(outputs).collect()
}

fn check(name: &str) {
    let path = vocab_dir().join(format!("ggml-vocab-{name}.gguf"));
    let gguf = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let tests = read_tests(name);
    let mut failures = Vec::new();
    for (text, want) in &tests {
        let got = tok.encode(text, false, false).unwrap();
        if &got != want {
            failures.push(format!("{text:?}\n   want {want:?}\n   got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} vectors differ:\n{}",
        failures.len(),
        tests.len(),
        failures.join("\n")
    );
    assert!(tests.len() > 20, "{name}: only {} vectors", tests.len());
}

#[test]
fn llama_spm() {
    check("llama-spm");
}

#[test]
fn llama_bpe() {
    check("llama-bpe");
}

#[test]
fn gpt_2() {
    check("gpt-2");
}

#[test]
fn qwen2() {
    check("qwen2");
}

#[test]
fn phi_3() {
    check("phi-3");
}

#[test]
fn starcoder() {
    check("starcoder");
}

#[test]
fn refact() {
    check("refact");
}

#[test]
fn command_r() {
    check("command-r");
}

#[test]
fn mpt() {
    check("mpt");
}

#[test]
fn falcon() {
    check("falcon");
}

#[test]
fn deepseek_llm() {
    check("deepseek-llm");
}

#[test]
fn deepseek_coder() {
    check("deepseek-coder");
}
