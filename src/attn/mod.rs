//! Causal multi-head attention over an f16 KV cache, computed the way llama.cpp's CPU backend
//! computes it when flash attention is off, so that chord's logits match llama.cpp's bit for bit.
//!
//! What llama.cpp does there (`build_attn_mha`, `ggml_compute_forward_mul_mat`, `soft_max`):
//! * K is cached as f16 rows `[n_head_kv][n_ctx][head_dim]`, V as f16 transposed
//!   `[n_head_kv][head_dim][n_ctx]`; the number of cache cells it attends over (`n_kv`) is padded
//!   to a multiple of 256, the cells past the query's position masked with `-inf`.
//! * `kq = K·Q`: Q is rounded to f16 first. With two or more tokens the product runs in llamafile's
//!   `tinyBLAS` (one 8-lane FMA accumulator per output, then `hsum`); with one token in
//!   `ggml_vec_dot_f16` (four 8-lane FMA accumulators over blocks of 32, `GGML_F32x8_REDUCE`).
//! * softmax per row: `x * scale + mask`, max, `ggml_v_expf(x - max)` in blocks of 8 whose sums
//!   are added in f64, then every value times `(float)(1.0 / sum)`.
//! * `kqv = V·softmax`: the probabilities are rounded to f16, then the same two kernels as `kq`
//!   (tinyBLAS over the cells for two or more tokens, `ggml_vec_dot_f16` for one).
//!
//! [`attention`] reproduces that: the cells past the query's position contribute exact zeros, so
//! padding to 8 (tinyBLAS) or 32 (vec_dot) cells gives the same sums as llama.cpp's 256. The AVX2
//! path and the portable path compute the same values (the portable one writes every SIMD lane out
//! with the same fused multiply-adds). Work is split over heads and blocks of 16 tokens on the
//! team. In a prefill the queries of a block are computed together (`head_block`): each chunk of
//! keys and values is widened from f16 once for the whole block and the products take two queries
//! at a time, every output still one multiply-add chain in llama.cpp's order.

mod kv;
mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(test)]
mod tests;

pub use kv::{KvBlocks, ValueRows, BLOCK};

use crate::quant::Isa;
use half::f16;
use parking_lot::Mutex;

/// Shapes of one layer's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnDims {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (query head `h` reads key/value head `h / (n_head / n_head_kv)`).
    pub n_head_kv: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Cache capacity in positions.
    pub n_ctx: usize,
}

/// How raw scores `K·q` become the softmax's input, as llama.cpp's `build_attn_mha` does with
/// flash attention off: optionally soft-capped (`cap * tanh(s / cap)`, Gemma 2), then scaled by
/// `scale` inside the softmax, the keys outside a sliding window masked with `-inf`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Multiplies each (capped) score in the softmax (`kq_scale`).
    pub scale: f32,
    /// The soft cap of the scores, when the architecture has one.
    pub softcap: Option<f32>,
    /// A query at position p sees keys at positions `p - window + 1 ..= p` only (llama.cpp's
    /// `LLAMA_SWA_TYPE_STANDARD`: masked when `p - p_key >= window`); `None` sees all of `0..=p`.
    pub window: Option<usize>,
}

impl Scores {
    /// Plain causal attention with scores scaled by `scale`.
    pub fn scaled(scale: f32) -> Scores {
        Scores {
            scale,
            softcap: None,
            window: None,
        }
    }

    /// The first key position a query at `pos` sees.
    pub fn first_key(&self, pos: usize) -> usize {
        self.window.map_or(0, |w| (pos + 1).saturating_sub(w))
    }

    /// Turns the raw scores `s` of keys `0..s.len()` of a query at `pos` into softmax inputs in
    /// place and returns their maximum: ggml's `scale` + `tanh` + `scale` for the cap, then the
    /// softmax's `x * scale + mask` (the mask adds 0 or `-inf`).
    fn finish(&self, s: &mut [f32], pos: usize) -> f32 {
        let lo = self.first_key(pos).min(s.len());
        s[..lo].fill(f32::NEG_INFINITY);
        if let Some(cap) = self.softcap {
            // Only the keys in the window: the others are masked (and may not have been computed).
            let inv = 1.0 / cap;
            for s in &mut s[lo..] {
                *s = (*s * inv).tanh() * cap;
            }
        }
        let mut max = f32::NEG_INFINITY;
        for s in &mut s[lo..] {
            *s *= self.scale;
            max = if max > *s { max } else { *s };
        }
        max
    }
}

/// Tokens per parallel task of a prefill.
const TOKEN_BLOCK: usize = 16;

/// Attention of the queries `q` (`[t][n_head][head_dim]` f32, at positions `pos0..pos0+t`) over
/// the cached keys and values of positions up to each query's own, causal, with scores as
/// `scores` says. Returns `[t][n_head * head_dim]`. Runs on the current team
/// ([`crate::team::for_each`]).
pub fn attention(
    isa: Isa,
    dims: &AttnDims,
    q: &[f32],
    kv: &KvBlocks,
    pos0: usize,
    scores: &Scores,
) -> Vec<f32> {
    attention_by(isa, dims, q, kv, pos0, scores, true, true)
}

/// [`attention`], with the prefill's blocks of queries computed together ([`head_block`]) or,
/// when `blocked` is false, one query at a time ([`head_row`]); with the keys and values before a
/// window skipped, or when `skip` is false computed and masked (the tests compare each pair).
#[allow(clippy::too_many_arguments)]
fn attention_by(
    isa: Isa,
    dims: &AttnDims,
    q: &[f32],
    kv: &KvBlocks,
    pos0: usize,
    sc: &Scores,
    blocked: bool,
    skip: bool,
) -> Vec<f32> {
    let (nh, d) = (dims.n_head, dims.head_dim);
    let t = q.len() / (nh * d);
    assert!(pos0 + t <= dims.n_ctx && dims.n_head_kv == kv.n_head_kv() && d == kv.head_dim());
    let blocks = t.div_ceil(TOKEN_BLOCK);
    let slots: Vec<Mutex<Vec<f32>>> = (0..nh * blocks).map(|_| Mutex::new(Vec::new())).collect();
    crate::team::for_each(nh * blocks, &|task| {
        let (h, b) = (task / blocks, task % blocks);
        let i0 = b * TOKEN_BLOCK;
        let i1 = (i0 + TOKEN_BLOCK).min(t);
        let mut out = vec![0f32; (i1 - i0) * d];
        // tinyBLAS (two or more tokens) needs head_dim % 8 == 0 for kq, else llama.cpp takes
        // vec_dot there (`head_row`).
        if blocked && t >= 2 && d.is_multiple_of(8) {
            let qs = |r: usize| &q[((i0 + r) * nh + h) * d..][..d];
            let block = Block {
                h,
                pos: pos0 + i0,
                n: i1 - i0,
                sc,
                skip,
            };
            head_block(isa, dims, &block, qs, kv, &mut out);
        } else {
            let mut w = Scratch::new(pos0 + i1, d);
            for i in i0..i1 {
                let qi = &q[(i * nh + h) * d..][..d];
                let o = &mut out[(i - i0) * d..][..d];
                head_row(isa, dims, h, qi, kv, pos0 + i, t >= 2, sc, skip, &mut w, o);
            }
        }
        *slots[task].lock() = out;
    });
    let mut out = vec![0f32; t * nh * d];
    for (task, part) in slots.into_iter().enumerate() {
        let (h, i0) = (task / blocks, task % blocks * TOKEN_BLOCK);
        for (r, row) in part.into_inner().chunks_exact(d).enumerate() {
            out[((i0 + r) * nh + h) * d..][..d].copy_from_slice(row);
        }
    }
    out
}

/// Keys, and positions of the values, converted to f32 at a time in [`head_block`].
const CHUNK: usize = 64;

/// A block of consecutive queries of one head.
struct Block<'s> {
    /// Query head.
    h: usize,
    /// Position of the first query.
    pos: usize,
    /// Queries.
    n: usize,
    /// How scores become softmax inputs.
    sc: &'s Scores,
    /// Whether what lies before the window is skipped rather than computed and masked.
    skip: bool,
}

/// The queries of `b` (`q(r)`: query r, at position `b.pos + r`), each as [`head_row`] computes it
/// for two or more tokens (tinyBLAS for kq and kqv), into `out` (`[b.n][head_dim]`), with the
/// work shared: each chunk of keys and of value positions is converted from f16 once for all the
/// queries, and the products run two queries at a time ([`scores`], [`pv`]). Every output is
/// still one 8-lane multiply-add chain in llama.cpp's order, so the values are the same bits.
fn head_block<'q>(
    isa: Isa,
    dims: &AttnDims,
    b: &Block<'_>,
    q: impl Fn(usize) -> &'q [f32],
    kv: &KvBlocks,
    out: &mut [f32],
) {
    let d = dims.head_dim;
    let kvh = b.h / (dims.n_head / dims.n_head_kv);
    // Keys of the last query; a row of scores (and of probabilities) per query, padded to 8.
    let n_max = b.pos + b.n;
    let stride = n_max.div_ceil(8) * 8;
    // The queries rounded to f16, as llama.cpp's product takes them.
    let mut qf = vec![0f32; b.n * d];
    let mut h16 = vec![f16::ZERO; stride.max(d)];
    for (r, row) in qf.chunks_exact_mut(d).enumerate() {
        narrow(isa, q(r), &mut h16[..d]);
        widen(isa, &h16[..d], row);
    }
    let mut sc = vec![0f32; b.n * stride];
    let mut kf = vec![0f32; CHUNK * d];
    // Chunks wholly before every query's window score -inf whatever their products (`finish`
    // masks them): they are not computed, and their probabilities stay the zeros they start as.
    let lo = |pos: usize| if b.skip { b.sc.first_key(pos) } else { 0 };
    let first = lo(b.pos) / CHUNK * CHUNK;
    for j0 in (first..n_max).step_by(CHUNK) {
        let nk = CHUNK.min(n_max - j0);
        for (a, rows) in kv.keys(kvh, j0, j0 + nk) {
            widen(isa, rows, &mut kf[(a - j0) * d..][..rows.len()]);
        }
        scores(isa, &kf[..nk * d], &qf, d, &mut sc[j0..], stride);
    }
    // softmax per query, as in `head_row`; the probabilities rounded to f16 (and zero past each
    // query's last multiple of 8).
    let mut pf = vec![0f32; b.n * stride];
    let mut probs = vec![0f32; stride];
    let mut steps = vec![0usize; b.n];
    for r in 0..b.n {
        let n = b.pos + r + 1;
        let n8 = n.div_ceil(8) * 8;
        let s = &mut sc[r * stride..][..n8];
        let max = b.sc.finish(&mut s[..n], b.pos + r);
        s[n..].fill(f32::NEG_INFINITY);
        // Groups of 8 before the window are all exact zeros: their sums add nothing.
        let lo8 = lo(b.pos + r) / 8 * 8;
        let sum = softmax_exp(isa, &s[lo8..], &mut probs[lo8..n8], max);
        let inv = (1.0 / sum) as f32;
        for p in &mut probs[lo8..n8] {
            *p *= inv;
        }
        narrow(isa, &probs[lo8..n8], &mut h16[lo8..n8]);
        widen(isa, &h16[lo8..n8], &mut pf[r * stride + lo8..][..n8 - lo8]);
        steps[r] = n8 / 8;
    }
    // kqv: one 8-lane accumulator per query and channel, carried across chunks of positions.
    let mut acc = vec![[0f32; 8]; b.n * d];
    let mut vf = vec![0f32; d * CHUNK];
    // A chunk of positions whose probabilities are zero for every query leaves the accumulators
    // as they are (fma(0, v, acc) == acc, and +0 stays +0), so those before `first` are skipped.
    for l0 in (first..stride).step_by(CHUNK) {
        let np = CHUNK.min(stride - l0);
        let rows = kv.value_rows(kvh, l0, l0 + np);
        for c in 0..d {
            let mut at = c * np;
            for run in rows.runs(c) {
                widen(isa, run, &mut vf[at..][..run.len()]);
                at += run.len();
            }
        }
        // Each query's groups of 8 that fall in this chunk.
        let now: Vec<usize> = steps
            .iter()
            .map(|&s| s.saturating_sub(l0 / 8).min(np / 8))
            .collect();
        let ps: Vec<&[f32]> = (0..b.n).map(|r| &pf[r * stride + l0..][..np]).collect();
        pv(isa, &vf[..d * np], np, &ps, &now, &mut acc);
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = scalar::hsum(a);
    }
}

/// Buffers of one task, sized for positions `0..n`.
struct Scratch {
    q16: Vec<f16>,
    scores: Vec<f32>,
    probs: Vec<f32>,
    p16: Vec<f16>,
}

impl Scratch {
    fn new(n: usize, d: usize) -> Scratch {
        let n32 = n.div_ceil(32) * 32;
        Scratch {
            q16: vec![f16::ZERO; d],
            scores: vec![0.0; n32],
            probs: vec![0.0; n32],
            p16: vec![f16::ZERO; n32],
        }
    }
}

/// One query row of head `h` at position `pos`: `out = V · softmax(scale · K · q)`.
#[allow(clippy::too_many_arguments)]
fn head_row(
    isa: Isa,
    dims: &AttnDims,
    h: usize,
    q: &[f32],
    kv: &KvBlocks,
    pos: usize,
    gemm: bool,
    sc: &Scores,
    skip: bool,
    w: &mut Scratch,
    out: &mut [f32],
) {
    let d = dims.head_dim;
    let kvh = h / (dims.n_head / dims.n_head_kv);
    let n = pos + 1;
    let n8 = n.div_ceil(8) * 8;
    let n32 = n.div_ceil(32) * 32;
    narrow(isa, q, &mut w.q16[..d]);
    let key = |j: usize| kv.key(kvh, j);
    // kq: tinyBLAS needs head_dim % 8 == 0 (k % KN), else llama.cpp falls back to vec_dot.
    let kq_gemm = gemm && d.is_multiple_of(8);
    // Keys before the window score -inf whatever their products: not computed.
    let lo = if skip { sc.first_key(pos) } else { 0 };
    let mut j = lo;
    if kq_gemm {
        while j + 4 <= n {
            let s = dot_gemm4(isa, [key(j), key(j + 1), key(j + 2), key(j + 3)], &w.q16);
            w.scores[j..j + 4].copy_from_slice(&s);
            j += 4;
        }
    }
    for j in j..n {
        w.scores[j] = if kq_gemm {
            dot_gemm(isa, key(j), &w.q16)
        } else {
            dot_vec(isa, key(j), &w.q16)
        };
    }
    // softmax (ggml_compute_forward_soft_max_f32): scale, mask, max, exp, f64 sum, normalise.
    let max = sc.finish(&mut w.scores[..n], pos);
    w.scores[n..n8].fill(f32::NEG_INFINITY);
    // Probabilities before the window are exact zeros: groups of them add nothing to the sums
    // (fma(0, v, acc) == acc, and +0 stays +0), so the sums start at the group holding `lo`, a
    // multiple of their lane count (8 for tinyBLAS, 32 for vec_dot) so that every position keeps
    // its lane.
    let (lo8, lo32) = (lo / 8 * 8, lo / 32 * 32);
    let sum = softmax_exp(isa, &w.scores[lo8..n8], &mut w.probs[lo8..n8], max);
    let inv = (1.0 / sum) as f32;
    for p in &mut w.probs[lo8..n8] {
        *p *= inv;
    }
    narrow(isa, &w.probs[lo8..n8], &mut w.p16[lo8..n8]);
    w.p16[lo32..lo8].fill(f16::ZERO);
    w.p16[n8..n32].fill(f16::ZERO);
    // kqv: tinyBLAS needs head_dim % 4 == 0 (m % 4) and n_kv % 8 == 0 (always: n_kv % 256 == 0).
    // The value rows are read in runs of one cache block each, the sums carried across runs.
    if gemm && d.is_multiple_of(4) {
        let p = &w.p16[lo8..n8];
        let vrows = kv.value_rows(kvh, lo8, n8);
        for c in (0..d).step_by(4) {
            let mut rows = [0, 1, 2, 3].map(|i| vrows.runs(c + i));
            let runs = std::iter::from_fn(|| {
                let [a, b, c, d] = &mut rows;
                Some([a.next()?, b.next()?, c.next()?, d.next()?])
            });
            out[c..c + 4].copy_from_slice(&dot_gemm4_runs(isa, runs, p));
        }
    } else {
        // Past the last block the probabilities are zeros, which add nothing (fma(0, v, acc) ==
        // acc: an accumulator starting at +0 never becomes -0), so those are not read.
        let vrows = kv.value_rows(kvh, lo32, n32);
        let y = &w.p16[lo32..n32];
        let mut c = 0;
        if let Some(slabs) = vrows.whole_blocks() {
            while c + 2 <= d {
                out[c..c + 2].copy_from_slice(&dot_vec_blocks2(isa, slabs, c * BLOCK, y));
                c += 2;
            }
        }
        for (c, o) in out.iter_mut().enumerate().skip(c) {
            *o = dot_vec_runs(isa, vrows.runs(c), y);
        }
    }
}

/// [`scalar::dot_vec`] on the path `isa` selects.
fn dot_vec(isa: Isa, x: &[f16], y: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::dot_vec(x, y) };
    }
    let _ = isa;
    scalar::dot_vec(x, y)
}

/// [`scalar::dot_gemm`] on the path `isa` selects.
fn dot_gemm(isa: Isa, x: &[f16], y: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::dot_gemm(x, y) };
    }
    let _ = isa;
    scalar::dot_gemm(x, y)
}

/// Four [`dot_gemm`]s of rows `xs` with `y`.
fn dot_gemm4(isa: Isa, xs: [&[f16]; 4], y: &[f16]) -> [f32; 4] {
    dot_gemm4_runs(isa, std::iter::once(xs), y)
}

/// Four [`dot_gemm`]s of rows with `y`, the rows given as consecutive runs (each a multiple of 8
/// long) whose products go on one accumulator each.
fn dot_gemm4_runs<'a>(isa: Isa, runs: impl Iterator<Item = [&'a [f16]; 4]>, y: &[f16]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::dot_gemm4_runs(runs, y) };
    }
    let _ = isa;
    scalar::dot_gemm4_runs(runs, y)
}

/// [`dot_vec`] of a row given as consecutive runs (each a multiple of 16 long) with `y` (at least
/// as long as all runs, a multiple of 32; the rest of `y` is not read): the four accumulators
/// carried across runs, as over one row (element `i` goes to accumulator `i / 8 % 4`).
fn dot_vec_runs<'a>(isa: Isa, runs: impl Iterator<Item = &'a [f16]>, y: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::dot_vec_runs(runs, y) };
    }
    let _ = isa;
    scalar::dot_vec_runs(runs, y)
}

/// [`dot_vec_runs`] of channels `c` and `c + 1` over whole cache blocks: their runs are
/// `slabs[i][off..off + BLOCK]` and `slabs[i][off + BLOCK..off + 2 * BLOCK]` (`off = c * BLOCK`).
fn dot_vec_blocks2(isa: Isa, slabs: &[&[f16]], off: usize, y: &[f16]) -> [f32; 2] {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::dot_vec_blocks2(slabs, off, y) };
    }
    [0, BLOCK].map(|o| {
        let runs = slabs.iter().map(|s| &s[off + o..off + o + BLOCK]);
        dot_vec_runs(isa, runs, y)
    })
}

/// `dst[i] = src[i]` widened from f16 (the lengths are equal).
fn widen(isa: Isa, src: &[f16], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::widen(src, dst) };
    }
    let _ = isa;
    half::slice::HalfFloatSliceExt::convert_to_f32_slice(src, dst)
}

/// `dst[i] = src[i]` rounded to f16, to nearest even (the lengths are equal).
fn narrow(isa: Isa, src: &[f32], dst: &mut [f16]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::narrow(src, dst) };
    }
    let _ = isa;
    half::slice::HalfFloatSliceExt::convert_from_f32_slice(dst, src)
}

/// Scores of the queries `qs` (rows of `d`) against the keys `ks` (rows of `d`), each one
/// tinyBLAS chain ([`scalar::dot8`]): `out[r * stride + j]` for query r and key j.
fn scores(isa: Isa, ks: &[f32], qs: &[f32], d: usize, out: &mut [f32], stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::scores(ks, qs, d, out, stride) };
    }
    let _ = isa;
    scalar::scores(ks, qs, d, out, stride)
}

/// Adds to `acc[r * d + c]` (query r's 8-lane accumulator of channel c) the first `steps[r]`
/// groups of 8 of `ps[r]` times value row c (`vf[c * np..][..np]`), in order.
fn pv(isa: Isa, vf: &[f32], np: usize, ps: &[&[f32]], steps: &[usize], acc: &mut [[f32; 8]]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::pv(vf, np, ps, steps, acc) };
    }
    let _ = isa;
    scalar::pv(vf, np, ps, steps, acc)
}

/// `y = silu(x) * g` as llama.cpp's `ggml_vec_swiglu_f32` computes it ([`scalar::swiglu`]), on
/// the path `isa` selects. The feed-forward's SwiGLU lives here because it shares `ggml_v_expf`
/// with the softmax.
pub fn swiglu(isa: Isa, x: &[f32], g: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::swiglu(x, g, y) };
    }
    let _ = isa;
    scalar::swiglu(x, g, y)
}

/// The feed-forward network's gated activation: `act(gate) * up` (llama.cpp's `build_ffn` with
/// `LLM_FFN_PAR`); architectures name theirs ([`crate::model::Arch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glu {
    /// SiLU (SwiGLU: llama, Qwen, Phi-3).
    Silu,
    /// GELU, tanh approximation (GeGLU: Gemma).
    Gelu,
}

/// `y = act(x) * g` for `kind` ([`swiglu`] or [`geglu`]) on the path `isa` selects.
pub fn glu(isa: Isa, kind: Glu, x: &[f32], g: &[f32], y: &mut [f32]) {
    match kind {
        Glu::Silu => swiglu(isa, x, g, y),
        Glu::Gelu => geglu(x, g, y),
    }
}

/// `y = gelu(x) * g` as llama.cpp's `ggml_vec_geglu_f32` computes it ([`scalar::geglu`]: a
/// lookup in ggml's f16 table, the same on every path).
pub fn geglu(x: &[f32], g: &[f32], y: &mut [f32]) {
    scalar::geglu(x, g, y)
}

/// How RoPE pairs the values of a head (llama.cpp's `rope_type`); architectures name theirs
/// ([`crate::model::Arch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent values `(2i, 2i + 1)` (`LLAMA_ROPE_TYPE_NORM`: llama, Mistral).
    Normal,
    /// Values `i` and `i + rope_dim / 2` (`LLAMA_ROPE_TYPE_NEOX`: Qwen, Gemma, Phi-3).
    Neox,
}

/// RoPE on one row of heads of `dim` values ([`scalar::rope_row`]) on the path `isa` selects.
/// It lives here with the other arithmetic written after llama.cpp's CPU kernels.
pub fn rope_row(
    isa: Isa,
    row: &mut [f32],
    dim: usize,
    rope_dim: usize,
    mode: RopeMode,
    cos: &[f32],
    sin: &[f32],
) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::rope_row(row, dim, rope_dim, mode, cos, sin) };
    }
    let _ = isa;
    scalar::rope_row(row, dim, rope_dim, mode, cos, sin)
}

/// [`scalar::softmax_exp`] on the path `isa` selects.
fn softmax_exp(isa: Isa, x: &[f32], y: &mut [f32], max: f32) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 is only made after detecting AVX2, FMA and F16C.
        return unsafe { avx2::softmax_exp(x, y, max) };
    }
    let _ = isa;
    scalar::softmax_exp(x, y, max)
}
