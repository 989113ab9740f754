//! VNNI batch products with one weight row per i32 lane, sixteen weight rows to a 512-bit vector:
//! [`super::avx2::rows8`]'s repacked Q4_0 and Q4_K and tiled Q6_K products with many activation
//! rows. The weights are unpacked by the AVX2 code, eight rows at a time, and the two halves joined;
//! each lane's four byte products are then added to its i32 sum by one `vpdpbusd`, where AVX2 sums
//! pairs as i16 and widens them, and the float steps are the AVX2 kernels' lane for lane. A last
//! group of eight rows goes through the AVX2 kernel. (Measured on an Intel Xeon with AVX-512 VNNI:
//! a 256-bit `vpdpbusd` costs about what `vpmaddubsw` + `vpaddw` cost, a 512-bit one little more,
//! so the gain is the width.)

use crate::quant::act::{Q8KRow, Q8Row};
use crate::quant::avx2::rows8::{
    k4_lanes, k4_lanes_packed, k4_packed_d, k6_lanes, pair_sums, prefetch_rows, q40_unpack,
    q4_0_x8m_at, q4_k_x8m_at, q4_k_x8m_packed_at, q6_k_x8m_at, scales_by_block, K4Lanes, KRow,
    Rows8,
};
use crate::quant::blocks::{self, QK, QK_K};
use crate::quant::out::Out;
use std::arch::x86_64::*;

/// Two halves as one vector: rows 0-7 in the low lanes, 8-15 in the high ones.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// [`join`] for floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn join_ps(lo: __m256, hi: __m256) -> __m512 {
    _mm512_castsi512_ps(join(_mm256_castps_si256(lo), _mm256_castps_si256(hi)))
}

/// The four bytes at `q[at..at + 4]` in every i32 lane (folded into `vpdpbusd` as a broadcast).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn bcast4<const N: usize>(q: &[i8; N], at: usize) -> __m512i {
    let b = &q[at..at + 4];
    _mm512_set1_epi32(i32::from_le_bytes([
        b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8,
    ]))
}

/// Stores `v` to row `i`, columns `c..c + 16` of `out`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn store16(out: &mut Out, i: usize, c: usize, v: __m512) {
    let s = &mut out.row(i)[c..c + 16];
    // SAFETY: `s` holds exactly 16 floats; the store is unaligned.
    unsafe { _mm512_storeu_ps(s.as_mut_ptr().cast(), v) }
}

/// The loops of the batch products: for each group of sixteen weight rows of `w` (rows of `rb`
/// bytes, `nb` blocks or chunks of blocks each) and each block, `unpack` the two halves once, then every activation
/// row through `rows4` four at a time and `rows1` for the rest, into accumulators that start at
/// `zero`; `result` turns each into the sixteen outputs of row i, columns `16g..16g + 16` of `out`.
/// Returns the number of rows done (the rest, fewer than sixteen, are the caller's).
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn x16m<L, Acc: Copy>(
    (w, rb, nb, packed): (&[u8], usize, usize, bool),
    m: usize,
    out: &mut Out,
    zero: Acc,
    unpack: impl Fn(Rows8, Rows8, usize) -> L,
    rows4: impl Fn(&L, usize, usize, &mut [Acc]),
    rows1: impl Fn(&L, usize, usize, &mut [Acc]),
    result: impl Fn(Acc) -> __m512,
) -> usize {
    let mut accs = vec![zero; m];
    let m4 = m / 4 * 4;
    let groups = w.len() / (16 * rb);
    for (grp, w) in w.chunks_exact(16 * rb).enumerate() {
        let (lo, hi) = (Rows8::new(w, rb), Rows8::new(&w[8 * rb..], rb));
        accs.fill(zero);
        let bs = rb / nb;
        for b in 0..nb {
            if b + 2 < nb {
                // Measured: 4 and 8 TinyLlama-shape Q4_K_M sessions decode 11% and 20% faster.
                if packed {
                    // Each half's block is one run of 8 · bs bytes.
                    prefetch_rows(w, 8 * rb, 2, (b + 2) * 8 * bs..(b + 3) * 8 * bs);
                } else {
                    prefetch_rows(w, rb, 16, (b + 2) * bs..(b + 3) * bs);
                }
            }
            let lanes = unpack(lo, hi, b);
            for i in (0..m4).step_by(4) {
                rows4(&lanes, b, i, &mut accs[i..i + 4]);
            }
            for i in m4..m {
                rows1(&lanes, b, i, &mut accs[i..i + 1]);
            }
        }
        for (i, acc) in accs.iter().enumerate() {
            store16(out, i, 16 * grp, result(*acc));
        }
    }
    groups * 16
}

/// How many Q4_0 blocks [`q4_0_x8m`] unpacks at a time: the activation rows' accumulators stay in
/// registers over a chunk (one block alone is too little work per load and store of them).
const Q40_CHUNK: usize = 8;

/// Q4_0 blocks `b0..b0 + n` of sixteen rows: `q[c][v]`, lane t: values `4v..4v + 4` of block
/// `b0 + c` of row t, in 0..16; lane t of `d[c]`: its scale.
struct Q40x16 {
    q: [[__m512i; 8]; Q40_CHUNK],
    d: [__m512; Q40_CHUNK],
    b0: usize,
    n: usize,
}

/// `R` activation rows (from row `i0` of `a`) times a chunk of sixteen Q4_0 rows: adds each
/// block's `isum · (d_w · d_a)` to `acc[r]` in block order, as the AVX2 kernel's `q40_rows` does
/// lane for lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q40_rows<const R: usize>(
    w: &Q40x16,
    (a, das): (&[Q8Row], &[f32]),
    i0: usize,
    acc: &mut [__m512],
) {
    let m = a.len();
    let mut s = [_mm512_setzero_ps(); R];
    s.copy_from_slice(&acc[..R]);
    for c in 0..w.n {
        let b = w.b0 + c;
        let mut y = [&[0i8; QK]; R];
        for r in 0..R {
            y[r] = a[i0 + r].qs[b * QK..(b + 1) * QK].try_into().unwrap();
        }
        let mut p = [_mm512_setzero_si512(); R];
        for (v, &q) in w.q[c].iter().enumerate() {
            for r in 0..R {
                p[r] = _mm512_dpbusd_epi32(p[r], q, bcast4(y[r], 4 * v));
            }
        }
        for r in 0..R {
            let isum = _mm512_sub_epi32(p[r], _mm512_set1_epi32(8 * a[i0 + r].isum[b]));
            let d = _mm512_mul_ps(w.d[c], _mm512_set1_ps(das[b * m + i0 + r]));
            s[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d, s[r]);
        }
    }
    acc[..R].copy_from_slice(&s);
}

/// Q4_0 rows (a multiple of eight, `rb` bytes each) times every activation row of `a`, bit-identical
/// to [`super::super::avx2::rows8::q4_0_x8m`]: row i, column j of `out` for activation row i and
/// weight row j.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn q4_0_x8m(w: &[u8], rb: usize, a: &[Q8Row], out: &mut Out) {
    let nb = rb / 18;
    let das = scales_by_block(a.iter().map(|r| r.d), nb);
    let unpack = |lo: Rows8, hi: Rows8, chunk: usize| {
        let b0 = chunk * Q40_CHUNK;
        let mut ck = Q40x16 {
            q: [[_mm512_setzero_si512(); 8]; Q40_CHUNK],
            d: [_mm512_setzero_ps(); Q40_CHUNK],
            b0,
            n: Q40_CHUNK.min(nb - b0),
        };
        for c in 0..ck.n {
            let ((ql, dl), (qh, dh)) = (q40_unpack(lo, b0 + c), q40_unpack(hi, b0 + c));
            ck.q[c] = std::array::from_fn(|v| join(ql[v], qh[v]));
            ck.d[c] = join_ps(dl, dh);
        }
        ck
    };
    let done = x16m(
        (w, rb, nb.div_ceil(Q40_CHUNK), false),
        a.len(),
        out,
        _mm512_setzero_ps(),
        unpack,
        |l, _, i, acc| q40_rows::<4>(l, (a, &das), i, acc),
        |l, _, i, acc| q40_rows::<1>(l, (a, &das), i, acc),
        |acc| acc,
    );
    q4_0_x8m_at(&w[done * rb..], rb, a, out, done);
}

/// One Q4_K super-block of sixteen rows, as the AVX2 kernel's `K4Lanes` for eight.
struct K4x16 {
    /// `q[s][g]`, lane t: the four 4-bit values `4g..4g + 4` of sub-block s of row t.
    q: [[__m512i; 8]; 8],
    /// Lane t: sub-block s's scale of row t, as i32.
    sc: [__m512i; 8],
    /// Lane t: the mins of sub-blocks 2j (low i16) and 2j + 1 (high i16) of row t.
    mn: [__m512i; 4],
    /// Lane t: row t's super-block scale and min scale.
    d: __m512,
    dmin: __m512,
}

/// One activation row's super-block `b` of `a[i]`, with its scale from `das`.
#[inline]
fn k_row<'a>(a: &'a [Q8KRow], das: &[f32], b: usize, i: usize) -> KRow<'a> {
    let q: &[i8; QK_K] = a[i].qs[b * QK_K..(b + 1) * QK_K].try_into().unwrap();
    (q, &a[i].bsums[b * 16..b * 16 + 16], das[b * a.len() + i])
}

/// `R` activation rows times super-block `b` of sixteen Q4_K rows: adds to `acc[r]` (sums, mins)
/// what the AVX2 kernel's `k4_lanes_rows` adds lane for lane, each 32-value sub-block's sum formed
/// by `vpdpbusd` and then multiplied by its scale.
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k4_rows<const R: usize>(w: &K4x16, a: [KRow; R], acc: &mut [[__m512; 2]]) {
    let pairs = a.map(|(_, bs, _)| pair_sums(bs));
    let mut isum = [[_mm512_setzero_si512(); 4]; R];
    for j in 0..4 {
        let mut p = [[_mm512_setzero_si512(); 2]; R];
        for g in 0..8 {
            for h in 0..2 {
                let (s, q) = (2 * j + h, w.q[2 * j + h][g]);
                for r in 0..R {
                    p[r][h] = _mm512_dpbusd_epi32(p[r][h], q, bcast4(a[r].0, 32 * s + 4 * g));
                }
            }
        }
        for r in 0..R {
            isum[r][j] = _mm512_add_epi32(
                _mm512_mullo_epi32(p[r][0], w.sc[2 * j]),
                _mm512_mullo_epi32(p[r][1], w.sc[2 * j + 1]),
            );
        }
    }
    for r in 0..R {
        let da = _mm512_set1_ps(a[r].2);
        let (ds, dm) = (_mm512_mul_ps(w.d, da), _mm512_mul_ps(w.dmin, da));
        let [mut s, mut m] = acc[r];
        for j in 0..4 {
            let mins = _mm512_madd_epi16(w.mn[j], _mm512_set1_epi32(pairs[r][j]));
            s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][j]), ds, s);
            m = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins), dm, m);
        }
        acc[r] = [s, m];
    }
}

/// Q4_K rows (a multiple of eight) times every activation row of `a`, bit-identical to
/// [`super::super::avx2::rows8::q4_k_x8m`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn q4_k_x8m(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out) {
    use blocks::q4_k::*;
    const { assert!(DMIN == D + 2) };
    let unpack = |lo: Rows8, hi: Rows8, b: usize| {
        let (l, h) = (k4_lanes(lo, b), k4_lanes(hi, b));
        (l, h, lo.f16_pairs(b * 144 + D), hi.f16_pairs(b * 144 + D))
    };
    let done = q4_k_x16m(w, rb, a, out, unpack, false);
    q4_k_x8m_at(&w[done * rb..], rb, a, out, done);
}

/// [`q4_k_x8m`] on rows in [`Layout::Q4KRows8`](crate::quant::pack::Layout), bit for bit.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn q4_k_x8m_packed(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out) {
    let unpack = |lo: Rows8, hi: Rows8, b: usize| {
        let (l, h) = (k4_lanes_packed(lo, b), k4_lanes_packed(hi, b));
        (l, h, k4_packed_d(lo, b), k4_packed_d(hi, b))
    };
    let done = q4_k_x16m(w, rb, a, out, unpack, true);
    q4_k_x8m_packed_at(&w[done * rb..], rb, a, out, done);
}

/// The sixteen-row loops of [`q4_k_x8m`] and [`q4_k_x8m_packed`]: `unpack` gives each half's
/// lanes and its `(d, dmin)`. Returns the rows done.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4_k_x16m(
    w: &[u8],
    rb: usize,
    a: &[Q8KRow],
    out: &mut Out,
    unpack: impl Fn(Rows8, Rows8, usize) -> (K4Lanes, K4Lanes, (__m256, __m256), (__m256, __m256)),
    packed: bool,
) -> usize {
    let nb = rb / 144;
    let das = scales_by_block(a.iter().map(|r| r.d), nb);
    let unpack = |lo: Rows8, hi: Rows8, b: usize| {
        let (l, h, (dl, ml), (dh, mh)) = unpack(lo, hi, b);
        K4x16 {
            q: std::array::from_fn(|s| std::array::from_fn(|g| join(l.q[s][g], h.q[s][g]))),
            // The AVX2 lanes hold each scale in both i16 halves; scales are below 64.
            sc: std::array::from_fn(|s| _mm512_srli_epi32::<16>(join(l.sc[s], h.sc[s]))),
            mn: std::array::from_fn(|j| join(l.mn[j], h.mn[j])),
            d: join_ps(dl, dh),
            dmin: join_ps(ml, mh),
        }
    };
    let row = |b: usize, i: usize| k_row(a, &das, b, i);
    x16m(
        (w, rb, nb, packed),
        a.len(),
        out,
        [_mm512_setzero_ps(); 2],
        unpack,
        |l, b, i, acc| k4_rows(l, std::array::from_fn::<_, 4, _>(|r| row(b, i + r)), acc),
        |l, b, i, acc| k4_rows(l, [row(b, i)], acc),
        |[acc, acc_m]| _mm512_sub_ps(acc, acc_m),
    )
}

/// One Q6_K super-block of sixteen rows, as the AVX2 kernel's `K6Lanes` for eight.
struct K6x16 {
    /// `q[g][i]`, lane t: the 6-bit values `16g + 4i..16g + 4i + 4` of row t.
    q: [[__m512i; 4]; 16],
    /// Lane t: group g's signed scale of row t, as i32.
    sc: [__m512i; 16],
    /// Lane t: the scales of groups 2p (low i16) and 2p + 1 (high i16) of row t.
    sc2: [__m512i; 8],
    /// Lane t: row t's super-block scale.
    d: __m512,
}

/// `R` activation rows times super-block `b` of sixteen Q6_K rows: adds to `acc[r]` what the AVX2
/// kernel's `k6_lanes_rows` adds lane for lane, each 16-value group's sum formed by `vpdpbusd`
/// (at most 63 · 128 · 16) and then multiplied by its scale.
// Indices name groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k6_rows<const R: usize>(w: &K6x16, a: [KRow; R], acc: &mut [__m512]) {
    let mut isum = [_mm512_setzero_si512(); R];
    for g in (0..16).step_by(2) {
        let mut p = [[_mm512_setzero_si512(); 2]; R];
        for i in 0..4 {
            for h in 0..2 {
                let q = w.q[g + h][i];
                for r in 0..R {
                    let y = bcast4(a[r].0, 16 * (g + h) + 4 * i);
                    p[r][h] = _mm512_dpbusd_epi32(p[r][h], q, y);
                }
            }
        }
        for r in 0..R {
            let s = _mm512_add_epi32(
                _mm512_mullo_epi32(p[r][0], w.sc[g]),
                _mm512_mullo_epi32(p[r][1], w.sc[g + 1]),
            );
            isum[r] = _mm512_add_epi32(isum[r], s);
        }
    }
    for r in 0..R {
        let bs = a[r].1;
        let mut corr = _mm512_setzero_si512();
        for p in 0..8 {
            let pair = (bs[2 * p] as u16 as i32) | (bs[2 * p + 1] as i32) << 16;
            corr = _mm512_add_epi32(corr, _mm512_madd_epi16(w.sc2[p], _mm512_set1_epi32(pair)));
        }
        let s1 = _mm512_sub_epi32(isum[r], _mm512_slli_epi32::<5>(corr));
        let res = _mm512_mul_ps(w.d, _mm512_cvtepi32_ps(s1));
        acc[r] = _mm512_fmadd_ps(res, _mm512_set1_ps(a[r].2), acc[r]);
    }
}

/// Q6_K rows (a multiple of eight) times every activation row of `a`, bit-identical to
/// [`super::super::avx2::rows8::q6_k_x8m`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn q6_k_x8m(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out) {
    let nb = rb / 210;
    let das = scales_by_block(a.iter().map(|r| r.d), nb);
    let unpack = |lo: Rows8, hi: Rows8, b: usize| {
        let (l, h) = (k6_lanes(lo, b), k6_lanes(hi, b));
        K6x16 {
            q: std::array::from_fn(|g| std::array::from_fn(|i| join(l.q[g][i], h.q[g][i]))),
            // The AVX2 lanes hold each signed scale in both i16 halves.
            sc: std::array::from_fn(|g| _mm512_srai_epi32::<16>(join(l.sc[g], h.sc[g]))),
            sc2: std::array::from_fn(|p| join(l.sc2[p], h.sc2[p])),
            d: join_ps(l.d, h.d),
        }
    };
    let row = |b: usize, i: usize| k_row(a, &das, b, i);
    let done = x16m(
        (w, rb, nb, false),
        a.len(),
        out,
        _mm512_setzero_ps(),
        unpack,
        |l, b, i, acc| k6_rows(l, std::array::from_fn::<_, 4, _>(|r| row(b, i + r)), acc),
        |l, b, i, acc| k6_rows(l, [row(b, i)], acc),
        |acc| acc,
    );
    q6_k_x8m_at(&w[done * rb..], rb, a, out, done);
}
