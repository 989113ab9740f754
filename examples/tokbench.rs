//! Times the tokenizer on adversarial inputs (issue: O(N log N) at most): N bytes of one repeated
//! character, of random bytes (as UTF-8 via lossy conversion), and of a run of one special token's
//! prefix, for N = 10 KB, 100 KB, 1 MB.
//!
//!     cargo run --release --example tokbench -- MODEL.gguf
use chord::model::{Model, ModelOptions};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: tokbench MODEL.gguf");
    let m = Model::load(
        &path,
        &ModelOptions {
            vocab_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let tok = m.tokenizer();
    let mut x = 88172645463325252u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for &n in &[10_000usize, 100_000, 1_000_000] {
        let random: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
        let inputs = [
            ("one character 'a'", "a".repeat(n)),
            ("one character ' '", " ".repeat(n)),
            ("digits", "1".repeat(n)),
            (
                "random bytes",
                String::from_utf8_lossy(&random).into_owned(),
            ),
            ("special prefix '<|im_st'", "<|im_st".repeat(n / 7)),
        ];
        for (name, text) in &inputs {
            let t = Instant::now();
            let ids = tok.encode(text, false, true).unwrap();
            println!(
                "{n:>8} bytes {name:<26} {:>9.1} ms  {} tokens",
                t.elapsed().as_secs_f64() * 1e3,
                ids.len()
            );
        }
    }
}
