//! The f16 KV cache of one layer, in blocks of [`BLOCK`] positions that sessions forked from one
//! another share until one of them writes (copy-on-write).
//!
//! A block holds every key/value head's rows for its positions: keys `[n_head_kv][BLOCK][head_dim]`
//! and values transposed, `[n_head_kv][head_dim][BLOCK]`, the layouts llama.cpp's cache has
//! (see [`super`]) cut into pieces. Blocks are allocated as positions are written, so a cache holds
//! the positions it has seen rounded up to a block, not its whole context. A fork
//! ([`KvBlocks::fork`]) shares the blocks of its prefix (reference counts); the first write into a
//! shared block copies that one block. [`BLOCK`] is a multiple of the attention's summing lanes (8
//! for tinyBLAS, 32 for vec_dot), so the sums carried across blocks add in llama.cpp's order and a
//! fork computes the bits an unforked cache computes.

use super::AttnDims;
use half::f16;
use std::sync::Arc;

/// Positions per block. A fork copies the partly filled block its prompt ends in and holds its own
/// tokens rounded up to a block: 16 keeps that under 24 positions per fork. A multiple of 8 (the
/// sums' lanes); vec_dot's four accumulators cover 32 positions, two blocks, which the kernels
/// carry across ([`super::dot_vec_runs`]).
pub const BLOCK: usize = 16;

/// One block's keys `[n_head_kv][BLOCK][head_dim]` and values `[n_head_kv][head_dim][BLOCK]`.
#[derive(Clone)]
struct Block {
    k: Box<[f16]>,
    v: Box<[f16]>,
}

/// One layer's f16 cache: the blocks of positions `0..blocks.len() * BLOCK`, every one allocated
/// (positions are written in order from 0, so there are no holes).
#[derive(Clone)]
pub struct KvBlocks {
    n_head_kv: usize,
    head_dim: usize,
    n_ctx: usize,
    blocks: Vec<Arc<Block>>,
}

impl KvBlocks {
    /// An empty cache of `n_head_kv` heads of `head_dim` values for up to `n_ctx` positions; it
    /// allocates nothing until written.
    pub fn new(n_head_kv: usize, head_dim: usize, n_ctx: usize) -> KvBlocks {
        KvBlocks {
            n_head_kv,
            head_dim,
            n_ctx,
            blocks: Vec::new(),
        }
    }

    /// Key/value heads.
    pub fn n_head_kv(&self) -> usize {
        self.n_head_kv
    }

    /// Values per head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Elements of one block's keys (and of its values).
    fn block_len(&self) -> usize {
        self.n_head_kv * BLOCK * self.head_dim
    }

    /// The block of positions `b * BLOCK..`, writable: allocated (zeroed) when new, copied first
    /// when shared with a fork.
    fn block_mut(&mut self, b: usize) -> &mut Block {
        while self.blocks.len() <= b {
            let n = self.block_len();
            self.blocks.push(Arc::new(Block {
                k: vec![f16::ZERO; n].into(),
                v: vec![f16::ZERO; n].into(),
            }));
        }
        Arc::make_mut(&mut self.blocks[b])
    }

    /// Writes `k` and `v` (`[t][n_head_kv][head_dim]` f32) at positions `pos..pos + t`, rounded to
    /// f16 (round to nearest even, as ggml's `cpy`/`set_rows` do).
    pub fn store(&mut self, pos: usize, k: &[f32], v: &[f32]) {
        let (hk, d) = (self.n_head_kv, self.head_dim);
        let t = k.len() / (hk * d);
        assert!(pos + t <= self.n_ctx && v.len() == k.len());
        for i in 0..t {
            let p = pos + i;
            let (o, blk) = (p % BLOCK, self.block_mut(p / BLOCK));
            for h in 0..hk {
                let src = (i * hk + h) * d;
                let dst = (h * BLOCK + o) * d;
                for (o, x) in blk.k[dst..dst + d].iter_mut().zip(&k[src..src + d]) {
                    *o = f16::from_f32(*x);
                }
                for (c, x) in v[src..src + d].iter().enumerate() {
                    blk.v[(h * d + c) * BLOCK + o] = f16::from_f32(*x);
                }
            }
        }
    }

    /// The key of head `h` at position `j`.
    pub fn key(&self, h: usize, j: usize) -> &[f16] {
        let d = self.head_dim;
        &self.blocks[j / BLOCK].k[(h * BLOCK + j % BLOCK) * d..][..d]
    }

    /// The keys of head `h` at positions `j0..j1` as consecutive runs `(first position, rows)`,
    /// one per block.
    pub fn keys(&self, h: usize, j0: usize, j1: usize) -> impl Iterator<Item = (usize, &[f16])> {
        let d = self.head_dim;
        spans(j0, j1).map(move |(a, b)| {
            let blk = &self.blocks[a / BLOCK];
            (
                a,
                &blk.k[(h * BLOCK + a % BLOCK) * d..(h * BLOCK + (b - 1) % BLOCK + 1) * d],
            )
        })
    }

    /// The values of head `h` at positions `p0..p1`, read by channel ([`ValueRows::runs`]),
    /// cut at the end of the last block (the caller's padding past it, whose weights are zeros,
    /// is not read). Positions past the last written one, up to the end of its block, read as
    /// what the block holds there (zeros, or what a rolled-back or forked-from context wrote).
    pub fn value_rows(&self, h: usize, p0: usize, p1: usize) -> ValueRows<'_> {
        let n = BLOCK * self.head_dim;
        let p1 = p1.min(self.blocks.len() * BLOCK);
        let slabs = if p0 < p1 {
            self.blocks[p0 / BLOCK..p1.div_ceil(BLOCK)]
                .iter()
                .map(|b| &b.v[h * n..][..n])
                .collect()
        } else {
            Vec::new()
        };
        ValueRows { slabs, p0, p1 }
    }

    /// A cache holding this one's positions `0..n`, sharing their blocks with it.
    pub fn fork(&self, n: usize) -> KvBlocks {
        let n = n.min(self.n_ctx);
        KvBlocks {
            blocks: self.blocks[..n.div_ceil(BLOCK).min(self.blocks.len())].to_vec(),
            ..*self
        }
    }

    /// Drops the blocks wholly past position `n` (a shorter context keeps its memory otherwise).
    pub fn truncate(&mut self, n: usize) {
        self.blocks.truncate(n.div_ceil(BLOCK));
    }

    /// Bytes of the blocks this cache holds, each shared block counted as its share (its bytes
    /// divided by the caches holding it), so that the figures of caches sharing blocks add up to
    /// the memory they hold together.
    pub fn bytes_held(&self) -> f64 {
        let per = (2 * self.block_len() * std::mem::size_of::<f16>()) as f64;
        self.blocks
            .iter()
            .map(|b| per / Arc::strong_count(b) as f64)
            .sum()
    }

    /// The keys and values of positions `0..n` as little-endian f16 bytes, each `[n_head_kv][n]
    /// [head_dim]` (the backend-neutral layout of [`crate::backend::KvRows`]).
    pub fn export(&self, n: usize) -> (Vec<u8>, Vec<u8>) {
        let (h, d) = (self.n_head_kv, self.head_dim);
        let mut k = Vec::with_capacity(h * n * d * 2);
        let mut v = Vec::with_capacity(h * n * d * 2);
        for hh in 0..h {
            for (_, rows) in self.keys(hh, 0, n) {
                for x in rows {
                    k.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
            for p in 0..n {
                let blk = &self.blocks[p / BLOCK];
                for c in 0..d {
                    let x = blk.v[(hh * d + c) * BLOCK + p % BLOCK];
                    v.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
        }
        (k, v)
    }

    /// Replaces the contents with positions `0..n` from bytes in [`KvBlocks::export`]'s layout;
    /// false (and nothing changed) when their sizes do not fit.
    pub fn import(&mut self, n: usize, k: &[u8], v: &[u8]) -> bool {
        let (h, d) = (self.n_head_kv, self.head_dim);
        if n > self.n_ctx || k.len() != h * n * d * 2 || v.len() != k.len() {
            return false;
        }
        let half =
            |b: &[u8], i: usize| f16::from_bits(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]));
        self.blocks.clear();
        for p in 0..n {
            let blk = self.block_mut(p / BLOCK);
            let o = p % BLOCK;
            for hh in 0..h {
                for c in 0..d {
                    let i = (hh * n + p) * d + c;
                    blk.k[(hh * BLOCK + o) * d + c] = half(k, i);
                    blk.v[(hh * d + c) * BLOCK + o] = half(v, i);
                }
            }
        }
        true
    }

    /// The dimensions the attention kernels take, for `n_head` query heads.
    pub fn dims(&self, n_head: usize) -> AttnDims {
        AttnDims {
            n_head,
            n_head_kv: self.n_head_kv,
            head_dim: self.head_dim,
            n_ctx: self.n_ctx,
        }
    }
}

/// One head's values at positions `p0..p1`: per block its `[head_dim][BLOCK]` slab.
pub struct ValueRows<'a> {
    slabs: Vec<&'a [f16]>,
    p0: usize,
    p1: usize,
}

impl<'a> ValueRows<'a> {
    /// Per block its `[head_dim][BLOCK]` slab, when the positions are whole blocks (channel `c`
    /// of a slab is `slab[c * BLOCK..][..BLOCK]`).
    pub fn whole_blocks(&self) -> Option<&[&'a [f16]]> {
        let whole = self.p0.is_multiple_of(BLOCK) && self.p1.is_multiple_of(BLOCK);
        whole.then_some(&self.slabs[..])
    }

    /// Channel `c` at the positions as consecutive runs, one per block.
    pub fn runs(&self, c: usize) -> impl Iterator<Item = &[f16]> {
        let b0 = self.p0 / BLOCK;
        self.slabs.iter().enumerate().map(move |(i, s)| {
            let at = (b0 + i) * BLOCK;
            let a = self.p0.max(at) - at;
            let e = self.p1.min(at + BLOCK) - at;
            &s[c * BLOCK + a..c * BLOCK + e]
        })
    }
}

/// `a..b` cut at multiples of [`BLOCK`]: the non-empty runs `(start, end)` in order.
fn spans(a: usize, b: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut at = a;
    std::iter::from_fn(move || {
        if at >= b {
            return None;
        }
        let end = ((at / BLOCK + 1) * BLOCK).min(b);
        let run = (at, end);
        at = end;
        Some(run)
    })
}
