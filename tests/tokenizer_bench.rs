//! Benchmark (not run by `cargo test`): load and encode speed on real vocabularies.
//! Run with `cargo test --release --test tokenizer_bench -- --ignored --nocapture`.

mod common;

use chord::gguf::GgufFile;
use chord::tokenizer::Tokenizer;
use std::time::Instant;

fn sample_text() -> String {
    let para = "Large language models are trained on vast amounts of text. Tokenizers split it \
        into pieces: words, sub-words and bytes. Numbers like 3.14159 and 1,000,000, code like \
        `fn main() { println!(\"hi\"); }`, accents (café, naïve), CJK 中文字符 and emoji 🎉 all \
        appear.\n\n    indented   code\twith tabs\n";
    para.repeat(4096 / para.len() + 1)
}

fn measure(path: &std::path::Path) {
    let gguf = GgufFile::open(path).unwrap();
    // The best of a few loads: the machine may be busy with other work.
    let mut load_ms = f64::MAX;
    let mut tok = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        tok = Some(Tokenizer::from_gguf(&gguf).unwrap());
        load_ms = load_ms.min(t0.elapsed().as_secs_f64() * 1e3);
    }
    let tok = tok.unwrap();
    let text = sample_text();
    let _ = tok.encode(&text, true, true).unwrap();
    let mut encode_ms = f64::MAX;
    for _ in 0..10 {
        let t1 = Instant::now();
        std::hint::black_box(tok.encode(&text, true, true).unwrap());
        encode_ms = encode_ms.min(t1.elapsed().as_secs_f64() * 1e3);
    }
    eprintln!(
        "{}: from_gguf {load_ms:.1} ms, encode {} bytes {encode_ms:.2} ms",
        path.display(),
        text.len()
    );
}

#[test]
#[ignore = "benchmark: prints timings"]
fn load_and_encode_speed() {
    let dir = common::cache_dir().join("llama.cpp-0.3.36").join("models");
    for path in [
        common::default_model(),
        dir.join("ggml-vocab-qwen2.gguf"),
        dir.join("ggml-vocab-llama-bpe.gguf"),
        dir.join("ggml-vocab-llama-spm.gguf"),
    ] {
        measure(&path);
    }
}
