//! Token sampling: penalties, top-k, top-p, min-p and temperature, in llama.cpp's default order,
//! seeded and reproducible. Temperature 0 (or below) is greedy.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;

/// Sampling settings. The defaults are llama.cpp's (`common_params_sampling`).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerParams {
    /// Softmax temperature; `<= 0` selects the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p`; 1 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 keeps all.
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recent tokens by this; 1 is off.
    pub repeat_penalty: f32,
    /// Subtract `frequency_penalty * count` from recent tokens' logits; 0 is off.
    pub frequency_penalty: f32,
    /// Subtract `presence_penalty` from logits of tokens seen recently; 0 is off.
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at; 0 disables penalties.
    pub penalty_last_n: usize,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

/// A sampler: settings plus the random generator's state.
#[derive(Debug)]
pub struct Sampler {
    params: SamplerParams,
    rng: StdRng,
}

impl Sampler {
    /// Creates a sampler seeded with `params.seed`.
    pub fn new(params: SamplerParams) -> Self {
        let rng = StdRng::seed_from_u64(params.seed);
        Sampler { params, rng }
    }

    /// The settings.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Picks the next token from `logits`, given the tokens so far (for the penalties).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let p = &self.params;
        let mut logits = logits.to_vec();
        apply_penalties(&mut logits, history, p);
        if p.temperature <= 0.0 {
            return argmax(&logits);
        }
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .collect();
        // Sorted by descending logit (ties by lower id), as each filter below expects.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < cand.len() {
            cand.select_nth_unstable_by(p.top_k - 1, by_logit);
            cand.truncate(p.top_k);
        }
        cand.sort_unstable_by(by_logit);
        if p.top_p < 1.0 {
            let probs = softmax(&cand, 1.0);
            let mut cum = 0.0;
            let mut keep = cand.len();
            for (i, pr) in probs.iter().enumerate() {
                cum += pr;
                if cum >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            let max = cand[0].1;
            let min_logit = max + p.min_p.ln();
            let keep = cand.iter().take_while(|c| c.1 >= min_logit).count();
            cand.truncate(keep.max(1));
        }
        let probs = softmax(&cand, p.temperature);
        let r: f32 = self.rng.random::<f32>();
        let mut cum = 0.0;
        for (c, pr) in cand.iter().zip(&probs) {
            cum += pr;
            if r < cum {
                return c.0;
            }
        }
        cand[cand.len() - 1].0
    }
}

/// Index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn softmax(cand: &[(u32, f32)], temp: f32) -> Vec<f32> {
    let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = cand.iter().map(|c| ((c.1 - max) / temp).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

fn apply_penalties(logits: &mut [f32], history: &[u32], p: &SamplerParams) {
    let off = p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0;
    if off || p.penalty_last_n == 0 {
        return;
    }
    let recent = &history[history.len().saturating_sub(p.penalty_last_n)..];
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for &t in recent {
        *counts.entry(t).or_default() += 1;
    }
    for (&tok, &n) in &counts {
        let Some(l) = logits.get_mut(tok as usize) else {
            continue;
        };
        if *l <= 0.0 {
            *l *= p.repeat_penalty;
        } else {
            *l /= p.repeat_penalty;
        }
        *l -= n as f32 * p.frequency_penalty + p.presence_penalty;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_argmax() {
        let mut s = Sampler::new(SamplerParams {
            temperature: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0], &[]), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let params = SamplerParams {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 7,
            ..Default::default()
        };
        let run = |p: &SamplerParams| {
            let mut s = Sampler::new(p.clone());
            (0..50).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(&params), run(&params));
        assert_ne!(
            run(&params),
            run(&SamplerParams {
                seed: 8,
                ..params.clone()
            })
        );
    }

    #[test]
    fn top_k_one_is_greedy_and_penalty_changes_choice() {
        let mut s = Sampler::new(SamplerParams {
            top_k: 1,
            ..Default::default()
        });
        assert_eq!(s.sample(&[1.0, 2.0, 1.9], &[]), 1);
        let mut s = Sampler::new(SamplerParams {
            temperature: 0.0,
            repeat_penalty: 2.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[1.0, 2.0, 1.9], &[1]), 2);
    }

    #[test]
    fn min_p_and_top_p_restrict_candidates() {
        let logits = [10.0, 0.0, 0.0, 0.0];
        for seed in 0..20 {
            let mut s = Sampler::new(SamplerParams {
                temperature: 1.0,
                min_p: 0.1,
                seed,
                ..Default::default()
            });
            assert_eq!(s.sample(&logits, &[]), 0);
            let mut s = Sampler::new(SamplerParams {
                temperature: 1.0,
                top_k: 0,
                min_p: 0.0,
                top_p: 0.5,
                seed,
                ..Default::default()
            });
            assert_eq!(s.sample(&logits, &[]), 0);
        }
    }
}
