//! The whole transformer on the GPU backends, its weight matrices in device memory where chord
//! has a kernel for their format (Q4_K, Q6_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): a prefill batch and
//! single-token decode steps of SmolLM2, each position's logits held against the exact float64
//! forward pass (scripts/reference_forward.py) beside the CPU backend's on the same weights and
//! tokens.
//!
//! GPU and CPU do not compute the same bits by design: the GPU kernels multiply f32 activations
//! and attend with f32 queries, the CPU ones (like llama.cpp's) quantize activations to 8 bits and
//! round queries to f16 (both keep an f16 cache), and the two sum in other orders (see shared/design/gpu.md). So each is
//! measured by its mean KL divergence from the reference, and the GPU's may be no larger than
//! 1.25 times the CPU's (which equals llama.cpp's), the bound for quantized files.
//!
//! A build with a GPU feature needs its device: without one these tests fail, they do not skip.
//! Run: `cargo test --release --features wgpu --test gpu_model`.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

mod common;
#[path = "common/logits.rs"]
mod logits;
use chord::backend::{ChordBackend, Cpu, Traffic};
use chord::gguf::GgufFile;
use chord::model::*;
use std::process::Command;
use std::sync::Arc;

/// A prompt of SmolLM2's vocabulary ("The capital of France is" and more), then decode steps.
const PROMPT: &[u32] = &[504, 3575, 282, 4649, 314, 2060];
const DECODE: &[u32] = &[28, 1345, 2000, 905, 451, 260];

/// Mean and largest KL divergence of softmax(b) from softmax(a) over rows of `v` logits, and the
/// rows whose most likely tokens differ.
fn compare(a: &[f32], b: &[f32], v: usize) -> (f64, f64, usize) {
    let (mut sum, mut max, mut differ) = (0f64, 0f64, 0);
    let rows = a.len() / v;
    for (ra, rb) in a.chunks_exact(v).zip(b.chunks_exact(v)) {
        let kl = logits::kl(ra, rb);
        sum += kl;
        max = max.max(kl);
        let top = |r: &[f32]| chord::session::sampler::argmax(r);
        differ += usize::from(top(ra) != top(rb));
    }
    (sum / rows as f64, max, differ)
}

/// Every position's logits: the prompt as one batch, then each decode token alone; and the
/// launches and transfers of the decode steps.
fn run<B: ChordBackend>(core: &Arc<ModelCore>, device: B::Device) -> (Vec<f32>, Traffic) {
    let mut t = Transformer::<B>::new(core.clone(), 64, device).unwrap();
    let mut out = t.eval(PROMPT, WantLogits::All, &|| false).unwrap();
    let before = core.traffic();
    for &tok in DECODE {
        out.extend(t.eval(&[tok], WantLogits::Last, &|| false).unwrap());
    }
    (out, core.traffic().since(before))
}

/// The float64 reference logits of PROMPT then DECODE on `model` (scripts/reference_forward.py in
/// the test venv of scripts/fetch-test-data.sh), computed once and kept in the cache folder.
fn reference(file: &str) -> Vec<f32> {
    let dir = common::cache_dir().join("reference");
    std::fs::create_dir_all(&dir).unwrap();
    let tokens: Vec<String> = PROMPT.iter().chain(DECODE).map(u32::to_string).collect();
    let tokens = tokens.join(" ");
    let out = dir.join(format!("{file}.{}.f64", tokens.replace(' ', "-")));
    if !out.exists() {
        let python = common::cache_dir().join("venv/bin/python");
        let part = out.with_extension("part");
        let st = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/reference_forward.py"
            ))
            .arg(common::model(file))
            .args(["--tokens", &tokens, "--out"])
            .arg(&part)
            .status()
            .unwrap_or_else(|e| {
                panic!("{}: {e} (run scripts/fetch-test-data.sh)", python.display())
            });
        assert!(st.success(), "reference_forward.py failed on {file}");
        std::fs::rename(&part, &out).unwrap();
    }
    std::fs::read(&out)
        .unwrap()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
        .collect()
}

fn check<B: ChordBackend>(name: &str, device: B::Device) {
    for file in [
        "SmolLM2-135M-Instruct.Q8_0.gguf",
        "SmolLM2-135M-Instruct.Q4_K_M.gguf",
    ] {
        let f = GgufFile::open(common::model(file)).unwrap();
        let cfg = Config::from_gguf(&f).unwrap();
        let weights = Weights::from_gguf(&f, &cfg).unwrap();
        let core = Arc::new(ModelCore::new(cfg, weights));
        let v = core.cfg.n_vocab;
        let exact = reference(file);
        let (cpu, none) = run::<Cpu>(&core, Default::default());
        assert_eq!(
            none,
            Traffic::default(),
            "the CPU counts no launches or transfers"
        );
        let (gpu, traffic) = run::<B>(&core, device.clone());
        let per_token = |n: u64| n as f64 / DECODE.len() as f64;
        eprintln!(
            "{name} {file}: per decoded token {} launches, {} uploads ({} bytes), {} downloads \
             ({} bytes)",
            per_token(traffic.launches),
            per_token(traffic.uploads),
            per_token(traffic.upload_bytes),
            per_token(traffic.downloads),
            per_token(traffic.download_bytes)
        );
        // Every matrix of both files has a kernel: per token, the embedding and the RoPE angles
        // go up, the logits come back, and nothing else crosses; each layer launches 14 kernels
        // (norm, q, k, v, RoPE of q and of k, cache write, attention, output, norm, gate, up,
        // activation, down), then the output norm and product.
        let n = DECODE.len() as u64;
        assert_eq!(
            (traffic.uploads, traffic.downloads, traffic.launches),
            (3 * n, n, (14 * core.cfg.n_layer as u64 + 2) * n),
            "{name} {file}: transfers and launches of the decode steps"
        );
        assert_eq!(cpu.len(), exact.len());
        assert_eq!(gpu.len(), exact.len());
        assert!(
            gpu.iter().all(|x| x.is_finite()),
            "{name} {file}: non-finite logits"
        );
        let (cpu_kl, cpu_max, cpu_differ) = compare(&exact, &cpu, v);
        let (gpu_kl, gpu_max, gpu_differ) = compare(&exact, &gpu, v);
        let (between, _, _) = compare(&cpu, &gpu, v);
        eprintln!(
            "{name} {file}, {} positions, KL from the f64 reference: cpu mean {cpu_kl:.2e} max \
             {cpu_max:.2e} (top-1 differs at {cpu_differ}), {name} mean {gpu_kl:.2e} max \
             {gpu_max:.2e} (top-1 differs at {gpu_differ}); cpu to {name}: {between:.2e}",
            exact.len() / v
        );
        assert!(
            gpu_kl <= 1.25 * cpu_kl,
            "{name} {file}: mean KL {gpu_kl:.3e} from the reference, the CPU's {cpu_kl:.3e}"
        );
        assert!(
            gpu_differ <= cpu_differ + 1,
            "{name} {file}: top-1 differs from the reference at {gpu_differ} positions, the \
             CPU's at {cpu_differ}"
        );
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_transformer_is_as_close_to_the_reference_as_the_cpu() {
    check::<chord::backend::Wgpu>("wgpu", Default::default());
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_transformer_is_as_close_to_the_reference_as_the_cpu() {
    if let Some(why) = chord::backend::cuda_unavailable() {
        panic!("this test needs CUDA: {why}");
    }
    check::<chord::backend::Cuda>("cuda", Default::default());
}

/// Loading with `--backend cuda` either works (CUDA's pieces and a device are there) or fails
/// with `Unsupported` naming what is missing, never a panic: on CI's machine (no GPU, no CUDA)
/// the second.
#[cfg(feature = "cuda")]
#[test]
fn backend_choice_cuda_loads_or_says_why() {
    let opts = ModelOptions {
        backend: BackendKind::Cuda,
        ..Default::default()
    };
    let got = Model::load(common::default_model(), &opts);
    match chord::backend::cuda_unavailable() {
        None => assert_eq!(got.unwrap().backend(), BackendKind::Cuda),
        Some(why) => {
            let e = got.err().expect("loading without CUDA fails");
            assert_eq!(e.code(), chord::ErrorCode::Unsupported, "{e}");
            assert!(e.message().contains(&why), "{e}");
            eprintln!("--backend cuda here: {e}");
        }
    }
}
