//! The attention kernel against a straightforward f64 reference, and the AVX2 path against the
//! portable one (bit for bit).

use super::*;

/// A small deterministic generator (xorshift) of values in `[-a, a)`.
struct Rng(u64);

impl Rng {
    fn next(&mut self, a: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
    fn vec(&mut self, n: usize, a: f32) -> Vec<f32> {
        (0..n).map(|_| self.next(a)).collect()
    }
}

fn halves(v: &[f32]) -> Vec<f16> {
    v.iter().map(|x| f16::from_f32(*x)).collect()
}

/// Plain attention in f64 over the f16 cache contents.
fn reference(dims: &AttnDims, q: &[f32], kv: &KvBlocks, pos0: usize, sc: &Scores) -> Vec<f32> {
    let (nh, d) = (dims.n_head, dims.head_dim);
    let t = q.len() / (nh * d);
    let mut out = vec![0f32; t * nh * d];
    for i in 0..t {
        for h in 0..nh {
            let kvh = h / (nh / dims.n_head_kv);
            let n = pos0 + i + 1;
            let qi = &q[(i * nh + h) * d..][..d];
            // Only the keys inside the window, if any: the query at pos0 + i sees
            // pos0 + i - window + 1 ..= pos0 + i.
            let lo = sc.window.map_or(0, |w| n.saturating_sub(w));
            let s: Vec<f64> = (lo..n)
                .map(|j| {
                    let kr = kv.key(kvh, j);
                    let dot = qi
                        .iter()
                        .zip(kr)
                        .map(|(a, b)| *a as f64 * b.to_f64())
                        .sum::<f64>();
                    let capped = sc
                        .softcap
                        .map_or(dot, |c| c as f64 * (dot / c as f64).tanh());
                    capped * sc.scale as f64
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..d {
                let row: Vec<f16> = kv
                    .value_rows(kvh, 0, n)
                    .runs(c)
                    .flatten()
                    .copied()
                    .collect();
                let o: f64 = (lo..n).map(|j| e[j - lo] / z * row[j].to_f64()).sum();
                out[(i * nh + h) * d + c] = o as f32;
            }
        }
    }
    out
}

fn setup(dims: &AttnDims, n: usize, seed: u64) -> KvBlocks {
    let mut r = Rng(seed);
    let mut kv = KvBlocks::new(dims.n_head_kv, dims.head_dim, dims.n_ctx);
    let per = dims.n_head_kv * dims.head_dim;
    kv.store(0, &r.vec(n * per, 3.0), &r.vec(n * per, 2.0));
    kv
}

#[test]
fn expf_matches_exp_and_edges() {
    for i in -2000..2000 {
        let x = i as f32 * 0.05;
        let (a, b) = (scalar::expf(x), (x as f64).exp());
        if b > 1e-37 && b < 1e38 {
            assert!(((a as f64 - b) / b).abs() < 2e-6, "{x}: {a} vs {b}");
        }
    }
    assert_eq!(scalar::expf(f32::NEG_INFINITY), 0.0);
    assert_eq!(scalar::expf(0.0), 1.0);
}

#[test]
fn scalar_helpers_match_plain_sums() {
    let mut r = Rng(7);
    for n in [8, 32, 64, 72, 96, 100] {
        let x = halves(&r.vec(n, 2.0));
        let y = halves(&r.vec(n, 2.0));
        let exact: f64 = x.iter().zip(&y).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
        assert!((scalar::dot_vec(&x, &y) as f64 - exact).abs() < 1e-4);
        if n % 8 == 0 {
            assert!((scalar::dot_gemm(&x, &y) as f64 - exact).abs() < 1e-4);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_helpers_equal_scalar_bits() {
    let Some(isa) = Isa::avx2() else { return };
    assert!(isa.has_avx2());
    let mut r = Rng(11);
    for n in [8, 32, 64, 72, 96, 100, 256, 1000] {
        let x = halves(&r.vec(n, 4.0));
        let y = halves(&r.vec(n, 4.0));
        // SAFETY: AVX2, FMA and F16C were detected above.
        let v = unsafe { avx2::dot_vec(&x, &y) };
        assert_eq!(
            v.to_bits(),
            scalar::dot_vec(&x, &y).to_bits(),
            "dot_vec {n}"
        );
        if n % 8 == 0 {
            // SAFETY: as above.
            let g = unsafe { avx2::dot_gemm(&x, &y) };
            assert_eq!(
                g.to_bits(),
                scalar::dot_gemm(&x, &y).to_bits(),
                "dot_gemm {n}"
            );
            let mut s = r.vec(n, 30.0);
            s[n - 1] = f32::NEG_INFINITY;
            s[0] = -300.0;
            let max = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let (mut ya, mut ys) = (vec![0f32; n], vec![0f32; n]);
            // SAFETY: as above.
            let sa = unsafe { avx2::softmax_exp(&s, &mut ya, max) };
            let ss = scalar::softmax_exp(&s, &mut ys, max);
            assert_eq!(sa.to_bits(), ss.to_bits(), "softmax sum {n}");
            assert!(ya.iter().zip(&ys).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

/// GeGLU: ggml's f16 GELU table within f16 rounding of the exact tanh-form GELU, the clamps at
/// +-10, and the one table entry where GCC's fused multiply-add changes the f16 result
/// (x = -1.9990234: 0xa9d3 fused, 0xa9d2 unfused; found by compiling `ggml_gelu_f32` both ways).
#[test]
fn geglu_is_ggml_table_gelu() {
    let gelu64 = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
    };
    let x: Vec<f32> = (-1200..1200).map(|i| i as f32 / 97.0).collect();
    let g: Vec<f32> = (0..x.len()).map(|i| 1.0 + (i % 7) as f32 / 8.0).collect();
    let mut y = vec![0f32; x.len()];
    geglu(&x, &g, &mut y);
    for ((x, g), y) in x.iter().zip(&g).zip(&y) {
        let want = if *x <= -10.0 {
            0.0
        } else if *x >= 10.0 {
            (x * g) as f64
        } else {
            gelu64(f16::from_f32(*x).to_f64()) * *g as f64
        };
        let tol = 2e-3 * want.abs().max(1e-2);
        assert!(
            (*y as f64 - want).abs() <= tol,
            "gelu({x}) * {g}: {y} vs {want}"
        );
    }
    let mut one = [0f32];
    geglu(&[f16::from_bits(0xbfff).to_f32()], &[1.0], &mut one);
    assert_eq!(f16::from_f32(one[0]).to_bits(), 0xa9d3);
}

#[test]
fn swiglu_matches_plain_silu() {
    let mut r = Rng(5);
    for n in [1, 7, 8, 20, 1536] {
        let (x, g) = (r.vec(n, 12.0), r.vec(n, 3.0));
        let mut y = vec![0f32; n];
        scalar::swiglu(&x, &g, &mut y);
        for i in 0..n {
            let want = x[i] as f64 / (1.0 + (-x[i] as f64).exp()) * g[i] as f64;
            assert!(
                (y[i] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{n} {i}"
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_swiglu_equals_scalar_bits() {
    let Some(isa) = Isa::avx2() else { return };
    let mut r = Rng(13);
    for n in [1, 7, 8, 20, 576, 1536] {
        let (mut x, g) = (r.vec(n, 40.0), r.vec(n, 3.0));
        // saturated lanes: exp(-x) overflows or underflows
        x[0] = -150.0;
        if n > 1 {
            x[1] = 150.0;
        }
        let (mut ya, mut ys) = (vec![0f32; n], vec![0f32; n]);
        swiglu(isa, &x, &g, &mut ya);
        scalar::swiglu(&x, &g, &mut ys);
        assert!(
            ya.iter().zip(&ys).all(|(a, b)| a.to_bits() == b.to_bits()),
            "swiglu {n}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_rope_equals_scalar_bits() {
    let Some(isa) = Isa::avx2() else { return };
    let mut r = Rng(14);
    // Two heads of 64, the first 32 of each rotated (partial rotary), as in the forward pass.
    let (cos, sin) = (r.vec(16, 1.0), r.vec(16, 1.0));
    let x = r.vec(128, 30.0);
    let (mut a, mut s) = (x.clone(), x.clone());
    rope_row(isa, &mut a, 64, 32, RopeMode::Normal, &cos, &sin);
    scalar::rope_row(&mut s, 64, 32, RopeMode::Normal, &cos, &sin);
    assert!(a.iter().zip(&s).all(|(a, b)| a.to_bits() == b.to_bits()));
    let want = x[0].mul_add(cos[0], -(x[1] * sin[0]));
    assert_eq!(a[0].to_bits(), want.to_bits());
    assert_eq!(a[32..64], x[32..64]);
    // NEOX pairs value p with p + 16 (half of the 32 rotated), with the same angle.
    let (mut a, mut s) = (x.clone(), x.clone());
    rope_row(isa, &mut a, 64, 32, RopeMode::Neox, &cos, &sin);
    scalar::rope_row(&mut s, 64, 32, RopeMode::Neox, &cos, &sin);
    assert!(a.iter().zip(&s).all(|(a, b)| a.to_bits() == b.to_bits()));
    for p in [0, 5, 15] {
        let want = x[p].mul_add(cos[p], -(x[p + 16] * sin[p]));
        assert_eq!(a[p].to_bits(), want.to_bits());
        let want = x[p].mul_add(sin[p], x[p + 16] * cos[p]);
        assert_eq!(a[p + 16].to_bits(), want.to_bits());
    }
    assert_eq!(a[32..64], x[32..64]);
}

fn check(dims: AttnDims, pos0: usize, t: usize, seed: u64) {
    let scale = Scores::scaled(1.0 / (dims.head_dim as f32).sqrt());
    check_scores(dims, pos0, t, seed, &scale)
}

fn check_scores(dims: AttnDims, pos0: usize, t: usize, seed: u64, scale: &Scores) {
    let kv = setup(&dims, pos0 + t, seed);
    let q = Rng(seed + 1).vec(t * dims.n_head * dims.head_dim, 2.0);
    let want = reference(&dims, &q, &kv, pos0, scale);
    let got = attention(Isa::scalar(), &dims, &q, &kv, pos0, scale);
    // Blocks of queries computed together give the bits of one query at a time, on both paths.
    let mut isas = vec![Isa::scalar()];
    isas.extend(Isa::avx2());
    for isa in isas {
        let one = attention_by(isa, &dims, &q, &kv, pos0, scale, false, true);
        let blocked = attention_by(isa, &dims, &q, &kv, pos0, scale, true, true);
        let same = one
            .iter()
            .zip(&blocked)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{} blocked != one by one: {dims:?} pos0 {pos0} t {t}",
            isa.name()
        );
    }
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        err < 5e-3,
        "{dims:?} {scale:?} pos0 {pos0} t {t}: max error {err}"
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = Isa::avx2() {
        let fast = attention(isa, &dims, &q, &kv, pos0, scale);
        assert!(
            fast.iter()
                .zip(&got)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "avx2 != scalar"
        );
    }
}

/// A sliding window (Gemma 2 and 3) and a soft cap of the scores (Gemma 2), over prefill blocks
/// that start inside and outside the window, and decode: the masked keys contribute nothing and
/// the blocked and one-by-one paths still give the same bits.
#[test]
fn attention_with_window_and_softcap_matches_reference() {
    let dims = AttnDims {
        n_head: 4,
        n_head_kv: 1,
        head_dim: 64,
        n_ctx: 200,
    };
    let windowed = Scores {
        scale: 0.125,
        softcap: None,
        window: Some(24),
    };
    let capped = Scores {
        scale: 1.0,
        softcap: Some(5.0),
        window: Some(40),
    };
    for sc in [windowed, capped] {
        for (pos0, t) in [(0, 50), (10, 37), (100, 1), (23, 1), (150, 20)] {
            check_scores(dims, pos0, t, 7 + pos0 as u64, &sc);
        }
    }
    // A window of one key: each query attends only to itself.
    let own = Scores {
        scale: 0.125,
        softcap: None,
        window: Some(1),
    };
    check_scores(dims, 5, 9, 3, &own);
    assert_eq!(own.first_key(5), 5);
    assert_eq!(windowed.first_key(10), 0);
    assert_eq!(windowed.first_key(30), 7);
}

#[test]
fn attention_matches_reference_prefill_and_decode() {
    let dims = AttnDims {
        n_head: 6,
        n_head_kv: 2,
        head_dim: 64,
        n_ctx: 200,
    };
    check(dims, 0, 37, 1);
    check(dims, 37, 1, 2);
    check(dims, 150, 1, 3);
    check(dims, 100, 50, 4);
    // Longer: key and value chunks of 64 split inside blocks; an odd last block; small heads.
    let long = AttnDims { n_ctx: 330, ..dims };
    check(long, 70, 251, 11);
    for head_dim in [8, 16] {
        check(AttnDims { head_dim, ..long }, 0, 133, 12);
    }
}

#[test]
fn attention_odd_head_dims() {
    // head_dim 20: tinyBLAS refuses the K·Q product (20 % 8 != 0) but takes K·V (20 % 4 == 0).
    check(
        AttnDims {
            n_head: 4,
            n_head_kv: 4,
            head_dim: 20,
            n_ctx: 70,
        },
        0,
        33,
        5,
    );
    check(
        AttnDims {
            n_head: 4,
            n_head_kv: 1,
            head_dim: 20,
            n_ctx: 70,
        },
        33,
        1,
        6,
    );
    check(
        AttnDims {
            n_head: 2,
            n_head_kv: 1,
            head_dim: 6,
            n_ctx: 40,
        },
        3,
        9,
        7,
    );
}

#[test]
fn first_position_returns_the_value() {
    let dims = AttnDims {
        n_head: 2,
        n_head_kv: 1,
        head_dim: 32,
        n_ctx: 8,
    };
    let kv = setup(&dims, 1, 9);
    let q = Rng(10).vec(2 * 32, 1.0);
    let out = attention(Isa::detected(), &dims, &q, &kv, 0, &Scores::scaled(0.1));
    for h in 0..2 {
        for c in 0..32 {
            let v0 = kv.value_rows(0, 0, 1).runs(c).next().unwrap()[0];
            assert_eq!(out[h * 32 + c], v0.to_f32());
        }
    }
}

/// Skipping the keys and values before a window gives the bits of computing them all and masking
/// them (which is what llama.cpp does), for windows that start anywhere relative to the SIMD lanes
/// (8, 32) and chunks (64): on the decode path (vec_dot), and on the prefill paths, blocked and
/// one by one.
#[test]
fn a_window_skips_exactly_what_it_masks() {
    let dims = AttnDims {
        n_head: 4,
        n_head_kv: 2,
        head_dim: 64,
        n_ctx: 300,
    };
    let kv = setup(&dims, 300, 21);
    let mut isas = vec![Isa::scalar()];
    isas.extend(Isa::avx2());
    let mut skipped = 0;
    for (pos, t) in [(150, 1), (201, 1), (97, 16), (130, 40), (0, 70)] {
        let q = Rng(pos as u64 + 5).vec(t * dims.n_head * dims.head_dim, 2.0);
        for w in [1, 7, 33, 64, 65, 100, 129] {
            let sc = Scores {
                scale: 0.125,
                softcap: None,
                window: Some(w),
            };
            skipped += usize::from(sc.first_key(pos) >= 8);
            for isa in &isas {
                for blocked in [false, true] {
                    let a = attention_by(*isa, &dims, &q, &kv, pos, &sc, blocked, true);
                    let b = attention_by(*isa, &dims, &q, &kv, pos, &sc, blocked, false);
                    assert!(
                        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{} pos {pos} t {t} window {w} blocked {blocked}",
                        isa.name()
                    );
                }
            }
        }
    }
    assert!(skipped > 20, "only {skipped} cases skip anything");
}
