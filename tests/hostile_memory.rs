//! A small GGUF whose counts claim huge things (a metadata array of 2^40 entries, a 1 TiB tensor, a
//! vocabulary of 10^9 tokens) is refused with a clear error before anything of that size is
//! allocated, and a real array of 16.7M bytes costs its bytes: the process's peak resident memory
//! stays under 100 MiB. Its own test binary, so that
//! no other test's memory counts (`VmHWM` of /proc/self/status, Linux).
use chord::gguf::MAX_METADATA_VALUES;
use chord::model::{Model, ModelOptions};
use chord::ErrorCode;
use std::path::PathBuf;

/// A GGUF v3 writer for the few shapes these cases need.
#[derive(Default)]
struct Gguf {
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<u8>,
    n_tensors: u64,
    tail: Vec<u8>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Gguf {
    fn kv_str(mut self, key: &str, value: &str) -> Self {
        string(&mut self.kv, key);
        self.kv.extend_from_slice(&8u32.to_le_bytes());
        string(&mut self.kv, value);
        self.n_kv += 1;
        self
    }

    /// An array of `elem` type claiming `n` entries, followed by `items` bytes (fewer than claimed).
    fn kv_array(mut self, key: &str, elem: u32, n: u64, items: &[u8]) -> Self {
        string(&mut self.kv, key);
        self.kv.extend_from_slice(&9u32.to_le_bytes());
        self.kv.extend_from_slice(&elem.to_le_bytes());
        self.kv.extend_from_slice(&n.to_le_bytes());
        self.kv.extend_from_slice(items);
        self.n_kv += 1;
        self
    }

    fn tensor(mut self, name: &str, ty: u32, dims: &[u64]) -> Self {
        string(&mut self.tensors, name);
        self.tensors
            .extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend_from_slice(&d.to_le_bytes());
        }
        self.tensors.extend_from_slice(&ty.to_le_bytes());
        self.tensors.extend_from_slice(&0u64.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    fn write(self, name: &str) -> PathBuf {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&self.n_tensors.to_le_bytes());
        b.extend_from_slice(&self.n_kv.to_le_bytes());
        b.extend_from_slice(&self.kv);
        b.extend_from_slice(&self.tensors);
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        b.extend_from_slice(&self.tail);
        let dir = std::env::temp_dir().join(format!("chord-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn huge_claims_are_refused_in_little_memory() {
    let strings = {
        let mut v = Vec::new();
        for t in ["<unk>", "<s>", "</s>", "a"] {
            string(&mut v, t);
        }
        v
    };
    let cases = [
        (
            "array-2^40.gguf",
            ErrorCode::GgufLimit,
            Gguf::default()
                .kv_str("general.architecture", "llama")
                .kv_array("general.huge", 0, 1 << 40, &[0; 64])
                .write("array-2^40.gguf"),
        ),
        (
            // Real: 16.7M one-byte elements, just under the reader's limit on values. Held as
            // bytes (16 MiB), not as 16.7M 32-byte values (512 MiB); the load then fails on the
            // missing hyperparameters.
            "array-16M-u8.gguf",
            ErrorCode::BadModel,
            Gguf::default()
                .kv_str("general.architecture", "llama")
                .kv_array(
                    "general.bytes",
                    0,
                    MAX_METADATA_VALUES - 16,
                    &vec![7; (MAX_METADATA_VALUES - 16) as usize],
                )
                .write("array-16M-u8.gguf"),
        ),
        (
            "tensor-1TiB.gguf",
            ErrorCode::GgufOutOfBounds,
            Gguf {
                tail: vec![0; 4096],
                ..Default::default()
            }
            .kv_str("general.architecture", "llama")
            .tensor("token_embd.weight", 0, &[1 << 20, 1 << 18])
            .write("tensor-1TiB.gguf"),
        ),
        (
            "vocab-10^9.gguf",
            ErrorCode::GgufLimit,
            Gguf::default()
                .kv_str("general.architecture", "llama")
                .kv_str("tokenizer.ggml.model", "llama")
                .kv_array("tokenizer.ggml.tokens", 8, 1_000_000_000, &strings)
                .write("vocab-10^9.gguf"),
        ),
    ];
    for (name, code, path) in &cases {
        for use_mmap in [true, false] {
            let opts = ModelOptions {
                use_mmap,
                ..Default::default()
            };
            let err = match Model::load(path, &opts) {
                Ok(_) => panic!("{name} loaded"),
                Err(e) => e,
            };
            assert_eq!(err.code(), *code, "{name}: {err}");
            assert!(!err.to_string().is_empty());
            println!("{name} (mmap {use_mmap}): {err}");
        }
    }
    let peak = peak_rss_kib();
    println!("peak RSS {:.1} MiB", peak as f64 / 1024.0);
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    std::fs::remove_dir_all(cases[0].2.parent().unwrap()).unwrap();
}
