//! Token sampling: logit bias, grammar, penalties, top-k, top-p, min-p and temperature, in
//! llama.cpp's order, seeded and reproducible. Temperature 0 (or below) is greedy. Also the
//! log-probabilities of a step ([`logprobs`]).
//!
//! A [`Sampler`] is the whole chain with its state (random generator, grammar position): the
//! generation loop uses one, and a host that runs its own loop owns one (`chord_sampler_*`),
//! calling [`Sampler::sample`] and [`Sampler::accept`] itself.

use crate::bail;
use crate::error::Result;
use crate::grammar::{Grammar, GrammarState, TokenTrie};
use crate::tokenizer::Tokenizer;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Sampling settings. The defaults are llama.cpp's (`common_params_sampling`).
#[derive(Debug, Clone)]
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
    /// Added to these tokens' logits before anything else (`-inf` bans a token), as llama.cpp's
    /// logit-bias sampler; a token listed twice gets both.
    pub logit_bias: Vec<(u32, f32)>,
    /// Only tokens that continue this grammar are sampled; end-of-generation tokens only where it
    /// is complete.
    pub grammar: Option<Arc<Grammar>>,
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
            logit_bias: Vec::new(),
            grammar: None,
        }
    }
}

/// A sampler: settings plus the random generator's state and, with a grammar, where the text
/// stands in it.
#[derive(Debug)]
pub struct Sampler {
    params: SamplerParams,
    rng: StdRng,
    grammar: Option<GrammarState>,
    /// The candidates, kept between tokens so that no vocabulary-sized buffer is allocated per
    /// token (only filled with every token when top-k keeps them all).
    cand: Vec<(u32, f32)>,
    /// The tokens a grammar allows, when every one is needed (reused).
    allowed: Vec<u32>,
}

/// The candidates' order: descending logit, ties by lower id (a total order: ids are unique).
fn by_logit(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// A candidate in a heap whose top is the worst one kept (see [`by_logit`]).
#[derive(Clone, Copy)]
struct Kept((u32, f32));

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        by_logit(&self.0, &other.0)
    }
}

/// The `k` best candidates of `pen` over `logits` (unordered), through a heap of `k`.
fn top_candidates(pen: &Penalized, logits: &[f32], k: usize, cand: &mut Vec<(u32, f32)>) {
    let mut heap: BinaryHeap<Kept> = BinaryHeap::with_capacity(k + 1);
    // The worst kept logit once the heap is full: a logit below it is out without the full
    // comparison (`<` is false for NaN and for equal values, which take the full one).
    let mut floor = f32::NEG_INFINITY;
    pen.for_each(logits, |c| {
        if c.1 < floor {
            return;
        }
        if heap.len() < k {
            heap.push(Kept(c));
        } else if let Some(mut worst) = heap.peek_mut() {
            if by_logit(&c, &worst.0) == Ordering::Less {
                *worst = Kept(c);
            }
        }
        if heap.len() == k {
            floor = heap.peek().map_or(floor, |w| w.0 .1);
        }
    });
    cand.extend(heap.into_iter().map(|k| k.0));
}

/// What a grammar needs to know of the vocabulary: each token's bytes and whether it ends
/// generation.
pub trait TokenBytes {
    /// Whether the token ends generation.
    fn is_eog(&self, tok: u32) -> bool;
    /// The end-of-generation tokens.
    fn eog_tokens(&self) -> Vec<u32>;
    /// The token's bytes, control tokens rendered as their text.
    fn piece(&self, tok: u32) -> &[u8];
    /// The pieces as a trie, end-of-generation tokens left out.
    fn trie(&self) -> &TokenTrie;
}

impl TokenBytes for Tokenizer {
    fn is_eog(&self, tok: u32) -> bool {
        Tokenizer::is_eog(self, tok)
    }
    fn eog_tokens(&self) -> Vec<u32> {
        Tokenizer::eog_tokens(self)
    }
    fn piece(&self, tok: u32) -> &[u8] {
        self.rendered_piece(tok)
    }
    fn trie(&self) -> &TokenTrie {
        self.token_trie()
    }
}

/// A vocabulary of no tokens, for a sampler without a grammar (which never reads it).
#[derive(Debug, Clone, Copy)]
pub struct NoVocab;

impl TokenBytes for NoVocab {
    fn is_eog(&self, _: u32) -> bool {
        false
    }
    fn eog_tokens(&self) -> Vec<u32> {
        Vec::new()
    }
    fn piece(&self, _: u32) -> &[u8] {
        &[]
    }
    fn trie(&self) -> &TokenTrie {
        static EMPTY: std::sync::OnceLock<TokenTrie> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| TokenTrie::new(0, |_| Vec::new(), |_| true))
    }
}

/// Whether `tok` may come next under the grammar state `g`.
fn allowed(g: &mut GrammarState, vocab: &dyn TokenBytes, tok: u32) -> bool {
    if vocab.is_eog(tok) {
        g.can_end()
    } else {
        g.allows(tok, vocab.piece(tok))
    }
}

impl Sampler {
    /// Creates a sampler seeded with `params.seed`, at the start of its grammar.
    pub fn new(params: SamplerParams) -> Self {
        let rng = StdRng::seed_from_u64(params.seed);
        let grammar = params.grammar.clone().map(GrammarState::new);
        Sampler {
            params,
            rng,
            grammar,
            cand: Vec::new(),
            allowed: Vec::new(),
        }
    }

    /// The settings.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Back to the state of [`Sampler::new`]: the generator reseeded, the grammar at its start.
    pub fn reset(&mut self) {
        self.rng = StdRng::seed_from_u64(self.params.seed);
        self.grammar = self.params.grammar.clone().map(GrammarState::new);
    }

    /// Whether the grammar (if any) is complete: nothing but an end-of-generation token can come.
    pub fn grammar_done(&self) -> bool {
        self.grammar.as_ref().is_some_and(|g| g.is_done())
    }

    /// Picks the next token from `logits`, given the tokens so far (for the penalties); `vocab`
    /// gives the tokens' text for the grammar. Does not advance the grammar: call
    /// [`Sampler::accept`] with the token that is kept.
    ///
    /// The logits are read in place: the bias and penalties change a few of them (kept aside, see
    /// [`Penalized`]), top-k keeps its `k` best in a heap as it scans, and only top-k 0 (keep
    /// every token) fills a vocabulary-sized list, reused from token to token. Under a grammar the
    /// best candidates are checked first, in order, and the whole vocabulary only when too few of
    /// them are allowed.
    ///
    /// Errors: `InvalidToken` for a biased token outside the vocabulary, `Grammar` when no token
    /// continues the grammar.
    pub fn sample(
        &mut self,
        logits: &[f32],
        history: &[u32],
        vocab: &dyn TokenBytes,
    ) -> Result<u32> {
        let p = &self.params;
        if let Some(&(t, _)) = p.logit_bias.iter().find(|b| b.0 as usize >= logits.len()) {
            bail!(
                InvalidToken,
                "logit bias for token {t}, outside the vocabulary ({} tokens)",
                logits.len()
            );
        }
        let pen = Penalized::new(logits, history, p);
        let cand = &mut self.cand;
        cand.clear();
        let n = logits.len();
        let k = if p.temperature <= 0.0 {
            1
        } else if p.top_k == 0 {
            n
        } else {
            p.top_k.min(n)
        };
        match self.grammar.as_mut() {
            None if p.temperature <= 0.0 => return Ok(pen.argmax(logits)),
            None if k < n => top_candidates(&pen, logits, k, cand),
            None => pen.for_each(logits, |c| cand.push(c)),
            Some(g) => {
                // The best few first: when `k` of them are allowed, they are the `k` best allowed
                // tokens (any other allowed token ranks below all of them).
                let mut found = false;
                if k < n {
                    let m = (4 * k).max(64).min(n);
                    top_candidates(&pen, logits, m, cand);
                    cand.sort_unstable_by(by_logit);
                    let mut kept = 0;
                    for i in 0..cand.len() {
                        if kept < k && allowed(g, vocab, cand[i].0) {
                            cand[kept] = cand[i];
                            kept += 1;
                        }
                    }
                    cand.truncate(kept);
                    found = kept == k || m == n;
                }
                if !found {
                    cand.clear();
                    let ids = &mut self.allowed;
                    g.allowed_tokens(vocab.trie(), &|t| vocab.piece(t), ids);
                    if g.can_end() {
                        ids.extend(vocab.eog_tokens());
                    }
                    cand.extend(ids.iter().map(|&t| (t, pen.value(logits, t))));
                    if k < cand.len() {
                        cand.select_nth_unstable_by(k, by_logit);
                        cand.truncate(k);
                    }
                }
                if cand.is_empty() {
                    bail!(
                        Grammar,
                        "no token of the vocabulary continues the grammar here"
                    );
                }
            }
        }
        // Sorted by descending logit (ties by lower id), as each filter below expects.
        cand.sort_unstable_by(by_logit);
        if p.temperature <= 0.0 {
            return Ok(cand[0].0);
        }
        if p.top_p < 1.0 {
            let probs = softmax(cand, 1.0);
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
        let probs = softmax(cand, p.temperature);
        let r: f32 = self.rng.random::<f32>();
        let mut cum = 0.0;
        for (c, pr) in cand.iter().zip(&probs) {
            cum += pr;
            if r < cum {
                return Ok(c.0);
            }
        }
        Ok(cand[cand.len() - 1].0)
    }

    /// Records that `tok` was kept: advances the grammar past it (an end-of-generation token only
    /// where the grammar is complete). A `Grammar` error for a token the grammar does not allow,
    /// with the state unchanged.
    pub fn accept(&mut self, tok: u32, vocab: &dyn TokenBytes) -> Result<()> {
        let Some(g) = self.grammar.as_mut() else {
            return Ok(());
        };
        if vocab.is_eog(tok) {
            if !g.can_end() {
                bail!(
                    Grammar,
                    "end-of-generation token {tok} before the grammar is complete"
                );
            }
            return Ok(());
        }
        g.accept(tok, vocab.piece(tok))
    }
}

/// The log-probabilities of one step: the chosen token's and the `n` most likely tokens', from
/// the model's logits (before bias, penalties, grammar and temperature), as llama.cpp reports
/// `n_probs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logprobs {
    /// The chosen token's log-probability.
    pub chosen: f32,
    /// The most likely tokens with their log-probabilities, most likely first (ties by lower id).
    pub top: Vec<(u32, f32)>,
}

/// [`Logprobs`] of `chosen` and the `n` most likely tokens: log-softmax over every logit, summed
/// in f64.
pub fn logprobs(logits: &[f32], chosen: u32, n: usize) -> Logprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let log_z = max as f64 + sum.ln();
    let lp = |l: f32| (l as f64 - log_z) as f32;
    let mut top = Vec::new();
    if n > 0 {
        top_candidates(&Penalized::default(), logits, n.min(logits.len()), &mut top);
        top.sort_unstable_by(by_logit);
        for c in &mut top {
            c.1 = lp(c.1);
        }
    }
    Logprobs {
        chosen: logits
            .get(chosen as usize)
            .map_or(f32::NEG_INFINITY, |&l| lp(l)),
        top,
    }
}

/// Index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    Penalized::default().argmax(logits)
}

fn softmax(cand: &[(u32, f32)], temp: f32) -> Vec<f32> {
    let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = cand.iter().map(|c| ((c.1 - max) / temp).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// The logits the penalties change, by ascending token id, with their new values: the rest of the
/// vocabulary is read from the model's logits as it is.
#[derive(Debug, Default)]
struct Penalized(Vec<(u32, f32)>);

impl Penalized {
    /// The logits of the biased tokens, and the penalized logits of the tokens in the last
    /// `penalty_last_n` of `history` (after their bias, as llama.cpp's chain applies them).
    fn new(logits: &[f32], history: &[u32], p: &SamplerParams) -> Self {
        let mut biased: HashMap<u32, f32> = HashMap::new();
        for &(tok, b) in &p.logit_bias {
            if let Some(&l) = logits.get(tok as usize) {
                *biased.entry(tok).or_insert(l) += b;
            }
        }
        let off =
            p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0;
        if !off && p.penalty_last_n > 0 {
            let recent = &history[history.len().saturating_sub(p.penalty_last_n)..];
            let mut counts: HashMap<u32, u32> = HashMap::new();
            for &t in recent {
                *counts.entry(t).or_default() += 1;
            }
            for (tok, n) in counts {
                let Some(&raw) = logits.get(tok as usize) else {
                    continue;
                };
                let l = biased.entry(tok).or_insert(raw);
                if *l <= 0.0 {
                    *l *= p.repeat_penalty;
                } else {
                    *l /= p.repeat_penalty;
                }
                *l -= n as f32 * p.frequency_penalty + p.presence_penalty;
            }
        }
        let mut out: Vec<(u32, f32)> = biased.into_iter().collect();
        out.sort_unstable_by_key(|c| c.0);
        Penalized(out)
    }

    /// The logit of `tok`, penalized where a penalty applies.
    fn value(&self, logits: &[f32], tok: u32) -> f32 {
        match self.0.binary_search_by_key(&tok, |c| c.0) {
            Ok(i) => self.0[i].1,
            Err(_) => logits[tok as usize],
        }
    }

    /// Calls `f` with every `(id, logit)` in id order, penalized where a penalty applies.
    #[inline]
    fn for_each(&self, logits: &[f32], mut f: impl FnMut((u32, f32))) {
        let mut start = 0;
        for &(tok, l) in &self.0 {
            let t = tok as usize;
            for (i, &v) in logits[start..t].iter().enumerate() {
                f(((start + i) as u32, v));
            }
            f((tok, l));
            start = t + 1;
        }
        for (i, &v) in logits[start..].iter().enumerate() {
            f(((start + i) as u32, v));
        }
    }

    /// The index of the largest logit after the penalties (the lowest index among equals; a NaN
    /// never wins, unless it is the first logit).
    ///
    /// Two passes that vectorize: the largest value, sixteen lanes at a time, then the first
    /// logit equal to it. (A running "best so far" is a chain of dependent selects and ran at a
    /// third of the speed.)
    fn argmax(&self, logits: &[f32]) -> u32 {
        let Some(&l0) = logits.first() else {
            return 0;
        };
        let first = match self.0.first() {
            Some(&(0, l)) => l,
            _ => l0,
        };
        if first.is_nan() {
            return 0;
        }
        let bigger = |m: f32, v: f32| if v > m { v } else { m };
        let mut max = first;
        self.for_segments(logits, |seg| {
            let mut lanes = [f32::NEG_INFINITY; 16];
            let chunks = seg.chunks_exact(16);
            for &v in chunks.remainder() {
                lanes[0] = bigger(lanes[0], v);
            }
            for c in chunks {
                for (l, &v) in lanes.iter_mut().zip(c) {
                    *l = bigger(*l, v);
                }
            }
            max = lanes.iter().fold(max, |m, &v| bigger(m, v));
        });
        for &(_, l) in &self.0 {
            max = bigger(max, l);
        }
        let mut found = None;
        let mut at = 0;
        for &(tok, l) in &self.0 {
            let t = tok as usize;
            if let Some(i) = logits[at..t].iter().position(|&v| v == max) {
                found = Some(at + i);
                break;
            }
            if l == max {
                found = Some(t);
                break;
            }
            at = t + 1;
        }
        let found = found.or_else(|| logits[at..].iter().position(|&v| v == max).map(|i| at + i));
        found.unwrap_or(0) as u32
    }

    /// Calls `f` with each stretch of logits between penalized tokens.
    fn for_segments(&self, logits: &[f32], mut f: impl FnMut(&[f32])) {
        let mut start = 0;
        for &(tok, _) in &self.0 {
            f(&logits[start..tok as usize]);
            start = tok as usize + 1;
        }
        f(&logits[start..]);
    }
}

/// A vocabulary of byte strings, for tests.
#[cfg(test)]
pub(crate) struct TestVocab(
    pub Vec<Vec<u8>>,
    pub Option<u32>,
    std::sync::OnceLock<TokenTrie>,
);

#[cfg(test)]
impl TestVocab {
    pub(crate) fn new(pieces: Vec<Vec<u8>>, eog: Option<u32>) -> Self {
        TestVocab(pieces, eog, std::sync::OnceLock::new())
    }
}

#[cfg(test)]
impl TokenBytes for TestVocab {
    fn is_eog(&self, tok: u32) -> bool {
        self.1 == Some(tok)
    }
    fn eog_tokens(&self) -> Vec<u32> {
        self.1.into_iter().collect()
    }
    fn piece(&self, tok: u32) -> &[u8] {
        self.0.get(tok as usize).map_or(&[], |p| p)
    }
    fn trie(&self) -> &TokenTrie {
        self.2.get_or_init(|| {
            TokenTrie::new(
                self.0.len() as u32,
                |t| self.0[t as usize].clone(),
                |t| self.1 == Some(t),
            )
        })
    }
}

#[cfg(test)]
const NONE: NoVocab = NoVocab;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_argmax() {
        let mut s = Sampler::new(SamplerParams {
            temperature: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0], &[], &NONE).unwrap(), 1);
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
            (0..50)
                .map(|_| s.sample(&logits, &[], &NONE).unwrap())
                .collect::<Vec<_>>()
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
        assert_eq!(s.sample(&[1.0, 2.0, 1.9], &[], &NONE).unwrap(), 1);
        let mut s = Sampler::new(SamplerParams {
            temperature: 0.0,
            repeat_penalty: 2.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[1.0, 2.0, 1.9], &[1], &NONE).unwrap(), 2);
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
            assert_eq!(s.sample(&logits, &[], &NONE).unwrap(), 0);
            let mut s = Sampler::new(SamplerParams {
                temperature: 1.0,
                top_k: 0,
                min_p: 0.0,
                top_p: 0.5,
                seed,
                ..Default::default()
            });
            assert_eq!(s.sample(&logits, &[], &NONE).unwrap(), 0);
        }
    }
}

/// The sampler against a plain implementation of the same steps over copies of the vocabulary (what
/// `sample` did before it read the logits in place): the same token for every setting and seed.
#[cfg(test)]
mod same_as_copying {
    use super::*;

    /// Penalties on a copy of the logits, then every candidate sorted and filtered.
    fn reference(p: &SamplerParams, rng: &mut StdRng, logits: &[f32], history: &[u32]) -> u32 {
        reference_where(p, rng, logits, history, &|_| true)
    }

    /// [`reference`] over the tokens that `allowed` keeps (a grammar's mask, applied first).
    fn reference_where(
        p: &SamplerParams,
        rng: &mut StdRng,
        logits: &[f32],
        history: &[u32],
        allowed: &dyn Fn(u32) -> bool,
    ) -> u32 {
        let mut logits = logits.to_vec();
        let pen = Penalized::new(&logits, history, p);
        for &(t, l) in &pen.0 {
            logits[t as usize] = l;
        }
        let mut cand: Vec<(u32, f32)> = (0..logits.len() as u32)
            .zip(logits.iter().copied())
            .filter(|c| allowed(c.0))
            .collect();
        if p.temperature <= 0.0 {
            let mut best = cand[0];
            for &c in &cand {
                if c.1 > best.1 {
                    best = c;
                }
            }
            return best.0;
        }
        cand.sort_by(by_logit);
        if p.top_k > 0 {
            cand.truncate(p.top_k);
        }
        if p.top_p < 1.0 {
            let probs = softmax(&cand, 1.0);
            let mut cum = 0.0;
            let keep = probs
                .iter()
                .position(|pr| {
                    cum += pr;
                    cum >= p.top_p
                })
                .map_or(cand.len(), |i| i + 1);
            cand.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            let min_logit = cand[0].1 + p.min_p.ln();
            let keep = cand.iter().take_while(|c| c.1 >= min_logit).count();
            cand.truncate(keep.max(1));
        }
        let probs = softmax(&cand, p.temperature);
        let r: f32 = rng.random::<f32>();
        let mut cum = 0.0;
        for (c, pr) in cand.iter().zip(&probs) {
            cum += pr;
            if r < cum {
                return c.0;
            }
        }
        cand[cand.len() - 1].0
    }

    #[test]
    fn greedy_equals_the_running_maximum_with_nans_and_signed_zeros() {
        let mut p = SamplerParams {
            temperature: 0.0,
            ..Default::default()
        };
        let cases: [&[f32]; 6] = [
            &[f32::NAN, 5.0, 7.0],
            &[1.0, f32::NAN, 7.0, 7.0, f32::NAN],
            &[-0.0, 0.0, -1.0],
            &[-1.0, 0.0, -0.0, 0.0],
            &[f32::NEG_INFINITY, f32::NEG_INFINITY],
            &[3.0; 40],
        ];
        for logits in cases {
            let mut long = logits.to_vec();
            long.extend(std::iter::repeat_n(-9.0, 33));
            for (l, history) in [(logits, &[][..]), (&long[..], &[1u32, 2, 2][..])] {
                for penalty in [1.0, 1.5] {
                    p.repeat_penalty = penalty;
                    let mut rng = StdRng::seed_from_u64(0);
                    assert_eq!(
                        Sampler::new(p.clone()).sample(l, history, &NONE).unwrap(),
                        reference(&p, &mut rng, l, history),
                        "{l:?} penalty {penalty}"
                    );
                }
            }
        }
    }

    #[test]
    fn tokens_equal_the_copying_sampler() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in [1usize, 2, 5, 40, 41, 1000] {
            // Coarse logits: many ties, which the id order must break the same way.
            let logits: Vec<f32> = (0..n).map(|_| (next() % 64) as f32 * 0.25 - 8.0).collect();
            let history: Vec<u32> = (0..70).map(|_| (next() % (n as u64 + 3)) as u32).collect();
            for (top_k, top_p, min_p, temperature) in [
                (40, 0.95, 0.05, 0.8),
                (0, 1.0, 0.0, 1.0),
                (1, 1.0, 0.0, 1.0),
                (3, 0.5, 0.0, 2.0),
                (0, 0.9, 0.2, 0.5),
                (40, 0.95, 0.05, 0.0),
            ] {
                for (repeat_penalty, frequency_penalty, presence_penalty) in
                    [(1.0, 0.0, 0.0), (1.3, 0.1, 0.2)]
                {
                    let p = SamplerParams {
                        temperature,
                        top_k,
                        top_p,
                        min_p,
                        repeat_penalty,
                        frequency_penalty,
                        presence_penalty,
                        seed: next(),
                        ..Default::default()
                    };
                    let mut s = Sampler::new(p.clone());
                    let mut rng = StdRng::seed_from_u64(p.seed);
                    for step in 0..20 {
                        let h = &history[..step * 3];
                        assert_eq!(
                            s.sample(&logits, h, &NONE).unwrap(),
                            reference(&p, &mut rng, &logits, h),
                            "n={n} {p:?} step {step}"
                        );
                    }
                }
            }
        }
    }

    /// Under a grammar, with bias and penalties: the same tokens as masking every disallowed
    /// token first and sampling the rest as without a grammar, whether the best few candidates
    /// hold enough allowed tokens or the whole vocabulary has to be checked.
    #[test]
    fn grammar_tokens_equal_masking_first() {
        let mut seed = 0x51f1_5eed_1234_5678u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Digits, letters, punctuation, multi-byte characters and pieces of them.
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for c in "0123456789abcxyz.,-+ \"".chars() {
            pieces.push(c.to_string().into_bytes());
        }
        for w in [
            "12", "3.", ".5", "ab", "a1", "9x", "-1", "é", "€", " 1", "00", "7.25",
        ] {
            pieces.push(w.as_bytes().to_vec());
        }
        pieces.extend([vec![0xC3], vec![0xA9], vec![0xE2, 0x82], vec![0xAC]]);
        let eog = pieces.len() as u32;
        pieces.push(b"</s>".to_vec());
        for _ in 0..300 {
            pieces.push(b"zz".to_vec());
        }
        let vocab = TestVocab::new(pieces, Some(eog));
        let g = Arc::new(
            Grammar::new(
                "root ::= \"-\"? [0-9]+ (\".\" [0-9]{1,3})? (\" \" [a-z]+)?",
                "root",
                None,
            )
            .unwrap(),
        );
        let n = vocab.0.len();
        for (top_k, top_p, min_p, temperature) in [
            (40, 0.95, 0.05, 0.8),
            (0, 1.0, 0.0, 1.0),
            (1, 1.0, 0.0, 1.0),
            (3, 0.5, 0.0, 2.0),
            (5, 1.0, 0.0, 1.5),
            (40, 0.95, 0.05, 0.0),
        ] {
            for case in 0..8 {
                let p = SamplerParams {
                    temperature,
                    top_k,
                    top_p,
                    min_p,
                    repeat_penalty: if case % 2 == 0 { 1.0 } else { 1.3 },
                    logit_bias: vec![(3, 2.0), (eog, -1.0), (0, f32::NEG_INFINITY)],
                    seed: next(),
                    grammar: Some(g.clone()),
                    ..Default::default()
                };
                let mut s = Sampler::new(p.clone());
                let mut rng = StdRng::seed_from_u64(p.seed);
                let mut mirror = GrammarState::new(g.clone());
                let mut history = Vec::new();
                for step in 0..12 {
                    // Logits that favour the "zz" tokens, which the grammar never allows.
                    let logits: Vec<f32> = (0..n)
                        .map(|t| {
                            (next() % 64) as f32 * 0.25 - 8.0
                                + if t > eog as usize { 6.0 } else { 0.0 }
                        })
                        .collect();
                    let want = {
                        let m = std::cell::RefCell::new(mirror.clone());
                        let allowed = |t: u32| {
                            let mut m = m.borrow_mut();
                            if t == eog {
                                m.can_end()
                            } else {
                                m.allows(t, vocab.piece(t))
                            }
                        };
                        reference_where(&p, &mut rng, &logits, &history, &allowed)
                    };
                    let got = s.sample(&logits, &history, &vocab).unwrap();
                    assert_eq!(got, want, "{p:?} step {step}");
                    if got == eog {
                        break;
                    }
                    s.accept(got, &vocab).unwrap();
                    mirror.accept(got, vocab.piece(got)).unwrap();
                    history.push(got);
                }
            }
        }
    }
}
