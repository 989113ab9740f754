//! AVX2 (+FMA, F16C) versions of the attention building blocks, written after llama.cpp's
//! `ggml_vec_dot_f16`, llamafile's `tinyBLAS` and `ggml_v_expf`. Every function is
//! `#[target_feature]`: callers hold an [`Isa`](crate::quant::Isa) that enabled AVX2.

use super::scalar::EXPF_CONSTS;
use half::f16;
use std::arch::x86_64::*;

/// Loads 8 f16 from `x[i..i + 8]` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load8(x: &[f16], i: usize) -> __m256 {
    let s = &x[i..i + 8];
    // SAFETY: `s` holds 8 readable f16 (16 bytes); the load is unaligned.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr() as *const __m128i) })
}

/// Horizontal sum in llamafile's order (`lo + hi`, then `(t0 + t2) + (t1 + t3)`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn hsum(x: __m256) -> f32 {
    let mut r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// See [`super::scalar::dot_vec`].
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_vec(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !31;
    let mut s = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < np {
        for (j, a) in s.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(load8(x, i + j * 8), load8(y, i + j * 8), *a);
        }
        i += 32;
    }
    let mut sumf = reduce_vec(s) as f64;
    for i in np..n {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// `GGML_F32x8_REDUCE` over four accumulators.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce_vec(s: [__m256; 4]) -> f32 {
    let a = _mm256_add_ps(s[0], s[2]);
    let b = _mm256_add_ps(s[1], s[3]);
    let x = _mm256_add_ps(a, b);
    let t0 = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    _mm_cvtss_f32(_mm_hadd_ps(t1, t1))
}

/// See [`super::scalar::dot_gemm4_runs`]: four rows against one `y` at once (independent chains).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_gemm4_runs<'a>(runs: impl Iterator<Item = [&'a [f16]; 4]>, y: &[f16]) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut at = 0;
    for xs in runs {
        let k = xs[0].len();
        debug_assert_eq!(k % 8, 0);
        let mut l = 0;
        while l < k {
            let yv = load8(y, at + l);
            for (a, x) in acc.iter_mut().zip(xs) {
                *a = _mm256_fmadd_ps(load8(x, l), yv, *a);
            }
            l += 8;
        }
        at += k;
    }
    acc.map(|a| hsum(a))
}

/// See [`super::scalar::dot_vec_runs`]: runs of a multiple of 16, each 16 going to accumulators
/// 0 and 1 or 2 and 3 by their offset.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_vec_runs<'a>(runs: impl Iterator<Item = &'a [f16]>, y: &[f16]) -> f32 {
    let mut s = [_mm256_setzero_ps(); 4];
    let mut at = 0;
    for x in runs {
        debug_assert_eq!(x.len() % 16, 0);
        let mut i = 0;
        while i < x.len() {
            let (a, b) = (load8(x, i), load8(x, i + 8));
            let (ya, yb) = (load8(y, at + i), load8(y, at + i + 8));
            if (at + i) % 32 == 0 {
                s[0] = _mm256_fmadd_ps(a, ya, s[0]);
                s[1] = _mm256_fmadd_ps(b, yb, s[1]);
            } else {
                s[2] = _mm256_fmadd_ps(a, ya, s[2]);
                s[3] = _mm256_fmadd_ps(b, yb, s[3]);
            }
            i += 16;
        }
        at += x.len();
    }
    reduce_vec(s)
}

/// [`dot_vec_runs`] of channels `c` and `c + 1` over whole cache blocks of 16 positions (their
/// runs `slabs[i][off..off + 16]` and `slabs[i][off + 16..off + 32]`, `off = c * 16`): a pair of
/// blocks fills each channel's four accumulators in order, so the loop takes pairs of blocks
/// without a branch, and the two channels share the probabilities' loads.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_vec_blocks2(slabs: &[&[f16]], off: usize, y: &[f16]) -> [f32; 2] {
    const _: () = assert!(super::BLOCK == 16);
    let mut s = [_mm256_setzero_ps(); 4];
    let mut t = [_mm256_setzero_ps(); 4];
    // One block: channel c's 16 values into accumulators j and j + 1 of `s`, channel c + 1's
    // into those of `t`, against the probabilities at `at`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn block(x: &[f16], y: &[f16], at: usize, j: usize, s: &mut [__m256; 4], t: &mut [__m256; 4]) {
        for h in 0..2 {
            let yv = load8(y, at + 8 * h);
            s[j + h] = _mm256_fmadd_ps(load8(x, 8 * h), yv, s[j + h]);
            t[j + h] = _mm256_fmadd_ps(load8(x, 16 + 8 * h), yv, t[j + h]);
        }
    }
    let mut pairs = slabs.chunks_exact(2);
    let mut at = 0;
    for pair in &mut pairs {
        block(&pair[0][off..off + 32], y, at, 0, &mut s, &mut t);
        block(&pair[1][off..off + 32], y, at + 16, 2, &mut s, &mut t);
        at += 32;
    }
    if let [x0] = pairs.remainder() {
        block(&x0[off..off + 32], y, at, 0, &mut s, &mut t);
    }
    [reduce_vec(s), reduce_vec(t)]
}

/// See [`super::scalar::dot_gemm`].
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_gemm(x: &[f16], y: &[f16]) -> f32 {
    let k = y.len();
    debug_assert_eq!(k % 8, 0);
    let mut acc = _mm256_setzero_ps();
    let mut l = 0;
    while l < k {
        acc = _mm256_fmadd_ps(load8(x, l), load8(y, l), acc);
        l += 8;
    }
    hsum(acc)
}

/// `R` queries times `J` keys (rows of `d`, a multiple of 8): one chain of [`dot_gemm`] per pair.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn score_tile<const R: usize, const J: usize>(
    ks: [&[f32]; J],
    qs: [&[f32]; R],
    d: usize,
) -> [[f32; J]; R] {
    assert!(ks.iter().chain(&qs).all(|x| x.len() >= d) && d.is_multiple_of(8));
    let mut acc = [[_mm256_setzero_ps(); J]; R];
    let mut l = 0;
    while l < d {
        let mut kv = [_mm256_setzero_ps(); J];
        for j in 0..J {
            // SAFETY: `l + 8 <= d <= ks[j].len()` (asserted); unaligned load.
            kv[j] = unsafe { _mm256_loadu_ps(ks[j].as_ptr().add(l)) };
        }
        for r in 0..R {
            // SAFETY: as above.
            let qv = unsafe { _mm256_loadu_ps(qs[r].as_ptr().add(l)) };
            for j in 0..J {
                acc[r][j] = _mm256_fmadd_ps(kv[j], qv, acc[r][j]);
            }
        }
        l += 8;
    }
    let mut out = [[0f32; J]; R];
    for r in 0..R {
        for j in 0..J {
            out[r][j] = hsum(acc[r][j]);
        }
    }
    out
}

/// See [`super::scores`]: two queries times four keys at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn scores(ks: &[f32], qs: &[f32], d: usize, out: &mut [f32], stride: usize) {
    let nq = qs.len() / d;
    let mut r = 0;
    while r + 2 <= nq {
        score_rows::<2>(
            ks,
            &qs[r * d..(r + 2) * d],
            d,
            &mut out[r * stride..],
            stride,
        );
        r += 2;
    }
    if r < nq {
        score_rows::<1>(ks, &qs[r * d..], d, &mut out[r * stride..], stride);
    }
}

/// [`scores`] of `R` queries.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn score_rows<const R: usize>(ks: &[f32], qs: &[f32], d: usize, out: &mut [f32], stride: usize) {
    let nk = ks.len() / d;
    let k = |j: usize| &ks[j * d..(j + 1) * d];
    let q: [&[f32]; R] = std::array::from_fn(|r| &qs[r * d..(r + 1) * d]);
    let mut j = 0;
    while j + 4 <= nk {
        let v = score_tile::<R, 4>([k(j), k(j + 1), k(j + 2), k(j + 3)], q, d);
        for (r, v) in v.iter().enumerate() {
            out[r * stride + j..][..4].copy_from_slice(v);
        }
        j += 4;
    }
    for j in j..nk {
        let v = score_tile::<R, 1>([k(j)], q, d);
        for (r, v) in v.iter().enumerate() {
            out[r * stride + j] = v[0];
        }
    }
}

/// See [`super::pv`]: two queries times four channels at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn pv(vf: &[f32], np: usize, ps: &[&[f32]], steps: &[usize], acc: &mut [[f32; 8]]) {
    let d = vf.len() / np;
    let mut r = 0;
    while r < ps.len() {
        let n = if r + 2 <= ps.len() { 2 } else { 1 };
        let acc = &mut acc[r * d..(r + n) * d];
        for c in (0..d).step_by(4) {
            if n == 2 {
                pv_tile::<2>(vf, np, c, [ps[r], ps[r + 1]], [steps[r], steps[r + 1]], acc);
            } else {
                pv_tile::<1>(vf, np, c, [ps[r]], [steps[r]], acc);
            }
        }
        r += n;
    }
}

/// Channels `c..c + 4` (rows of `np` in `vf`; `c + 4 <= d`) of `R` queries: their accumulators in
/// `acc` (`acc[i * d + c]` for query i) take `steps[i]` groups of 8 of `ps[i]` each, together as
/// long as both queries have steps left.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pv_tile<const R: usize>(
    vf: &[f32],
    np: usize,
    c: usize,
    ps: [&[f32]; R],
    steps: [usize; R],
    acc: &mut [[f32; 8]],
) {
    let d = acc.len() / R;
    assert!(c + 4 <= d && vf.len() >= d * np);
    assert!((0..R).all(|i| 8 * steps[i] <= np.min(ps[i].len())));
    let mut a = [[_mm256_setzero_ps(); 4]; R];
    for i in 0..R {
        for j in 0..4 {
            // SAFETY: `acc[i * d + c + j]` holds 8 floats; unaligned load.
            a[i][j] = unsafe { _mm256_loadu_ps(acc[i * d + c + j].as_ptr()) };
        }
    }
    // SAFETY (loads below): value row `c + j < d` holds `np` floats of `vf` and `8 * s + 8 <= np`;
    // `8 * s + 8 <= ps[i].len()`, as asserted; unaligned loads.
    let v = |j: usize, s: usize| unsafe { _mm256_loadu_ps(vf.as_ptr().add((c + j) * np + 8 * s)) };
    let common = steps.iter().copied().min().unwrap_or(0);
    for s in 0..common {
        let vv = [v(0, s), v(1, s), v(2, s), v(3, s)];
        for i in 0..R {
            // SAFETY: as above.
            let p = unsafe { _mm256_loadu_ps(ps[i].as_ptr().add(8 * s)) };
            for j in 0..4 {
                a[i][j] = _mm256_fmadd_ps(vv[j], p, a[i][j]);
            }
        }
    }
    for i in 0..R {
        for s in common..steps[i] {
            // SAFETY: as above.
            let p = unsafe { _mm256_loadu_ps(ps[i].as_ptr().add(8 * s)) };
            for (j, a) in a[i].iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(v(j, s), p, *a);
            }
        }
    }
    for i in 0..R {
        for j in 0..4 {
            // SAFETY: as for the loads.
            unsafe { _mm256_storeu_ps(acc[i * d + c + j].as_mut_ptr(), a[i][j]) };
        }
    }
}

/// f16 values widened to f32 (`dst[i] = src[i]`; the lengths are equal).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn widen(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    let n8 = src.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        // SAFETY: `i + 8 <= len` for both; unaligned 16-byte load and 32-byte store.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
    }
    for i in n8..src.len() {
        dst[i] = src[i].to_f32();
    }
}

/// f32 values rounded to f16, to nearest even (`dst[i] = src[i]`; the lengths are equal).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn narrow(src: &[f32], dst: &mut [f16]) {
    assert_eq!(src.len(), dst.len());
    let n8 = src.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        // SAFETY: `i + 8 <= len` for both; unaligned 32-byte load and 16-byte store.
        unsafe {
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
            _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, h);
        }
    }
    for i in n8..src.len() {
        dst[i] = f16::from_f32(src[i]);
    }
}

/// llama.cpp's `ggml_v_expf` for 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn expf8(x: __m256) -> __m256 {
    let [r, log2e, ln2_hi, ln2_lo, c5, c4, c3, c2, c1] = EXPF_CONSTS.map(|c| _mm256_set1_ps(c));
    let z = _mm256_fmadd_ps(x, log2e, r);
    let n = _mm256_sub_ps(z, r);
    let b = _mm256_fnmadd_ps(n, ln2_lo, _mm256_fnmadd_ps(n, ln2_hi, x));
    let e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    let k = _mm256_castsi256_ps(_mm256_add_epi32(
        e,
        _mm256_castps_si256(_mm256_set1_ps(1.0)),
    ));
    let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let c = _mm256_castps_si256(_mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0), _CMP_GT_OQ));
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(c5, b, c4), u, _mm256_fmadd_ps(c3, b, c2)),
        u,
        _mm256_mul_ps(c1, b),
    );
    if _mm256_movemask_ps(_mm256_castsi256_ps(c)) == 0 {
        return _mm256_fmadd_ps(j, k, k);
    }
    let g = _mm256_and_si256(
        _mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
        _mm256_set1_epi32(0x8200_0000u32 as i32),
    );
    let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
    let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    let d = _mm256_castps_si256(_mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0), _CMP_GT_OQ));
    let cf = _mm256_castsi256_ps(c);
    let df = _mm256_castsi256_ps(d);
    _mm256_or_ps(
        _mm256_and_ps(df, _mm256_mul_ps(s1, s1)),
        _mm256_andnot_ps(
            df,
            _mm256_or_ps(
                _mm256_and_ps(cf, _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
                _mm256_andnot_ps(cf, _mm256_fmadd_ps(k, j, k)),
            ),
        ),
    )
}

/// See [`super::scalar::softmax_exp`].
#[target_feature(enable = "avx2,fma,f16c")]
pub fn softmax_exp(x: &[f32], y: &mut [f32], max: f32) -> f64 {
    let mut sum = 0f64;
    let m = _mm256_set1_ps(max);
    for (cx, cy) in x.chunks_exact(8).zip(y.chunks_exact_mut(8)) {
        // SAFETY: `cx` and `cy` hold 8 floats each; the loads and stores are unaligned.
        let v = expf8(_mm256_sub_ps(unsafe { _mm256_loadu_ps(cx.as_ptr()) }, m));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(cy.as_mut_ptr(), v) };
        sum += hsum(v) as f64;
    }
    sum
}

/// See [`super::scalar::rope_row`] (the same code, compiled with FMA).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn rope_row(
    row: &mut [f32],
    dim: usize,
    rope_dim: usize,
    mode: super::RopeMode,
    cos: &[f32],
    sin: &[f32],
) {
    super::scalar::rope_row(row, dim, rope_dim, mode, cos, sin)
}

/// See [`super::scalar::swiglu`].
#[target_feature(enable = "avx2,fma,f16c")]
pub fn swiglu(x: &[f32], g: &[f32], y: &mut [f32]) {
    let n = y.len();
    assert!(x.len() >= n && g.len() >= n);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n` and all three slices hold at least `n` floats; unaligned accesses.
        unsafe {
            let xv = _mm256_loadu_ps(x.as_ptr().add(i));
            let e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), xv));
            let silu = _mm256_div_ps(xv, _mm256_add_ps(_mm256_set1_ps(1.0), e));
            let out = _mm256_mul_ps(silu, _mm256_loadu_ps(g.as_ptr().add(i)));
            _mm256_storeu_ps(y.as_mut_ptr().add(i), out);
        }
        i += 8;
    }
    for i in i..n {
        y[i] = x[i] / (1.0 + (-x[i]).exp()) * g[i];
    }
}
