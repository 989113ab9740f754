//! Products eight weight rows at a time, with one row per lane: the repacked Q4_0 and Q4_K
//! products as `ggml_gemv/gemm_q4_0_8x8_q8_0` and `ggml_gemv/gemm_q4_K_8x8_q8_K` compute them
//! (`ggml/src/ggml-cpu/arch/x86/repack.cpp`), and the tiled Q6_K product of batches.
//!
//! Each lane does exactly the float steps of the one-row kernels in [`super::orders`] (same
//! values, same order of fused multiply-adds), so the results are bit-identical to them; running
//! eight rows in the lanes of one accumulator replaces a chain of scalar multiply-adds per row,
//! whose latency bounded the one-row kernels. `w` holds eight consecutive rows of `rb` bytes, in
//! GGUF layout, or for the `_packed` Q4_K kernels in [`Layout::Q4KRows8`](crate::quant::Layout)
//! (made at load: the same bytes, already in lanes).
//!
//! The batch products (`x8m`) also take their exact integer sums one row per i32 lane: the eight
//! rows' bytes of a block are transposed once, in groups of four values, for all activation rows,
//! and each `vpmaddubsw` then multiplies four values of every row by the same four activation
//! bytes (broadcast), so that no horizontal sum is needed. The GGUF-layout gemv (`x8`) keeps
//! per-row integer sums: with one activation row, the transposition costs more than the sums it
//! saves (measured: decode 22 -> 15 tok/s on the TinyLlama-shape Q4_K_M file); on packed rows,
//! which need none, the gemv takes lanes too (decode 20.4 -> 23.4 tok/s there).

use super::*;
use crate::quant::act::{Q8KRow, Q8Row};
use crate::quant::blocks::{self, QK, QK_K};
use crate::quant::out::Out;
use crate::quant::pack::{Q4K_D, Q4K_DMIN, Q4K_GROUP, Q4K_MN, Q4K_SC};

/// Eight f16 (as bits) to eight f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16x8(bits: [u16; 8]) -> __m256 {
    // SAFETY: `bits` is 8 u16 (16 bytes); the load is unaligned.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bits.as_ptr() as *const __m128i) })
}

/// The f16 at byte `off` of each of eight blocks, as f32 (lane t: block t).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn f16s_of<const N: usize>(blk: &[&[u8; N]; 8], off: usize) -> __m256 {
    if off + 4 <= N {
        return f16_pairs_of(blk, off).0;
    }
    f16x8(std::array::from_fn(|t| {
        u16::from_le_bytes([blk[t][off], blk[t][off + 1]])
    }))
}

/// The f16s at bytes `off` and `off + 2` of each of eight blocks (a scale and a min), as f32
/// (lane t: block t). One 32-bit load per block and two shuffles: built from sixteen 16-bit
/// values, LLVM inserted each into a register of its own and spilled them, about 40 operations
/// per block in the Q4_1 gemv against 8 rows' 72 of arithmetic.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn f16_pairs_of<const N: usize>(
    blk: &[&[u8; N]; 8],
    off: usize,
) -> (__m256, __m256) {
    let w: [i32; 8] = std::array::from_fn(|t| {
        let b = &blk[t][off..off + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    });
    let v = _mm256_setr_epi32(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
    // Per 128-bit lane (four blocks): the first f16s in the low 8 bytes, the second in the high.
    let split = _mm256_setr_epi8(
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7,
        10, 11, 14, 15,
    );
    let p = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(v, split));
    (
        _mm256_cvtph_ps(_mm256_castsi256_si128(p)),
        _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(p)),
    )
}

/// The sums of the lanes of each of eight vectors: lane t of the result is the sum of `v[t]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32_8x8(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256(h0123, h4567, 0x20),
        _mm256_permute2x128_si256(h0123, h4567, 0x31),
    )
}

/// Transposes eight rows of four i32 into four vectors of eight: lane t of `out[j]` is `m[t][j]`
/// ([`transpose_8x8`] on the rows widened; the unused upper halves are never computed).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn transpose_8x4(m: &[__m128i; 8]) -> [__m256i; 4] {
    let t = transpose_8x8(&m.map(|v| _mm256_castsi128_si256(v)));
    [t[0], t[1], t[2], t[3]]
}

/// Eight consecutive rows of `rb` bytes. Reading the same block of each row costs one bounds
/// check for all eight (the offset against `rb`) instead of one per row: with eight checks per
/// block, the gemv kernels spent about as long checking as multiplying.
#[derive(Clone, Copy)]
pub(in crate::quant) struct Rows8<'a> {
    w: &'a [u8],
    rb: usize,
}

impl<'a> Rows8<'a> {
    /// The first eight rows of `rb` bytes of `w`.
    ///
    /// # Panics
    /// When `w` is shorter than eight rows.
    #[inline]
    pub(in crate::quant) fn new(w: &'a [u8], rb: usize) -> Self {
        assert!(w.len() >= 8 * rb, "eight rows of {rb} bytes");
        Rows8 { w, rb }
    }

    /// Bytes `off..off + N` of row `t`.
    ///
    /// # Panics
    /// When `t >= 8` or the bytes run past the row.
    #[inline(always)]
    pub(in crate::quant) fn at<const N: usize>(self, t: usize, off: usize) -> &'a [u8; N] {
        self.block::<N>(off)[t]
    }

    /// Bytes `off..off + N` of each of the eight rows: one bounds check for all of them.
    ///
    /// # Panics
    /// When the bytes run past the row.
    #[inline(always)]
    pub(in crate::quant) fn block<const N: usize>(self, off: usize) -> [&'a [u8; N]; 8] {
        // A message without arguments: formatting ones made every block store them for the panic.
        assert!(
            N <= self.rb && off <= self.rb - N,
            "bytes past the end of a row"
        );
        // SAFETY: row t < 8 is bytes t*rb..(t+1)*rb of `w`, which holds 8*rb (checked by `new`),
        // and off + N <= rb; [u8; N] has alignment 1.
        std::array::from_fn(|t| unsafe {
            &*self.w.as_ptr().add(t * self.rb + off).cast::<[u8; N]>()
        })
    }

    /// Packed super-block `ib` of `N` bytes: bytes `ib · N..(ib + 1) · N` of the eight rows'
    /// bytes taken as one run (a layout of [`crate::quant::pack`]).
    ///
    /// # Panics
    /// When the bytes run past the eight rows.
    #[inline(always)]
    pub(in crate::quant) fn packed<const N: usize>(self, ib: usize) -> &'a [u8; N] {
        self.w[ib * N..(ib + 1) * N].try_into().unwrap()
    }

    /// The f16 at byte `off` of each row, as f32 (lane t: row t).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::quant) fn f16s(self, off: usize) -> __m256 {
        if off + 4 <= self.rb {
            return f16_pairs_of(&self.block::<4>(off), 0).0;
        }
        f16s_of(&self.block::<2>(off), 0)
    }

    /// The f16s at bytes `off` and `off + 2` of each row, as f32 ([`f16_pairs_of`]).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::quant) fn f16_pairs(self, off: usize) -> (__m256, __m256) {
        f16_pairs_of(&self.block::<4>(off), 0)
    }
}

/// Asks for the `len` bytes at `at` of the eight rows that follow these in memory (the next group
/// of the caller's rows, usually) to be brought into cache: called once per block with `at`
/// advancing by `len`, it fetches the next group while this one computes. Reading eight rows
/// side by side defeats the hardware prefetchers, which follow one stream per page.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn prefetch_next(w: &[u8], rb: usize, at: usize, len: usize) {
    let p = w.as_ptr().wrapping_add(8 * rb + at);
    let mut o = 0;
    while o < len {
        // A prefetch is a hint: it never faults, whatever the address.
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(o) as *const i8);
        o += 64;
    }
}

/// Eight Q4_0 blocks (one per row, at byte `off` of each) as signed bytes `qx` and their absolute
/// values `ax`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_decode8(blk: &[&[u8; 18]; 8]) -> ([__m256i; 8], [__m256i; 8]) {
    use blocks::q4_0::*;
    let m8 = _mm256_set1_epi8(8);
    let qx: [__m256i; 8] =
        std::array::from_fn(|t| _mm256_sub_epi8(bytes_from_nibbles_32(blk[t], QS), m8));
    let ax = std::array::from_fn(|t| _mm256_sign_epi8(qx[t], qx[t]));
    (qx, ax)
}

/// The exact integer dot products of eight decoded Q4_0 blocks with 32 Q8 values `qy`, lane t
/// for row t.
///
/// The byte products are summed as i16 by a tree of horizontal adds, without widening to i32
/// until the end: that halves the multiplies (`vpmaddwd` runs on the same port as `vpmaddubsw` on
/// several x86 cores). No sum overflows: a block's products add up to at most 32 · 8 · 127 =
/// 32512 in magnitude (|q| ≤ 8, |y| ≤ 127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_isums(qx: &[__m256i; 8], ax: &[__m256i; 8], qy: __m256i) -> __m256i {
    let p: [__m256i; 8] =
        std::array::from_fn(|t| _mm256_maddubs_epi16(ax[t], _mm256_sign_epi8(qy, qx[t])));
    let h01 = _mm256_hadd_epi16(p[0], p[1]);
    let h23 = _mm256_hadd_epi16(p[2], p[3]);
    let h45 = _mm256_hadd_epi16(p[4], p[5]);
    let h67 = _mm256_hadd_epi16(p[6], p[7]);
    // Each 128-bit half: the eight rows' sums over that half of the block, in row order.
    let h = _mm256_hadd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_hadd_epi16(h45, h67));
    let s = _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm256_cvtepi16_epi32(s)
}

/// The accumulators' lanes as arrays.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store<const R: usize>(acc: [__m256; R]) -> [[f32; 8]; R] {
    let mut out = [[0.0f32; 8]; R];
    for (o, v) in out.iter_mut().zip(acc) {
        // SAFETY: `o` holds 8 floats; the store is unaligned.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
    }
    out
}

/// Eight Q4_0 rows (`rb` bytes each, consecutive in `w`) times one Q8_0 row as
/// `ggml_gemv_q4_0_8x8_q8_0` computes them, bit-identical to [`super::orders::dot_q4_0_r8`] on
/// each row: per block, the exact integer sum, then `acc = fma(isum, d_w · d_a, acc)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0_x8(w: &[u8], rb: usize, a: Q8Row) -> [f32; 8] {
    use blocks::q4_0::*;
    let rows = Rows8::new(w, rb);
    let mut acc = _mm256_setzero_ps();
    for i in 0..rb / 18 {
        let off = i * 18;
        prefetch_next(w, rb, off * 8, 144);
        let blk = rows.block::<18>(off);
        let (qx, ax) = q4_0_decode8(&blk);
        let isum = q4_0_isums(&qx, &ax, load32_i8(a.qs, i * QK));
        let d = _mm256_mul_ps(f16s_of(&blk, D), _mm256_set1_ps(a.d[i]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
    }
    store([acc])[0]
}

/// Stores `v` to row `i`, columns `c..c + 8` of `out`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn store8(out: &mut Out, i: usize, c: usize, v: __m256) {
    let s = &mut out.row(i)[c..c + 8];
    // SAFETY: `s` holds exactly 8 floats; the store is unaligned.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr().cast(), v) }
}

/// Q4_0 blocks unpacked per [`Q40_CHUNK`] for [`q4_0_x8m`]: `q[c][v]`, lane t: values
/// `4v..4v + 4` of block c of row t, in 0..16.
const Q40_CHUNK: usize = 8;

/// A chunk of unpacked Q4_0 blocks of eight rows, for [`q40_rows`].
pub(in crate::quant) struct Q40Chunk<'a> {
    /// `q[c][v]`, lane t: values `4v..4v + 4` of block `b0 + c` of row t, in 0..16.
    pub(in crate::quant) q: &'a [[__m256i; 8]],
    /// Lane t: the scale of block `b0 + c` of row t.
    pub(in crate::quant) dw: &'a [__m256],
    /// The first block.
    pub(in crate::quant) b0: usize,
    /// The activation scales, `das[b * m + i]` for block b of activation row i.
    pub(in crate::quant) das: &'a [f32],
    /// Activation rows.
    pub(in crate::quant) m: usize,
}

/// `R` activation rows (`a`, the first is row `i0`) times a chunk of eight Q4_0 rows: adds each
/// block's `isum · (d_w · d_a)` to `acc[r]` in block order (see [`q4_0_x8m`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q40_rows<const R: usize>(ck: &Q40Chunk, a: &[Q8Row], i0: usize, acc: &mut [__m256]) {
    let ones = _mm256_set1_epi16(1);
    let y: [&[i8]; R] = std::array::from_fn(|r| &a[r].qs[ck.b0 * QK..]);
    let mut s: [__m256; R] = std::array::from_fn(|r| acc[r]);
    for (c, (q, &dw)) in ck.q.iter().zip(ck.dw).enumerate() {
        let b = ck.b0 + c;
        let mut p16 = [_mm256_setzero_si256(); R];
        for (v, &q) in q.iter().enumerate() {
            for r in 0..R {
                let yb: &[i8; QK] = y[r][c * QK..(c + 1) * QK].try_into().unwrap();
                p16[r] = _mm256_add_epi16(p16[r], _mm256_maddubs_epi16(q, bcast4(yb, 4 * v)));
            }
        }
        for r in 0..R {
            let isum = _mm256_sub_epi32(
                _mm256_madd_epi16(p16[r], ones),
                _mm256_set1_epi32(8 * a[r].isum[b]),
            );
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(ck.das[b * ck.m + i0 + r]));
            s[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, s[r]);
        }
    }
    acc[..R].copy_from_slice(&s);
}

/// Eight Q4_0 rows times every activation row of `a` as `ggml_gemm_q4_0_8x8_q8_0` computes them
/// (the arithmetic of [`q4_0_x8`]), for each group of eight rows in `w` (a multiple of eight rows
/// of `rb` bytes), into row i, column `8g + t` of `out` for activation row i and row t of group g.
///
/// One weight row per i32 lane as in [`k4_lanes_rows`]: four values of every row times the same
/// four activation bytes. The unsigned values `q` go into `vpmaddubsw` as they are and the
/// activations' exact block sum times 8 is subtracted once per block (`Σ (q - 8) · y`); the i16
/// sums stay below 8 · 2 · 15 · 127 = 30480. Blocks are unpacked [`Q40_CHUNK`] at a time for all
/// activation rows, whose accumulators stay in a register over the chunk.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0_x8m(w: &[u8], rb: usize, a: &[Q8Row], out: &mut Out) {
    q4_0_x8m_at(w, rb, a, out, 0);
}

/// [`q4_0_x8m`] with the first group of rows written to column `col0` of `out` (the AVX-512
/// kernel passes the rows past its last group of sixteen).
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn q4_0_x8m_at(w: &[u8], rb: usize, a: &[Q8Row], out: &mut Out, col0: usize) {
    let nb = rb / 18;
    let das = scales_by_block(a.iter().map(|r| r.d), nb);
    let mut accs = vec![_mm256_setzero_ps(); a.len()];
    for (grp, w) in w.chunks_exact(8 * rb).enumerate() {
        let rows = Rows8::new(w, rb);
        accs.fill(_mm256_setzero_ps());
        for b0 in (0..nb).step_by(Q40_CHUNK) {
            let n = Q40_CHUNK.min(nb - b0);
            let mut q = [[_mm256_setzero_si256(); 8]; Q40_CHUNK];
            let mut dw = [_mm256_setzero_ps(); Q40_CHUNK];
            for c in 0..n {
                (q[c], dw[c]) = q40_unpack(rows, b0 + c);
            }
            let ck = Q40Chunk {
                q: &q[..n],
                dw: &dw[..n],
                b0,
                das: &das,
                m: a.len(),
            };
            let m4 = a.len() / 4 * 4;
            for i in (0..m4).step_by(4) {
                q40_rows::<4>(&ck, &a[i..i + 4], i, &mut accs[i..i + 4]);
            }
            for i in m4..a.len() {
                q40_rows::<1>(&ck, &a[i..i + 1], i, &mut accs[i..i + 1]);
            }
        }
        for (i, acc) in accs.iter().enumerate() {
            store8(out, i, col0 + 8 * grp, *acc);
        }
    }
}

/// Block `b` of eight Q4_0 rows unpacked for [`q40_rows`]: `q[v]`, lane t: values `4v..4v + 4` of
/// row t, in 0..16; and lane t: row t's scale.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn q40_unpack(rows: Rows8, b: usize) -> ([__m256i; 8], __m256) {
    use blocks::q4_0::*;
    let off = b * 18;
    let m4 = _mm256_set1_epi8(0xF);
    let t = transpose_8x4(&std::array::from_fn(|t| {
        load16(rows.at::<16>(t, off + QS), 0)
    }));
    let mut q = [_mm256_setzero_si256(); 8];
    for g in 0..4 {
        q[g] = _mm256_and_si256(t[g], m4);
        q[g + 4] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), m4);
    }
    (q, rows.f16s(off + D))
}

/// The activation rows' block scales transposed: element `b * m + i` is row i's scale of block b
/// (m rows). Read in that order, one block of every row, they stay in few cache lines; in the rows'
/// own arrays each row's scale would be a line of its own.
pub(in crate::quant) fn scales_by_block<'a>(
    rows: impl ExactSizeIterator<Item = &'a [f32]>,
    nb: usize,
) -> Vec<f32> {
    let m = rows.len();
    let mut out = vec![0.0f32; nb * m];
    for (i, d) in rows.enumerate() {
        for (b, &v) in d[..nb].iter().enumerate() {
            out[b * m + i] = v;
        }
    }
    out
}

/// Eight Q4_K rows times one Q8_K row as `ggml_gemv_q4_K_8x8_q8_K` computes them, bit-identical
/// to [`super::orders::dot_q4_k_r8`] on each row: per super-block, the scaled sum times
/// `d_w · d_a` and the min sum times `dmin_w · d_a`, each into its own accumulator.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8(w: &[u8], rb: usize, a: Q8KRow) -> [f32; 8] {
    use blocks::q4_k::*;
    let rows = Rows8::new(w, rb);
    let m4 = _mm256_set1_epi8(0xF);
    // Byte k of a row's scales, zero-extended, in every i16 lane (pshufb zeroes for 0x80).
    let pick: [__m256i; 8] = std::array::from_fn(|k| _mm256_set1_epi16(k as i16 | -0x8000));
    let (mut acc, mut acc_m) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for ib in 0..rb / 144 {
        let block = ib * 144;
        prefetch_next(w, rb, block * 8, 8 * 144);
        let bs = &a.bsums[ib * 16..ib * 16 + 16];
        // SAFETY: `bs` holds exactly 16 i16 (32 bytes); the load is unaligned.
        let q8sums = unsafe { _mm256_loadu_si256(bs.as_ptr() as *const __m256i) };
        let q8s = _mm_hadd_epi16(
            _mm256_castsi256_si128(q8sums),
            _mm256_extracti128_si256(q8sums, 1),
        );
        let mut v = [_mm256_setzero_si256(); 8];
        let mut m = [_mm_setzero_si128(); 8];
        let blk = rows.block::<144>(block);
        for (t, &b) in blk.iter().enumerate() {
            let (sc, mn) = k4_scales_vec(&b[SCALES..SCALES + 12]);
            m[t] = _mm_madd_epi16(mn, q8s);
            let sc = _mm256_broadcastsi128_si256(sc);
            let mut s = _mm256_setzero_si256();
            for j in 0..4 {
                let q4 = load32(b, QS + 32 * j);
                let q4l = _mm256_and_si256(q4, m4);
                let q4h = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
                let q8l = load32_i8(a.qs, ib * QK_K + 64 * j);
                let q8h = load32_i8(a.qs, ib * QK_K + 64 * j + 32);
                let pl = _mm256_madd_epi16(
                    _mm256_shuffle_epi8(sc, pick[2 * j]),
                    _mm256_maddubs_epi16(q4l, q8l),
                );
                let ph = _mm256_madd_epi16(
                    _mm256_shuffle_epi8(sc, pick[2 * j + 1]),
                    _mm256_maddubs_epi16(q4h, q8h),
                );
                s = _mm256_add_epi32(s, _mm256_add_epi32(pl, ph));
            }
            v[t] = s;
        }
        let mj = transpose_8x4(&m);
        let mins = _mm256_add_epi32(
            _mm256_add_epi32(mj[0], mj[1]),
            _mm256_add_epi32(mj[2], mj[3]),
        );
        let da = _mm256_set1_ps(a.d[ib]);
        const { assert!(DMIN == D + 2) };
        let (d, dmin) = f16_pairs_of(&blk, D);
        let ds = _mm256_mul_ps(d, da);
        let dm = _mm256_mul_ps(dmin, da);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum_i32_8x8(&v)), ds, acc);
        acc_m = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), dm, acc_m);
    }
    store([_mm256_sub_ps(acc, acc_m)])[0]
}

/// The 8 scales of a Q4_K/Q5_K super-block from its 12 packed bytes, as the bytes 0-7 of a vector,
/// and its 8 mins as i16 (llama.cpp's `kmask` unpacking, four u32 operations per field).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_scales_vec(q: &[u8]) -> (__m128i, __m128i) {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let u = |o: usize| u32::from_le_bytes([q[o], q[o + 1], q[o + 2], q[o + 3]]);
    let (u0, u1, u2) = (u(0), u(4), u(8));
    let sc_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let mn_lo = u1 & KMASK1;
    let mn_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let sc = _mm_set_epi32(0, 0, sc_hi as i32, (u0 & KMASK1) as i32);
    let mn = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, mn_hi as i32, mn_lo as i32));
    (sc, mn)
}

/// Transposes an 8×8 matrix of i32: lane t of `out[j]` is lane j of `m[t]`.
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn transpose_8x8(m: &[__m256i; 8]) -> [__m256i; 8] {
    // 4×4 transposes inside each 128-bit half: lo[j] holds lane j (low half) and lane j + 4
    // (high half) of rows 0-3, hi[j] the same of rows 4-7.
    let t4 = |a: __m256i, b: __m256i, c: __m256i, d: __m256i| {
        let (t0, t1) = (_mm256_unpacklo_epi32(a, b), _mm256_unpacklo_epi32(c, d));
        let (t2, t3) = (_mm256_unpackhi_epi32(a, b), _mm256_unpackhi_epi32(c, d));
        [
            _mm256_unpacklo_epi64(t0, t1),
            _mm256_unpackhi_epi64(t0, t1),
            _mm256_unpacklo_epi64(t2, t3),
            _mm256_unpackhi_epi64(t2, t3),
        ]
    };
    let lo = t4(m[0], m[1], m[2], m[3]);
    let hi = t4(m[4], m[5], m[6], m[7]);
    let mut out = [_mm256_setzero_si256(); 8];
    for j in 0..4 {
        out[j] = _mm256_permute2x128_si256(lo[j], hi[j], 0x20);
        out[j + 4] = _mm256_permute2x128_si256(lo[j], hi[j], 0x31);
    }
    out
}

/// The four bytes at `q[at..at + 4]` in every i32 lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn bcast4<const N: usize>(q: &[i8; N], at: usize) -> __m256i {
    let b = &q[at..at + 4];
    _mm256_set1_epi32(i32::from_le_bytes([
        b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8,
    ]))
}

/// One super-block of eight Q4_K rows laid out for products with one row per i32 lane.
pub(in crate::quant) struct K4Lanes {
    /// `q[s][g]`, lane t: the four 4-bit values `4g..4g + 4` of sub-block s of row t, as bytes.
    pub(in crate::quant) q: [[__m256i; 8]; 8],
    /// Lane t: sub-block s's scale of row t, in both i16 halves.
    pub(in crate::quant) sc: [__m256i; 8],
    /// Lane t: the mins of sub-blocks 2j (low i16) and 2j + 1 (high i16) of row t.
    pub(in crate::quant) mn: [__m256i; 4],
}

/// Unpacks super-block `ib` of the eight Q4_K rows into [`K4Lanes`].
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn k4_lanes(rows: Rows8, ib: usize) -> K4Lanes {
    use blocks::q4_k::*;
    let block = ib * 144;
    let m4 = _mm256_set1_epi8(0xF);
    let mut q = [[_mm256_setzero_si256(); 8]; 8];
    for j in 0..4 {
        // Byte i of the 32 at QS + 32j: value i of sub-block 2j (low nibble) and of 2j + 1 (high).
        let t = transpose_8x8(&std::array::from_fn(|t| {
            load32(rows.at::<32>(t, block + QS + 32 * j), 0)
        }));
        for g in 0..8 {
            q[2 * j][g] = _mm256_and_si256(t[g], m4);
            q[2 * j + 1][g] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), m4);
        }
    }
    let (mut sc, mut mn) = ([[0i32; 8]; 8], [[0i32; 8]; 4]);
    for t in 0..8 {
        let (s, m) = blocks::scales_mins_k4(rows.at::<12>(t, block + SCALES));
        for j in 0..8 {
            sc[j][t] = s[j] as i32 * 0x1_0001;
        }
        for j in 0..4 {
            mn[j][t] = m[2 * j] as i32 | (m[2 * j + 1] as i32) << 16;
        }
    }
    // SAFETY (both): each array holds eight i32 (32 bytes); the loads are unaligned.
    let v = |a: &[i32; 8]| unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) };
    K4Lanes {
        q,
        sc: std::array::from_fn(|j| v(&sc[j])),
        mn: std::array::from_fn(|j| v(&mn[j])),
    }
}

/// `R` activation rows times the eight rows of `w`, super-block `ib`: adds to `acc[r]` (sums,
/// mins) exactly what [`q4_k_x8m`] adds for that super-block, per 64 values.
///
/// The exact integer dot products come from one weight row per i32 lane: four values of every row
/// times the same four activation bytes (broadcast), summed as i16 over a 32-value sub-block (at
/// most 8 · 2 · 15 · 128 = 30720 in magnitude), then times the sub-block's scale as i32. No
/// horizontal sums: each multiply does 32 useful products.
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_lanes_rows<const R: usize>(
    w: &K4Lanes,
    (d, dmin): (__m256, __m256),
    a: [KRow; R],
    acc: &mut [[__m256; 2]],
) {
    let pairs = a.map(|(_, bs, _)| pair_sums(bs));
    // The integer sums first, for every 64 values; then the float steps, which would otherwise
    // hold sixteen registers through the integer loop.
    let mut isum = [[_mm256_setzero_si256(); 4]; R];
    for j in 0..4 {
        let mut p = [_mm256_setzero_si256(); R];
        for s in [2 * j, 2 * j + 1] {
            let mut p16 = [_mm256_setzero_si256(); R];
            for g in 0..8 {
                let q = w.q[s][g];
                for r in 0..R {
                    let y = bcast4(a[r].0, 32 * s + 4 * g);
                    p16[r] = _mm256_add_epi16(p16[r], _mm256_maddubs_epi16(q, y));
                }
            }
            for r in 0..R {
                p[r] = _mm256_add_epi32(p[r], _mm256_madd_epi16(p16[r], w.sc[s]));
            }
        }
        for r in 0..R {
            isum[r][j] = p[r];
        }
    }
    for r in 0..R {
        let da = _mm256_set1_ps(a[r].2);
        let (ds, dm) = (_mm256_mul_ps(d, da), _mm256_mul_ps(dmin, da));
        let [mut s, mut m] = acc[r];
        for j in 0..4 {
            let mins = _mm256_madd_epi16(w.mn[j], _mm256_set1_epi32(pairs[r][j]));
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][j]), ds, s);
            m = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), dm, m);
        }
        acc[r] = [s, m];
    }
}

/// Eight Q4_K rows times every activation row of `a` as `ggml_gemm_q4_K_8x8_q8_K` computes them,
/// bit-identical to [`super::orders::dot_q4_k_r8_x4`] on each pair of rows: like [`q4_k_x8`], but
/// the multiply-adds run per 64 values. For each group of eight rows in `w` (a multiple of eight
/// rows of `rb` bytes), writes row i, column `8g + t` of `out` for activation row i and row t of
/// group g. Each super-block of the eight rows is unpacked once ([`k4_lanes`]) for all activation rows,
/// four at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8m(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out) {
    q4_k_x8m_at(w, rb, a, out, 0);
}

/// [`q4_k_x8m`] with the first group of rows written to column `col0` of `out`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn q4_k_x8m_at(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out, col0: usize) {
    use blocks::q4_k::*;
    let unpack = |rows: Rows8, ib: usize| {
        // The scale and the min are adjacent.
        const { assert!(DMIN == D + 2) };
        let dd = rows.f16_pairs(ib * 144 + D);
        (k4_lanes(rows, ib), dd)
    };
    k_x8m(
        (w, rb, 144, col0, false),
        a,
        out,
        [_mm256_setzero_ps(); 2],
        unpack,
        |(l, dd), rs: [KRow; 4], acc| k4_lanes_rows(l, *dd, rs, acc),
        |(l, dd), rs: [KRow; 1], acc| k4_lanes_rows(l, *dd, rs, acc),
        |[acc, acc_m]| _mm256_sub_ps(acc, acc_m),
    );
}

/// Super-block `ib` of eight Q4_K rows in [`Layout::Q4KRows8`](crate::quant::pack::Layout)
/// (the bytes of `rows`) into [`K4Lanes`]: the quant bytes are already in lanes, and the scales
/// and mins are widened from one byte per row.
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn k4_lanes_packed(rows: Rows8, ib: usize) -> K4Lanes {
    let p = rows.packed::<Q4K_GROUP>(ib);
    let m4 = _mm256_set1_epi8(0xF);
    let mut q = [[_mm256_setzero_si256(); 8]; 8];
    for j in 0..4 {
        for g in 0..8 {
            let v = load32(p, (8 * j + g) * 32);
            q[2 * j][g] = _mm256_and_si256(v, m4);
            q[2 * j + 1][g] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
    }
    let (sc, mn) = k4_lanes_scales(rows, ib);
    K4Lanes { q, sc, mn }
}

/// The f16 super-block scales and min scales of eight packed Q4_K rows, as f32 (lane t: row t).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn k4_packed_d(rows: Rows8, ib: usize) -> (__m256, __m256) {
    let p = rows.packed::<Q4K_GROUP>(ib);
    let f = |at: usize| _mm256_cvtph_ps(load16(p, at));
    (f(Q4K_D), f(Q4K_DMIN))
}

/// [`q4_k_x8`] on rows in [`Layout::Q4KRows8`](crate::quant::pack::Layout): the same float
/// steps, bit for bit; the exact integer sums come one row per i32 lane, as in [`k4_lanes_rows`],
/// with no transposition left to do.
// Indices name sub-blocks and groups across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8_packed(w: &[u8], rb: usize, a: Q8KRow) -> [f32; 8] {
    let rows = Rows8::new(w, rb);
    let m4 = _mm256_set1_epi8(0xF);
    let (mut acc, mut acc_m) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for ib in 0..rb / 144 {
        // The next eight rows' super-block: the packed groups follow one another.
        prefetch_next(w, rb, ib * Q4K_GROUP, Q4K_GROUP);
        let p = rows.packed::<Q4K_GROUP>(ib);
        let y: &[i8; QK_K] = a.qs[ib * QK_K..(ib + 1) * QK_K].try_into().unwrap();
        let l = k4_lanes_scales(rows, ib);
        let pairs = pair_sums(&a.bsums[ib * 16..ib * 16 + 16]);
        let mut isum = _mm256_setzero_si256();
        let mut mins = _mm256_setzero_si256();
        for j in 0..4 {
            let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for g in 0..8 {
                let v = load32(p, (8 * j + g) * 32);
                let (ql, qh) = (
                    _mm256_and_si256(v, m4),
                    _mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                );
                lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(ql, bcast4(y, 64 * j + 4 * g)));
                hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(qh, bcast4(y, 64 * j + 32 + 4 * g)));
            }
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(lo, l.0[2 * j]));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(hi, l.0[2 * j + 1]));
            mins = _mm256_add_epi32(mins, _mm256_madd_epi16(l.1[j], _mm256_set1_epi32(pairs[j])));
        }
        let da = _mm256_set1_ps(a.d[ib]);
        let (d, dmin) = k4_packed_d(rows, ib);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, da), acc);
        acc_m = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, da), acc_m);
    }
    store([_mm256_sub_ps(acc, acc_m)])[0]
}

/// The scales and mins of [`k4_lanes_packed`] alone: `(sc, mn)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_lanes_scales(rows: Rows8, ib: usize) -> ([__m256i; 8], [__m256i; 4]) {
    let p = rows.packed::<Q4K_GROUP>(ib);
    // Eight bytes of `p` at `at`, one per i32 lane, zero-extended.
    let bytes8 = |at: usize| {
        let b: &[u8; 8] = p[at..at + 8].try_into().unwrap();
        // SAFETY: `b` holds exactly the 8 bytes read; the load is unaligned.
        _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(b.as_ptr() as *const __m128i) })
    };
    let low6 = _mm256_set1_epi32(63);
    let sc = std::array::from_fn(|s| {
        let v = _mm256_and_si256(bytes8(Q4K_SC + 8 * s), low6);
        _mm256_or_si256(v, _mm256_slli_epi32::<16>(v))
    });
    let mn = std::array::from_fn(|j| {
        let hi = |s: usize| _mm256_slli_epi32::<4>(_mm256_srli_epi32::<6>(bytes8(Q4K_SC + 8 * s)));
        let lo = bytes8(Q4K_MN + 8 * j);
        let m0 = _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(15)), hi(2 * j));
        let m1 = _mm256_or_si256(_mm256_srli_epi32::<4>(lo), hi(2 * j + 1));
        _mm256_or_si256(m0, _mm256_slli_epi32::<16>(m1))
    });
    (sc, mn)
}

/// [`q4_k_x8m`] on rows in [`Layout::Q4KRows8`](crate::quant::pack::Layout), bit for bit.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k_x8m_packed(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out) {
    q4_k_x8m_packed_at(w, rb, a, out, 0);
}

/// [`q4_k_x8m_packed`] with the first group of rows written to column `col0` of `out`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn q4_k_x8m_packed_at(
    w: &[u8],
    rb: usize,
    a: &[Q8KRow],
    out: &mut Out,
    col0: usize,
) {
    k_x8m(
        (w, rb, 144, col0, true),
        a,
        out,
        [_mm256_setzero_ps(); 2],
        |rows: Rows8, ib| (k4_lanes_packed(rows, ib), k4_packed_d(rows, ib)),
        |(l, dd), rs: [KRow; 4], acc| k4_lanes_rows(l, *dd, rs, acc),
        |(l, dd), rs: [KRow; 1], acc| k4_lanes_rows(l, *dd, rs, acc),
        |[acc, acc_m]| _mm256_sub_ps(acc, acc_m),
    );
}

/// The 16 group sums of a Q8_K super-block added in pairs, as i16 pairs in i32 (the four i32 hold
/// groups 0-1 | 2-3, 4-5 | 6-7, ...: the sums over the 32-value sub-blocks 2j and 2j + 1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn pair_sums(bs: &[i16]) -> [i32; 4] {
    let bs = &bs[..16];
    let mut p = [0i32; 4];
    // SAFETY: `bs` holds 16 i16 (32 bytes); the loads and the store are unaligned.
    unsafe {
        let s = _mm256_loadu_si256(bs.as_ptr() as *const __m256i);
        let s = _mm_hadd_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        _mm_storeu_si128(p.as_mut_ptr() as *mut __m128i, s);
    }
    p
}

/// One activation row's super-block for the lanes kernels: values, group sums, scale.
pub(in crate::quant) type KRow<'a> = (&'a [i8; QK_K], &'a [i16], f32);

/// Prefetches bytes `range` of each of the first `n` rows (of `rb` bytes) of `w`, a cache line at
/// a time: the batch products unpack a block of eight or sixteen rows at once, and the hardware
/// prefetcher does not keep that many row streams ahead of them.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn prefetch_rows(
    w: &[u8],
    rb: usize,
    n: usize,
    range: std::ops::Range<usize>,
) {
    for t in 0..n {
        let row = &w[t * rb..][range.clone()];
        for l in (0..row.len()).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(row[l..].as_ptr() as *const i8);
        }
    }
}

/// The loops of the Q8_K batch products ([`q4_k_x8m`], [`q6_k_x8m`]): for each group of eight
/// weight rows (`w`: rows of `rb` bytes, super-blocks of `bytes`; `packed`: each super-block of
/// the eight rows in one run of `8 · bytes`, as in [`crate::quant::pack`]) and each super-block, `unpack`
/// once, then every activation row of `a` through `rows4` four at a time and `rows1` for the rest,
/// into accumulators that start at `zero`; `result` turns each into the eight outputs written to
/// row i, columns `col0 + 8g..col0 + 8g + 8` of `out`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn k_x8m<L, Acc: Copy>(
    (w, rb, bytes, col0, packed): (&[u8], usize, usize, usize, bool),
    a: &[Q8KRow],
    out: &mut Out,
    zero: Acc,
    unpack: impl Fn(Rows8, usize) -> L,
    rows4: impl Fn(&L, [KRow; 4], &mut [Acc]),
    rows1: impl Fn(&L, [KRow; 1], &mut [Acc]),
    result: impl Fn(Acc) -> __m256,
) {
    let nb = rb / bytes;
    let das = scales_by_block(a.iter().map(|r| r.d), nb);
    let mut accs = vec![zero; a.len()];
    let m4 = a.len() / 4 * 4;
    for (grp, w) in w.chunks_exact(8 * rb).enumerate() {
        let rows = Rows8::new(w, rb);
        accs.fill(zero);
        for ib in 0..nb {
            if ib + 2 < nb {
                // Measured (CHORD_ISA=avx2): 4 TinyLlama-shape Q4_K_M sessions 10-20% faster.
                if packed {
                    prefetch_rows(w, 8 * bytes, 1, (ib + 2) * 8 * bytes..(ib + 3) * 8 * bytes);
                } else {
                    prefetch_rows(w, rb, 8, (ib + 2) * bytes..(ib + 3) * bytes);
                }
            }
            let lanes = unpack(rows, ib);
            let das = &das[ib * a.len()..(ib + 1) * a.len()];
            let row = |i: usize| -> KRow {
                let q: &[i8; QK_K] = a[i].qs[ib * QK_K..(ib + 1) * QK_K].try_into().unwrap();
                (q, &a[i].bsums[ib * 16..ib * 16 + 16], das[i])
            };
            for i in (0..m4).step_by(4) {
                let rs = [row(i), row(i + 1), row(i + 2), row(i + 3)];
                rows4(&lanes, rs, &mut accs[i..i + 4]);
            }
            for i in m4..a.len() {
                rows1(&lanes, [row(i)], &mut accs[i..i + 1]);
            }
        }
        for (i, acc) in accs.iter().enumerate() {
            store8(out, i, col0 + 8 * grp, result(*acc));
        }
    }
}

/// One super-block of eight Q6_K rows laid out for products with one row per i32 lane.
pub(in crate::quant) struct K6Lanes {
    /// `q[g][i]`, lane t: the 6-bit values `16g + 4i..16g + 4i + 4` of row t, as bytes.
    pub(in crate::quant) q: [[__m256i; 4]; 16],
    /// Lane t: group g's scale of row t, in both i16 halves.
    pub(in crate::quant) sc: [__m256i; 16],
    /// Lane t: the scales of groups 2p (low i16) and 2p + 1 (high i16) of row t.
    pub(in crate::quant) sc2: [__m256i; 8],
    /// Lane t: the super-block scale of row t.
    pub(in crate::quant) d: __m256,
}

/// Unpacks super-block `ib` of the eight Q6_K rows into [`K6Lanes`]: the packed bytes are
/// transposed first (decoding works byte by byte, so it commutes with moving whole 4-byte groups).
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn k6_lanes(rows: Rows8, ib: usize) -> K6Lanes {
    use blocks::q6_k::*;
    let block = ib * 210;
    let tr = |off: usize| {
        transpose_8x8(&std::array::from_fn(|t| {
            load32(rows.at::<32>(t, block + off), 0)
        }))
    };
    let m15 = _mm256_set1_epi8(15);
    let mut q = [[_mm256_setzero_si256(); 4]; 16];
    for j in 0..2 {
        let (l1, l2, h) = (tr(QL + 64 * j), tr(QL + 64 * j + 32), tr(QH + 32 * j));
        for g in 0..8 {
            // Value 4g of each quarter of the 128: low nibbles of l1, l2, then high nibbles, each
            // with its two bits of h.
            let hb = h[g];
            let h0 = _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(3)), 4);
            let h1 = _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(12)), 2);
            let h2 = _mm256_and_si256(hb, _mm256_set1_epi8(48));
            let h3 = _mm256_srli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(-64)), 2);
            let lo = |v: __m256i| _mm256_and_si256(v, m15);
            let hi = |v: __m256i| _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
            let (grp, i) = (8 * j + g / 4, g % 4);
            q[grp][i] = _mm256_or_si256(lo(l1[g]), h0);
            q[grp + 2][i] = _mm256_or_si256(lo(l2[g]), h1);
            q[grp + 4][i] = _mm256_or_si256(hi(l1[g]), h2);
            q[grp + 6][i] = _mm256_or_si256(hi(l2[g]), h3);
        }
    }
    let (mut sc, mut sc2) = ([[0i32; 8]; 16], [[0i32; 8]; 8]);
    for t in 0..8 {
        let s = rows.at::<16>(t, block + SCALES);
        for g in 0..16 {
            let u = s[g] as i8 as i16 as u16 as u32;
            sc[g][t] = (u | u << 16) as i32;
        }
        for p in 0..8 {
            sc2[p][t] = (s[2 * p] as i8 as i16 as u16 as i32) | (s[2 * p + 1] as i8 as i32) << 16;
        }
    }
    // SAFETY: each array holds eight i32 (32 bytes); the loads are unaligned.
    let v = |a: &[i32; 8]| unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) };
    K6Lanes {
        q,
        sc: std::array::from_fn(|g| v(&sc[g])),
        sc2: std::array::from_fn(|p| v(&sc2[p])),
        d: rows.f16s(block + D),
    }
}

/// `R` activation rows times the eight rows of one Q6_K super-block: adds to `acc[r]` what the
/// tiled product adds, `d_w · s1` times the row's `d_a` in one fused multiply-add, where `s1` is the
/// exact `sum over 16-value groups g of sc[g] · sum((q - 32) · q8)`.
///
/// As in [`k4_lanes_rows`]: four values of every weight row times the same four activation bytes.
/// Unsigned 6-bit values times bytes reach 63 · 127 · 4 = 32004 over 8 values, so the i16 sums
/// take two multiplies each before the scale widens them; the `- 32` is subtracted once per
/// super-block from the activations' group sums.
// Indices name sub-blocks, groups and rows across several arrays at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k6_lanes_rows<const R: usize>(w: &K6Lanes, a: [KRow; R], acc: &mut [__m256]) {
    let mut isum = [_mm256_setzero_si256(); R];
    for g in 0..16 {
        let q = w.q[g];
        for r in 0..R {
            let y = |i: usize| bcast4(a[r].0, 16 * g + 4 * i);
            let p0 = _mm256_add_epi16(
                _mm256_maddubs_epi16(q[0], y(0)),
                _mm256_maddubs_epi16(q[1], y(1)),
            );
            let p1 = _mm256_add_epi16(
                _mm256_maddubs_epi16(q[2], y(2)),
                _mm256_maddubs_epi16(q[3], y(3)),
            );
            let s = _mm256_add_epi32(
                _mm256_madd_epi16(p0, w.sc[g]),
                _mm256_madd_epi16(p1, w.sc[g]),
            );
            isum[r] = _mm256_add_epi32(isum[r], s);
        }
    }
    for r in 0..R {
        let bs = a[r].1;
        let mut corr = _mm256_setzero_si256();
        for p in 0..8 {
            let pair = (bs[2 * p] as u16 as i32) | (bs[2 * p + 1] as i32) << 16;
            corr = _mm256_add_epi32(corr, _mm256_madd_epi16(w.sc2[p], _mm256_set1_epi32(pair)));
        }
        let s1 = _mm256_sub_epi32(isum[r], _mm256_slli_epi32(corr, 5));
        let res = _mm256_mul_ps(w.d, _mm256_cvtepi32_ps(s1));
        acc[r] = _mm256_fmadd_ps(res, _mm256_set1_ps(a[r].2), acc[r]);
    }
}

/// Eight Q6_K rows times every activation row of `a` in the tiled product's order, bit-identical
/// to [`super::orders::dot_q6_k_tiled`] on each pair of rows. For each group of eight rows in `w`,
/// writes row i, column `8g + t` of `out` as [`q4_k_x8m`] does. Each super-block of the eight rows is
/// unpacked once ([`k6_lanes`]) for all activation rows, four at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q6_k_x8m(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out) {
    q6_k_x8m_at(w, rb, a, out, 0);
}

/// [`q6_k_x8m`] with the first group of rows written to column `col0` of `out`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn q6_k_x8m_at(w: &[u8], rb: usize, a: &[Q8KRow], out: &mut Out, col0: usize) {
    k_x8m(
        (w, rb, 210, col0, false),
        a,
        out,
        _mm256_setzero_ps(),
        |rows, ib| k6_lanes(rows, ib),
        |l, rs: [KRow; 4], acc| k6_lanes_rows(l, rs, acc),
        |l, rs: [KRow; 1], acc| k6_lanes_rows(l, rs, acc),
        |acc| acc,
    );
}

/// Eight Q6_K rows times one activation row in the tiled product's order ([`q6_k_x8m`] on one
/// row).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q6_k_x8(w: &[u8], rb: usize, a: Q8KRow) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    q6_k_x8m(w, rb, &[a], &mut Out::init(&mut out, 1, 8, 8));
    out
}

#[cfg(test)]
mod tests {
    use super::super::orders as o;
    use super::*;
    use crate::quant::act::{quantize_q8, quantize_q8_k};
    use crate::quant::isa::Isa;
    use crate::quant::tests::{random_weights, Rng};
    use crate::quant::GgmlType;

    /// Every lane equals the one-row kernel on that row, bit for bit: gemv against the one-row
    /// gemv order, all-rows gemm (two groups of eight rows) against the four-row gemm order.
    #[test]
    fn eight_rows_equal_one_row_kernels() {
        if !Isa::detected().has_avx2() {
            return;
        }
        let mut rng = Rng(0x0008_0808);
        const M: usize = 8;
        const N: usize = 16;
        for k in [256usize, 2048, 5632] {
            let x: Vec<f32> = (0..M * k).map(|_| rng.f32() * 4.0).collect();
            let q = quantize_q8(Isa::scalar(), &x, k, false);
            let a: Vec<Q8Row> = (0..M).map(|r| q.row(r, k)).collect();
            let w = random_weights(&mut rng, GgmlType::Q4_0, N, k);
            let rb = w.len() / N;
            let mut all = vec![0.0f32; M * N];
            // SAFETY: AVX2, FMA and F16C were detected above.
            let one = unsafe { q4_0_x8(&w, rb, a[0]) };
            // SAFETY: as above.
            unsafe { q4_0_x8m(&w, rb, &a, &mut Out::init(&mut all, M, N, N)) };
            for t in 0..N {
                let row = &w[t * rb..(t + 1) * rb];
                // SAFETY: as above.
                let want = unsafe { o::dot_q4_0_r8(row, a[0]) };
                if t < 8 {
                    assert_eq!(one[t].to_bits(), want.to_bits(), "Q4_0 gemv k={k} row {t}");
                }
                for g in (0..M).step_by(4) {
                    let four = [a[g], a[g + 1], a[g + 2], a[g + 3]];
                    // SAFETY: as above.
                    let want = unsafe { o::dot_q4_0_r8_x4(row, four) };
                    for r in 0..4 {
                        let got = all[(g + r) * N + t];
                        assert_eq!(got.to_bits(), want[r].to_bits(), "Q4_0 gemm k={k}");
                    }
                }
            }
            let qk = quantize_q8_k(&x, k);
            let a: Vec<Q8KRow> = (0..M).map(|r| qk.row(r, k)).collect();
            let w = random_weights(&mut rng, GgmlType::Q4_K, N, k);
            let rb = w.len() / N;
            // SAFETY: as above.
            let one = unsafe { q4_k_x8(&w, rb, a[0]) };
            // SAFETY: as above.
            unsafe { q4_k_x8m(&w, rb, &a, &mut Out::init(&mut all, M, N, N)) };
            for t in 0..N {
                let row = &w[t * rb..(t + 1) * rb];
                // SAFETY: as above.
                let want = unsafe { o::dot_q4_k_r8(row, a[0]) };
                if t < 8 {
                    assert_eq!(one[t].to_bits(), want.to_bits(), "Q4_K gemv k={k} row {t}");
                }
                for g in (0..M).step_by(4) {
                    let four = [a[g], a[g + 1], a[g + 2], a[g + 3]];
                    // SAFETY: as above.
                    let want = unsafe { o::dot_q4_k_r8_x4(row, four) };
                    for r in 0..4 {
                        let got = all[(g + r) * N + t];
                        assert_eq!(got.to_bits(), want[r].to_bits(), "Q4_K gemm k={k}");
                    }
                }
            }
            let w = random_weights(&mut rng, GgmlType::Q6_K, N, k);
            let rb = w.len() / N;
            // SAFETY: as above (seven activation rows: four at a time, then one by one).
            unsafe { q6_k_x8m(&w, rb, &a[..7], &mut Out::init(&mut all, 7, N, N)) };
            for t in 0..N {
                let row = &w[t * rb..(t + 1) * rb];
                for (i, a) in a[..7].iter().enumerate() {
                    // SAFETY: as above.
                    let want = unsafe { o::dot_q6_k_tiled(row, *a) };
                    assert_eq!(
                        all[i * N + t].to_bits(),
                        want.to_bits(),
                        "Q6_K k={k} row {t}"
                    );
                }
            }
        }
    }

    /// The eight-weight-row gemv of every Q8_0/Q8_1 format equals its one-row kernel on each row,
    /// bit for bit (rows of 1, 18 and 48 blocks; random scales, mins and values).
    #[test]
    fn q8_family_rows8_equal_one_row() {
        use super::super::dot as d;
        if !Isa::detected().has_avx2() {
            return;
        }
        type One = unsafe fn(&[u8], Q8Row) -> f32;
        type Rows = unsafe fn(&[u8], usize, Q8Row) -> [f32; 8];
        let kernels: [(GgmlType, One, Rows); 5] = [
            (GgmlType::Q4_0, d::dot_q4_0, d::dot_q4_0_rows8),
            (GgmlType::Q4_1, d::dot_q4_1, d::dot_q4_1_rows8),
            (GgmlType::Q5_0, d::dot_q5_0, d::dot_q5_0_rows8),
            (GgmlType::Q5_1, d::dot_q5_1, d::dot_q5_1_rows8),
            (GgmlType::Q8_0, d::dot_q8_0, d::dot_q8_0_rows8),
        ];
        let mut rng = Rng(0x0808_0001);
        for (ty, one, rows) in kernels {
            for k in [32usize, 576, 1536] {
                let x: Vec<f32> = (0..k).map(|_| rng.f32() * 4.0 - 2.0).collect();
                let with_sums = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
                let q = quantize_q8(Isa::scalar(), &x, k, with_sums);
                let a = q.row(0, k);
                let w = random_weights(&mut rng, ty, 8, k);
                let rb = w.len() / 8;
                // SAFETY: AVX2, FMA and F16C were detected above.
                let got = unsafe { rows(&w, rb, a) };
                for (t, g) in got.iter().enumerate() {
                    // SAFETY: as above.
                    let want = unsafe { one(&w[t * rb..(t + 1) * rb], a) };
                    assert_eq!(g.to_bits(), want.to_bits(), "{} k={k} row {t}", ty.name());
                }
            }
        }
    }
}
