//! chord's quantized products against ggml's own, bit for bit, on the real SmolLM2-135M tensors.
//!
//! `scripts/ggml-matmul.c` (built here with `cc` against the pinned llama.cpp oracle,
//! `$LLAMA_CPP_PINNED_BIN`: built for AVX2, the same on every machine, see scripts/env.sh) runs
//! `ggml_mul_mat` on one tensor of a GGUF file, with the weight in the
//! CPU_REPACK buffer as llama.cpp puts mat-mul weights. For every format of every test file, the
//! first tensor of that format is multiplied with pseudo-random activations for several batch
//! sizes (1, the gemv/vec_dot path; 4 and 8, the gemm/tinyBLAS paths; 7 and 13, both) and every
//! output must have the same bits as chord's `quant::matmul_with` on its AVX2 path, whatever
//! `CHORD_ISA` says (that path reproduces the pinned build's order). A missing model, llama.cpp
//! build, C compiler or AVX2 fails the test.
mod common;

use chord::gguf::GgufFile;
use chord::quant::{matmul_with, GgmlType, Isa};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The pinned llama.cpp build folder of scripts/env.sh (`$LLAMA_CPP_PINNED_BIN`, else asked from
/// env.sh).
fn llama_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LLAMA_CPP_PINNED_BIN") {
        return PathBuf::from(p);
    }
    let env = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/env.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". '{}' && printf %s \"$LLAMA_CPP_PINNED_BIN\"",
            env.display()
        ))
        .output()
        .expect("run bash");
    PathBuf::from(String::from_utf8(out.stdout).unwrap())
}

/// Builds scripts/ggml-matmul.c once per test run; returns the binary.
fn harness() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = llama_bin();
        let inc = bin.join("../../ggml/include");
        assert!(
            bin.join("libggml-cpu.so").exists() && inc.join("ggml.h").exists(),
            "llama.cpp build missing at {}: run scripts/build-llamacpp.sh",
            bin.display()
        );
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ggml-matmul");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ggml-matmul.c");
        let st = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .arg(format!("-I{}", inc.display()))
            .arg(format!("-L{}", bin.display()))
            .args(["-lggml", "-lggml-base", "-lggml-cpu"])
            .arg(format!("-Wl,-rpath,{}", bin.display()))
            .status()
            .expect("run cc");
        assert!(st.success(), "building ggml-matmul failed");
        out
    })
}

/// Deterministic activations of roughly unit scale with a few large outliers (as after RMSNorm).
fn activations(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if i % 97 == 5 {
                u * 40.0
            } else {
                u * 3.0
            }
        })
        .collect()
}

/// ggml's product of tensor `name` of `model` with `x` (`m` rows).
fn ggml_product(model: &Path, name: &str, x: &[f32], m: usize, n: usize) -> Vec<f32> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}-{call}-{name}-{m}", std::process::id());
    let (xp, yp) = (dir.join(format!("{tag}.x")), dir.join(format!("{tag}.y")));
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&xp, bytes).unwrap();
    let out = Command::new(harness())
        .arg(model)
        .arg(name)
        .arg(&xp)
        .arg(m.to_string())
        .arg("4")
        .arg("1")
        .arg(&yp)
        .output()
        .expect("run ggml-matmul");
    assert!(
        out.status.success(),
        "ggml-matmul failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let y: Vec<f32> = std::fs::read(&yp)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let _ = std::fs::remove_file(&xp);
    let _ = std::fs::remove_file(&yp);
    assert_eq!(y.len(), m * n, "ggml-matmul output size");
    y
}

/// A file with every 256-multiple-wide weight in `ftype` (`llama-quantize --pure` of the F16
/// model; the 576-wide ones fall back to Q4_0), made once per test run: none of the test models
/// has Q2_K or Q3_K weights.
fn pure_model(ftype: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pure-{ftype}.gguf"));
    let st = Command::new(llama_bin().join("llama-quantize"))
        .arg("--pure")
        .arg(common::model("SmolLM2-135M-Instruct.F16.gguf"))
        .arg(&out)
        .args([ftype, "2"])
        .output()
        .expect("run llama-quantize");
    assert!(st.status.success(), "llama-quantize {ftype} failed");
    out
}

/// Compares chord with ggml on the first tensor of each format in `fmt`'s file; returns the
/// mismatching cases as text.
fn check_file(fmt: &str, formats: &[GgmlType]) -> Vec<String> {
    let model = common::model(&format!("SmolLM2-135M-Instruct.{fmt}.gguf"));
    check_model(fmt, &model, formats)
}

/// [`check_file`] on the file `model`, named `fmt` in messages.
fn check_model(fmt: &str, model: &Path, formats: &[GgmlType]) -> Vec<String> {
    let model = model.to_path_buf();
    let file = GgufFile::open(&model).unwrap();
    let mut failures = Vec::new();
    for &ty in formats {
        // A layer weight, else the token embedding (the tied output head).
        let of_type = |t: &&chord::gguf::TensorInfo| t.ty == ty && t.dims.len() == 2;
        let t = file
            .tensors()
            .iter()
            .filter(of_type)
            .find(|t| t.name.starts_with("blk."))
            .or_else(|| file.tensors().iter().find(of_type))
            .unwrap_or_else(|| panic!("{fmt}: no {} weight", ty.name()));
        let (k, n) = (t.row_len(), t.n_rows());
        for (seed, m) in [1usize, 4, 7, 8, 13].into_iter().enumerate() {
            let mut x = activations(m * k, seed as u64 + 1);
            // A tie of opposite signs for the largest magnitude, the negative first, in every
            // row's first block: llama.cpp's two Q8_K quantizers (`quantize_row_q8_K_ref` and,
            // for the repacked Q4_K gemm, `ggml_quantize_mat_q8_K_4x8`) give such a block scales
            // of opposite signs, and the products must still agree.
            for row in x.chunks_exact_mut(k) {
                row[3] = -40.0;
                row[17] = 40.0;
            }
            let want = ggml_product(&model, &t.name, &x, m, n);
            let mut got = vec![0.0f32; m * n];
            let avx2 =
                Isa::avx2().expect("the pinned oracle is an AVX2 build: this CPU lacks AVX2");
            matmul_with(avx2, ty, file.tensor_data(t), n, k, &x, m, &mut got).unwrap();
            let bad: Vec<usize> = (0..m * n)
                .filter(|&i| got[i].to_bits() != want[i].to_bits())
                .collect();
            if let Some(&i) = bad.first() {
                let max = bad
                    .iter()
                    .map(|&i| ((got[i] - want[i]) / want[i].abs().max(1e-6)).abs())
                    .fold(0.0f32, f32::max);
                failures.push(format!(
                    "{fmt} {} ({}) m={m}: {}/{} outputs differ (max rel {max:.2e}); first [{}][{}]: chord {} ggml {}",
                    t.name,
                    ty.name(),
                    bad.len(),
                    m * n,
                    i / n,
                    i % n,
                    got[i],
                    want[i]
                ));
            }
        }
    }
    failures
}

fn assert_file(fmt: &str, formats: &[GgmlType]) {
    let f = check_file(fmt, formats);
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn q4_0_file_matches_ggml() {
    assert_file("Q4_0", &[GgmlType::Q4_0, GgmlType::Q8_0]);
}

#[test]
fn q4_1_file_matches_ggml() {
    assert_file("Q4_1", &[GgmlType::Q4_1, GgmlType::Q8_0]);
}

#[test]
fn q8_0_file_matches_ggml() {
    assert_file("Q8_0", &[GgmlType::Q8_0]);
}

#[test]
fn q5_file_matches_ggml() {
    assert_file("Q5_0", &[GgmlType::Q5_0]);
    assert_file("Q5_1", &[GgmlType::Q5_1]);
}

#[test]
fn q6_k_file_matches_ggml() {
    assert_file("Q6_K", &[GgmlType::Q6_K]);
}

#[test]
fn q5_k_m_file_matches_ggml() {
    assert_file("Q5_K_M", &[GgmlType::Q5_K]);
}

#[test]
fn q4_k_m_file_matches_ggml() {
    assert_file("Q4_K_M", &[GgmlType::Q4_K]);
}

#[test]
fn q3_k_m_file_matches_ggml() {
    assert_file("Q3_K_M", &[GgmlType::Q4_K, GgmlType::Q5_K]);
}

#[test]
fn q2_k_and_q3_k_match_ggml() {
    let mut f = check_model("Q2_K (pure)", &pure_model("Q2_K"), &[GgmlType::Q2_K]);
    f.extend(check_model(
        "Q3_K_S (pure)",
        &pure_model("Q3_K_S"),
        &[GgmlType::Q3_K],
    ));
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn f16_file_matches_ggml() {
    assert_file("F16", &[GgmlType::F16]);
}

#[test]
fn bf16_file_matches_ggml() {
    assert_file("BF16", &[GgmlType::BF16]);
}
