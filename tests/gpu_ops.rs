//! The GPU backends' own layer operations (chord's kernels in `backend::cube::layer`) against
//! float64 references computed here: RMS norm with and without the residual add, the gated
//! activations, RoPE in both modes with a partial rotation, and the f16 KV cache (its rounding,
//! its write, causal attention for decode and prefill, grouped heads, a sliding window, a soft
//! cap, more keys than one chunk of the kernel) with its export, import and fork; and the launch
//! counter.
//!
//! A build with a GPU feature needs its device: without one these tests fail, they do not skip.
//! Run: `cargo test --release --features wgpu --test gpu_ops`.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use burn_tensor::{Tensor, TensorData};
use chord::attn::{Glu, RopeMode, Scores};
use chord::backend::{traffic, ChordBackend, KvType};
use half::f16;

/// Deterministic values in about [-scale, scale].
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<B: ChordBackend, const D: usize>(
    v: &[f32],
    shape: [usize; D],
    dev: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
}

fn host<B: ChordBackend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.into_data().into_vec::<f32>().unwrap()
}

/// Asserts `got` is within `tol` of `want` relative to the largest magnitude of `want`.
fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mag = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs() / mag;
        assert!(
            err <= tol,
            "{what}: value {i} is {g}, want {w} (error {err:e} of the largest)"
        );
    }
}

fn rms_ref(x: &[f32], w: &[f32], d: usize, eps: f32) -> Vec<f64> {
    x.chunks_exact(d)
        .flat_map(|r| {
            let ms = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
            let inv = 1.0 / (ms + eps as f64).sqrt();
            r.iter()
                .zip(w)
                .map(move |(&v, &w)| v as f64 * inv * w as f64)
        })
        .collect()
}

fn norms<B: ChordBackend>(dev: &B::Device) {
    let (rows, d, eps) = (3, 600, 1e-5);
    let x = values(rows * d, 1, 2.0);
    let r = values(rows * d, 2, 1.0);
    let w = values(d, 3, 1.5);
    let wt = tensor::<B, 1>(&w, [d], dev);
    let y = host(B::rms_norm(tensor(&x, [rows, d], dev), &wt, eps));
    close("rms_norm", &y, &rms_ref(&x, &w, d, eps), 1e-5);
    let (s, y) = B::add_rms_norm(
        tensor(&x, [rows, d], dev),
        tensor(&r, [rows, d], dev),
        &wt,
        eps,
    );
    let sum: Vec<f32> = x.iter().zip(&r).map(|(a, b)| a + b).collect();
    assert_eq!(
        host(s),
        sum,
        "add_rms_norm: the sum is one f32 addition per value"
    );
    close("add_rms_norm", &host(y), &rms_ref(&sum, &w, d, eps), 1e-5);
}

fn activations<B: ChordBackend>(dev: &B::Device) {
    let (rows, n) = (2, 700);
    let g = values(rows * n, 4, 6.0);
    let u = values(rows * n, 5, 2.0);
    for kind in [Glu::Silu, Glu::Gelu] {
        let y = host(B::glu(
            tensor(&g, [rows, n], dev),
            tensor(&u, [rows, n], dev),
            kind,
        ));
        let want: Vec<f64> = g
            .iter()
            .zip(&u)
            .map(|(&g, &u)| {
                let (g, u) = (g as f64, u as f64);
                let a = match kind {
                    Glu::Silu => g / (1.0 + (-g).exp()),
                    Glu::Gelu => {
                        0.5 * g
                            * (1.0
                                + (0.797_884_560_802_865_4 * g * (1.0 + 0.044715 * g * g)).tanh())
                    }
                };
                a * u
            })
            .collect();
        close(&format!("glu {kind:?}"), &y, &want, 1e-5);
    }
}

fn rope<B: ChordBackend>(dev: &B::Device) {
    let (t, heads, dim, rope_dim) = (3, 4, 64, 48);
    let half = rope_dim / 2;
    let x = values(t * heads * dim, 6, 1.0);
    let ang: Vec<f32> = (0..t * half).map(|i| i as f32 * 0.37).collect();
    let (cs, sn): (Vec<f32>, Vec<f32>) = ang.iter().map(|a| (a.cos(), a.sin())).unzip();
    let (ct, st) = (
        tensor::<B, 3>(&cs, [t, 1, half], dev),
        tensor::<B, 3>(&sn, [t, 1, half], dev),
    );
    for mode in [RopeMode::Normal, RopeMode::Neox] {
        let y = host(B::rope(
            tensor(&x, [t, heads, dim], dev),
            &ct,
            &st,
            rope_dim,
            mode,
        ));
        let mut want: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for (ri, row) in want.chunks_exact_mut(dim).enumerate() {
            let p = ri / heads;
            for j in 0..half {
                let (i0, i1) = match mode {
                    RopeMode::Normal => (2 * j, 2 * j + 1),
                    RopeMode::Neox => (j, j + half),
                };
                let (c, s) = (cs[p * half + j] as f64, sn[p * half + j] as f64);
                let (x0, x1) = (row[i0], row[i1]);
                row[i0] = x0 * c - x1 * s;
                row[i1] = x0 * s + x1 * c;
            }
        }
        close(&format!("rope {mode:?}"), &y, &want, 1e-6);
    }
}

/// Attention over f16-rounded keys and values, in float64.
#[allow(clippy::too_many_arguments)]
fn attention_ref(
    q: &[f32],
    keys: &[f32],
    vals: &[f32],
    t: usize,
    pos0: usize,
    (n_head, n_head_kv, hd): (usize, usize, usize),
    scores: &Scores,
) -> Vec<f64> {
    let r = |v: f32| f16::from_f32(v).to_f64();
    let mut out = vec![0f64; t * n_head * hd];
    for i in 0..t {
        let p = pos0 + i;
        for h in 0..n_head {
            let kh = h / (n_head / n_head_kv);
            let qv = &q[(i * n_head + h) * hd..][..hd];
            let lo = scores.first_key(p);
            let s: Vec<f64> = (lo..=p)
                .map(|j| {
                    let k = &keys[(j * n_head_kv + kh) * hd..][..hd];
                    let mut dot: f64 = qv.iter().zip(k).map(|(&a, &b)| a as f64 * r(b)).sum();
                    if let Some(cap) = scores.softcap {
                        dot = (dot / cap as f64).tanh() * cap as f64;
                    }
                    dot * scores.scale as f64
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            for (jj, j) in (lo..=p).enumerate() {
                let v = &vals[(j * n_head_kv + kh) * hd..][..hd];
                for d in 0..hd {
                    out[(i * n_head + h) * hd + d] += e[jj] / sum * r(v[d]);
                }
            }
        }
    }
    out
}

fn kv_cache<B: ChordBackend>(dev: &B::Device) {
    let (n_head, n_head_kv, n_ctx) = (4, 2, 320);
    for hd in [64, 80] {
        let cases = [
            Scores::scaled(0.125),
            Scores {
                scale: 0.1,
                softcap: Some(20.0),
                window: Some(5),
            },
        ];
        for scores in cases {
            let mut cache = B::kv_cache(n_head_kv, n_ctx, hd, KvType::F16, dev);
            assert_eq!(B::kv_type(&cache), KvType::F16);
            let all = n_ctx - 10;
            let keys = values(all * n_head_kv * hd, 7 + hd as u64, 3.0);
            let vals = values(all * n_head_kv * hd, 8 + hd as u64, 2.0);
            let q = values(all * n_head * hd, 9 + hd as u64, 1.0);
            // A prefill of 7, then 293 at once (more keys than one chunk), then decodes.
            let mut pos = 0;
            for t in [7, 293, 1, 1, 1, 2] {
                let kv = |v: &[f32]| {
                    tensor::<B, 3>(
                        &v[pos * n_head_kv * hd..][..t * n_head_kv * hd],
                        [t, n_head_kv, hd],
                        dev,
                    )
                };
                B::kv_store(&mut cache, pos, kv(&keys), kv(&vals));
                let qt = &q[pos * n_head * hd..][..t * n_head * hd];
                let got = host(B::kv_attention(
                    tensor(qt, [t, n_head, hd], dev),
                    &cache,
                    pos,
                    &scores,
                ));
                let want =
                    attention_ref(qt, &keys, &vals, t, pos, (n_head, n_head_kv, hd), &scores);
                close(
                    &format!("attention hd {hd} t {t} at {pos} {scores:?}"),
                    &got,
                    &want,
                    2e-5,
                );
                pos += t;
            }
            // Export: the f16 bits of what was stored, [head][position][value].
            let rows = B::kv_export(&cache, pos).unwrap();
            let bits = |v: &[f32]| -> Vec<u8> {
                (0..n_head_kv)
                    .flat_map(|h| (0..pos).flat_map(move |p| (0..hd).map(move |d| (p, h, d))))
                    .flat_map(|(p, h, d)| {
                        f16::from_f32(v[(p * n_head_kv + h) * hd + d]).to_le_bytes()
                    })
                    .collect()
            };
            assert!(
                rows.k == bits(&keys) && rows.v == bits(&vals),
                "export hd {hd}"
            );
            // Import into a new cache, fork it, and write the fork: the same attention, the
            // imported cache untouched by the fork's write.
            let mut other = B::kv_cache(n_head_kv, n_ctx, hd, KvType::F16, dev);
            B::kv_import(&mut other, pos, &rows).unwrap();
            let mut fork = B::kv_fork(&other, pos);
            let z = vec![0f32; n_head_kv * hd];
            B::kv_store(
                &mut fork,
                pos - 1,
                tensor(&z, [1, n_head_kv, hd], dev),
                tensor(&z, [1, n_head_kv, hd], dev),
            );
            assert_eq!(
                B::kv_export(&other, pos).unwrap(),
                rows,
                "import hd {hd}; fork wrote its parent"
            );
            assert_ne!(B::kv_export(&fork, pos).unwrap(), rows, "fork hd {hd}");
            assert_eq!(B::kv_bytes(&other), (2 * n_head_kv * n_ctx * hd * 2) as f64);
        }
    }
}

/// f16 rounding of the cache write: ties to even, subnormals, overflow to infinity, signs.
fn f16_rounding<B: ChordBackend>(dev: &B::Device) {
    let mut v: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        65504.0,
        65519.0,
        65520.0,
        1e6,
        -1e6,
        6.1e-5,
        5.96e-8,
        2.98e-8,
        2.99e-8,
        1e-10,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        3.0e-5,
        -4.5e-6,
        f32::INFINITY,
    ];
    v.extend(
        values(64 * 16 - v.len(), 11, 1.0)
            .iter()
            .enumerate()
            .map(|(i, x)| x * 10f32.powi(i as i32 % 12 - 8)),
    );
    let (n, hd) = (16, 64);
    let mut cache = B::kv_cache(1, n, hd, KvType::F16, dev);
    let x = tensor::<B, 3>(&v, [n, 1, hd], dev);
    B::kv_store(&mut cache, 0, x.clone(), x);
    let rows = B::kv_export(&cache, n).unwrap();
    for (i, (b, &x)) in rows.k.chunks_exact(2).zip(&v).enumerate() {
        let got = u16::from_le_bytes([b[0], b[1]]);
        assert_eq!(got, f16::from_f32(x).to_bits(), "value {i}: {x:e}");
    }
}

fn counted<B: ChordBackend>(dev: &B::Device) {
    let before = traffic();
    let d = 300;
    let w = tensor::<B, 1>(&values(d, 1, 1.0), [d], dev);
    let _ = B::rms_norm(tensor(&values(d, 2, 1.0), [1, d], dev), &w, 1e-6);
    assert_eq!(traffic().since(before).launches, 1, "one launch counted");
}

fn check<B: ChordBackend>(dev: B::Device) {
    norms::<B>(&dev);
    activations::<B>(&dev);
    rope::<B>(&dev);
    kv_cache::<B>(&dev);
    f16_rounding::<B>(&dev);
    counted::<B>(&dev);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_layer_operations_match_the_reference() {
    check::<chord::backend::Wgpu>(Default::default());
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_layer_operations_match_the_reference() {
    if let Some(why) = chord::backend::cuda_unavailable() {
        panic!("this test needs CUDA: {why}");
    }
    check::<chord::backend::Cuda>(Default::default());
}
