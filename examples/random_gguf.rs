//! Writes a LLaMA-architecture GGUF file of a real model's shape with random weights in the
//! formats of a Q4_K_M file (Q4_K matrices; Q6_K for `attn_v`, `ffn_down` and `output`; f32
//! norms of ones), the vocabulary copied from another GGUF file. For machines that cannot get
//! the test models (the lent GPU machine reaches no network and takes 64 MiB of files): it makes
//! the TinyLlama- and Llama-2-7B-shaped files of scripts/device-check.sh there in seconds, where
//! scripts/make-random-model.py (numpy, gguf-py, llama-quantize) is not available.
//!
//! ```text
//! cargo run --release --example random_gguf -- VOCAB.gguf OUT.gguf tinyllama|llama2-7b
//! ```
//!
//! The values are random blocks with sane scales (tests/common/blocks.rs), not the one-hot
//! matrices of make-random-model.py: the file measures speed and compares backends with each
//! other, not with llama.cpp. Written by hand because no maintained Rust crate writes GGUF.

#[path = "../tests/common/blocks.rs"]
mod blocks;

use chord::gguf::{Array, GgufFile, Value};
use chord::quant::GgmlType;
use std::io::{BufWriter, Write};

/// (hidden, layers, heads, kv heads, feed-forward) of each shape.
fn shape(name: &str) -> (usize, usize, usize, usize, usize) {
    match name {
        "tinyllama" => (2048, 22, 32, 4, 5632),
        "llama2-7b" => (4096, 32, 32, 32, 11008),
        other => panic!("unknown shape {other:?} (tinyllama, llama2-7b)"),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// GGUF's type id of an array's elements, and the elements' bytes.
fn array_bytes(a: &Array) -> (u32, Vec<u8>, usize) {
    let mut b = Vec::new();
    let (ty, n) = match a {
        Array::U8(v) => (0, v.iter().map(|x| b.push(*x)).count()),
        Array::I8(v) => (1, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::U16(v) => (2, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::I16(v) => (3, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::U32(v) => (4, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::I32(v) => (5, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::F32(v) => (6, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::Bool(v) => (7, v.iter().map(|x| b.push(*x as u8)).count()),
        Array::String(v) => (8, v.iter().map(|s| put_str(&mut b, s)).count()),
        Array::U64(v) => (10, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::I64(v) => (11, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::F64(v) => (12, v.iter().map(|x| b.extend(x.to_le_bytes())).count()),
        Array::Array(_) => panic!("nested arrays are not copied"),
    };
    (ty, b, n)
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    let (ty, bytes): (u32, Vec<u8>) = match v {
        Value::U8(x) => (0, vec![*x]),
        Value::I8(x) => (1, x.to_le_bytes().to_vec()),
        Value::U16(x) => (2, x.to_le_bytes().to_vec()),
        Value::I16(x) => (3, x.to_le_bytes().to_vec()),
        Value::U32(x) => (4, x.to_le_bytes().to_vec()),
        Value::I32(x) => (5, x.to_le_bytes().to_vec()),
        Value::F32(x) => (6, x.to_le_bytes().to_vec()),
        Value::Bool(x) => (7, vec![*x as u8]),
        Value::String(s) => {
            let mut b = Vec::new();
            put_str(&mut b, s);
            (8, b)
        }
        Value::Array(a) => {
            let (et, eb, n) = array_bytes(a);
            let mut b = et.to_le_bytes().to_vec();
            b.extend((n as u64).to_le_bytes());
            b.extend(eb);
            (9, b)
        }
        Value::U64(x) => (10, x.to_le_bytes().to_vec()),
        Value::I64(x) => (11, x.to_le_bytes().to_vec()),
        Value::F64(x) => (12, x.to_le_bytes().to_vec()),
    };
    out.extend(ty.to_le_bytes());
    out.extend(bytes);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [vocab, out, which] = args.as_slice() else {
        panic!("usage: random_gguf VOCAB.gguf OUT.gguf tinyllama|llama2-7b");
    };
    let (hidden, layers, heads, kv_heads, ff) = shape(which);
    let vf = GgufFile::open(vocab).unwrap_or_else(|e| panic!("{vocab}: {e}"));
    let n_vocab = match vf.get("tokenizer.ggml.tokens") {
        Some(Value::Array(Array::String(t))) => t.len(),
        _ => panic!("{vocab} has no tokenizer.ggml.tokens"),
    };
    let head_dim = hidden / heads;
    let u32v = |x: usize| Value::U32(x as u32);
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        (
            "general.name".into(),
            Value::String(format!("{which}-shape-random")),
        ),
        ("llama.context_length".into(), u32v(4096)),
        ("llama.embedding_length".into(), u32v(hidden)),
        ("llama.block_count".into(), u32v(layers)),
        ("llama.feed_forward_length".into(), u32v(ff)),
        ("llama.attention.head_count".into(), u32v(heads)),
        ("llama.attention.head_count_kv".into(), u32v(kv_heads)),
        ("llama.rope.dimension_count".into(), u32v(head_dim)),
        ("llama.rope.freq_base".into(), Value::F32(10000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
    ];
    meta.extend(
        vf.metadata()
            .iter()
            .filter(|(k, _)| k.starts_with("tokenizer."))
            .cloned(),
    );

    // (name, format, dims as GGUF lists them: values per row first).
    let mut tensors: Vec<(String, GgmlType, Vec<usize>)> = vec![(
        "token_embd.weight".into(),
        GgmlType::Q4_K,
        vec![hidden, n_vocab],
    )];
    let kv = kv_heads * head_dim;
    for l in 0..layers {
        let b = |n: &str| format!("blk.{l}.{n}");
        tensors.extend([
            (b("attn_norm.weight"), GgmlType::F32, vec![hidden]),
            (b("attn_q.weight"), GgmlType::Q4_K, vec![hidden, hidden]),
            (b("attn_k.weight"), GgmlType::Q4_K, vec![hidden, kv]),
            (b("attn_v.weight"), GgmlType::Q6_K, vec![hidden, kv]),
            (
                b("attn_output.weight"),
                GgmlType::Q4_K,
                vec![hidden, hidden],
            ),
            (b("ffn_norm.weight"), GgmlType::F32, vec![hidden]),
            (b("ffn_gate.weight"), GgmlType::Q4_K, vec![hidden, ff]),
            (b("ffn_up.weight"), GgmlType::Q4_K, vec![hidden, ff]),
            (b("ffn_down.weight"), GgmlType::Q6_K, vec![ff, hidden]),
        ]);
    }
    tensors.push(("output_norm.weight".into(), GgmlType::F32, vec![hidden]));
    tensors.push((
        "output.weight".into(),
        GgmlType::Q6_K,
        vec![hidden, n_vocab],
    ));

    const ALIGN: usize = 32;
    let size = |ty: GgmlType, dims: &[usize]| {
        ty.row_bytes(dims[0]).expect("row size") * dims[1..].iter().product::<usize>()
    };
    let mut head = Vec::new();
    head.extend(b"GGUF");
    head.extend(3u32.to_le_bytes());
    head.extend((tensors.len() as u64).to_le_bytes());
    head.extend((meta.len() as u64).to_le_bytes());
    for (k, v) in &meta {
        put_str(&mut head, k);
        put_value(&mut head, v);
    }
    let mut offset = 0usize;
    for (name, ty, dims) in &tensors {
        put_str(&mut head, name);
        head.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            head.extend((*d as u64).to_le_bytes());
        }
        head.extend((*ty as u32).to_le_bytes());
        head.extend((offset as u64).to_le_bytes());
        offset += size(*ty, dims).next_multiple_of(ALIGN);
    }
    head.resize(head.len().next_multiple_of(ALIGN), 0);
    let mut w = BufWriter::with_capacity(1 << 22, std::fs::File::create(out).expect("create"));
    w.write_all(&head).expect("write");
    for (i, (_, ty, dims)) in tensors.iter().enumerate() {
        let n = size(*ty, dims);
        let mut bytes = match ty {
            GgmlType::F32 => 1f32.to_le_bytes().repeat(dims[0]),
            _ => blocks::random_matrix(*ty, dims[1..].iter().product(), dims[0], i as u64 + 1),
        };
        assert_eq!(bytes.len(), n);
        bytes.resize(n.next_multiple_of(ALIGN), 0);
        w.write_all(&bytes).expect("write");
    }
    w.flush().expect("write");
    eprintln!(
        "{out}: {which} shape, {n_vocab} tokens, {} tensors, {:.2} GB",
        tensors.len(),
        (head.len() + offset) as f64 / 1e9
    );
}
