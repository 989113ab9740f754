//! Sampler benchmark: the time of one `Sampler::sample` call (what decode adds per token after the
//! logits) at the vocabulary sizes of the families chord runs, with llama.cpp's default settings
//! (top-k 40, top-p 0.95, min-p 0.05, temperature 0.8), with every token kept (top-k 0, top-p 1,
//! min-p 0), and greedy; each with a repeat penalty over the last 64 tokens.
//!
//! ```text
//! cargo run --release --example sbench
//! ```
//!
//! Logits are a seeded random draw (a sum of uniforms, roughly normal with a spread of a few
//! units, as real logits); the chosen tokens are summed so the work cannot be skipped.

use chord::session::{NoVocab, Sampler, SamplerParams};
use std::time::Instant;

fn main() {
    let vocabs = [
        ("SmolLM2", 49_152usize),
        ("Llama 3", 128_256),
        ("Qwen 2.5", 151_936),
        ("Gemma 3", 262_144),
    ];
    let settings = [
        ("defaults", SamplerParams::default()),
        (
            "keep all",
            SamplerParams {
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                ..Default::default()
            },
        ),
        (
            "greedy",
            SamplerParams {
                temperature: 0.0,
                ..Default::default()
            },
        ),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    println!(
        "{:10} {:>8} {:>10} {:>12}",
        "vocab", "size", "settings", "us/token"
    );
    for (name, n) in vocabs {
        let logits: Vec<f32> = (0..n)
            .map(|_| (0..4).map(|_| uniform()).sum::<f32>() * 6.0 - 12.0)
            .collect();
        let history: Vec<u32> = (0..64).map(|i| (i * 7919 % n) as u32).collect();
        for (label, params) in &settings {
            let params = SamplerParams {
                repeat_penalty: 1.1,
                ..params.clone()
            };
            let mut s = Sampler::new(params);
            let calls = 200;
            let mut best = f64::MAX;
            let mut check = 0u64;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..calls {
                    check += s.sample(&logits, &history, &NoVocab).unwrap() as u64;
                }
                best = best.min(t.elapsed().as_secs_f64() / calls as f64);
            }
            println!(
                "{name:10} {n:>8} {label:>10} {:>12.1}   (check {check})",
                best * 1e6
            );
        }
    }
}
