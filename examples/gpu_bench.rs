//! GPU kernel benchmark: what one kernel launch costs, and chord's quantized matrix-vector
//! products (src/backend/cube) on weight shapes of the TinyLlama and Llama-2-7B models, alone and
//! as the products of a whole decoded token (every layer's seven matrices and the output, each
//! its own weights on the device, launched back to back, one sync per token).
//!
//! ```text
//! cargo run --release --features wgpu,cuda --example gpu_bench -- [cuda|wgpu] [PEAK_GBS]
//! cargo run --release --features wgpu,cuda --example gpu_bench -- model cuda|wgpu MODEL [PEAK_GBS]
//! cargo run --release --features wgpu,cuda --example gpu_bench -- prefill cuda|wgpu [TOKENS]
//! ```
//!
//! `prefill` times the products of a prompt of TOKENS tokens (default 64) on TinyLlama-shape
//! matrices in five formats with each number of tokens to a cube (`Tiling::tokens_per_cube`),
//! and each register tile of the tiled kernels (`PromptTile`): what the prompt products are
//! chosen by.
//!
//! `model` runs a GGUF model through chord's transformer on the GPU backend and on the CPU: the
//! KL divergence between their logits over a prompt and decode steps, the most likely tokens'
//! agreement, then the GPU's prefill and decode tok/s with the weight bytes per decoded token
//! over the time (GB/s, and the fraction of PEAK_GBS).
//!
//! PEAK_GBS is the device's memory bandwidth (default 4800, an H200's datasheet figure): each row
//! is reported as GB/s and as a fraction of it. Weights are random blocks with sane scales; the
//! results are checked by `tests/gpu_kernels.rs`, not here.

#[path = "../tests/common/blocks.rs"]
mod blocks;
#[path = "../tests/common/logits.rs"]
mod logits;

use chord::backend::cube::{
    self, launch_nop, plane_reduction, qmatmul_tiled_into, qmatvec_into, DeviceWeight, PromptTile,
    Tiling,
};
use chord::backend::{ChordBackend, Cpu};
use chord::gguf::GgufFile;
use chord::model::{Config, ModelCore, Transformer, WantLogits, Weights};
use chord::quant::GgmlType;
use cubecl::prelude::*;
use cubecl::server::Handle;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("model") {
        let (which, path) = (args.get(1).expect("backend"), args.get(2).expect("MODEL"));
        let peak: f64 = args.get(3).map_or(4800.0, |s| s.parse().expect("PEAK_GBS"));
        match which.as_str() {
            #[cfg(feature = "cuda")]
            "cuda" => model::<chord::backend::Cuda>("cuda", path, peak),
            #[cfg(feature = "wgpu")]
            "wgpu" => model::<chord::backend::Wgpu>("wgpu", path, peak),
            other => panic!("backend {other:?} is not in this build (features wgpu, cuda)"),
        }
        return;
    }
    if args.first().map(String::as_str) == Some("prefill") {
        let m: usize = args.get(2).map_or(64, |s| s.parse().expect("TOKENS"));
        match args.get(1).map_or("wgpu", String::as_str) {
            #[cfg(feature = "cuda")]
            "cuda" => {
                use cubecl::cuda::{CudaDevice, CudaRuntime};
                prefill(&CudaRuntime::client(&CudaDevice::default()), "cuda", m)
            }
            #[cfg(feature = "wgpu")]
            "wgpu" => {
                use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
                prefill(&WgpuRuntime::client(&WgpuDevice::DefaultDevice), "wgpu", m)
            }
            other => panic!("runtime {other:?} is not in this build (features wgpu, cuda)"),
        }
        return;
    }
    let which = args.first().map_or("wgpu", String::as_str);
    let peak: f64 = args.get(1).map_or(4800.0, |s| s.parse().expect("PEAK_GBS"));
    match which {
        #[cfg(feature = "cuda")]
        "cuda" => {
            use cubecl::cuda::{CudaDevice, CudaRuntime};
            run(&CudaRuntime::client(&CudaDevice::default()), "cuda", peak)
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
            run(
                &WgpuRuntime::client(&WgpuDevice::DefaultDevice),
                "wgpu",
                peak,
            )
        }
        other => panic!("runtime {other:?} is not in this build (features wgpu, cuda)"),
    }
}

fn sync<R: Runtime>(client: &ComputeClient<R>) {
    cubecl::future::block_on(client.sync()).expect("device sync");
}

/// One matrix of a model: (name, format, rows, cols).
type Mat = (&'static str, GgmlType, usize, usize);

const TINYLLAMA: (&str, usize, &[Mat]) = (
    "TinyLlama shape (22 layers)",
    22,
    &[
        ("q", GgmlType::Q4_K, 2048, 2048),
        ("k", GgmlType::Q4_K, 256, 2048),
        ("v", GgmlType::Q6_K, 256, 2048),
        ("o", GgmlType::Q4_K, 2048, 2048),
        ("gate", GgmlType::Q4_K, 5632, 2048),
        ("up", GgmlType::Q4_K, 5632, 2048),
        ("down", GgmlType::Q6_K, 2048, 5632),
    ],
);

const LLAMA7B: (&str, usize, &[Mat]) = (
    "Llama-2-7B shape (32 layers)",
    32,
    &[
        ("q", GgmlType::Q4_K, 4096, 4096),
        ("k", GgmlType::Q4_K, 4096, 4096),
        ("v", GgmlType::Q6_K, 4096, 4096),
        ("o", GgmlType::Q4_K, 4096, 4096),
        ("gate", GgmlType::Q4_K, 11008, 4096),
        ("up", GgmlType::Q4_K, 11008, 4096),
        ("down", GgmlType::Q6_K, 4096, 11008),
    ],
);

fn run<R: Runtime>(client: &ComputeClient<R>, name: &str, peak: f64) {
    let hw = &client.properties().hardware;
    let plane = plane_reduction(client);
    println!(
        "{name}: planes {}..{} wide, plane reduction {plane}, {} SMs",
        hw.plane_size_min,
        hw.plane_size_max,
        hw.num_streaming_multiprocessors.unwrap_or(0)
    );

    // Launch cost: back-to-back launches with one sync, and launch + sync each time.
    let one = client.create_from_slice(f32::as_bytes(&[0.0]));
    launch_nop(client, &one);
    sync(client);
    let n = 5000;
    let t = Instant::now();
    for _ in 0..n {
        launch_nop(client, &one);
    }
    sync(client);
    let queued = t.elapsed().as_secs_f64() / n as f64;
    let n_rt = 500;
    let t = Instant::now();
    for _ in 0..n_rt {
        launch_nop(client, &one);
        sync(client);
    }
    let round = t.elapsed().as_secs_f64() / n_rt as f64;
    let t = Instant::now();
    for _ in 0..n_rt {
        launch_nop(client, &one);
        let _ = client.read_one(one.clone()).expect("read");
    }
    let read = t.elapsed().as_secs_f64() / n_rt as f64;
    println!(
        "launch: {:.1} us each back to back, {:.1} us with a sync after each, {:.1} us with a 4-byte read-back after each",
        queued * 1e6,
        round * 1e6,
        read * 1e6
    );

    println!("| matrix | format | rows x cols | MB | us | GB/s | of {peak:.0} GB/s |");
    println!("|---|---|---|---|---|---|---|");
    for (model, _, mats) in [TINYLLAMA, LLAMA7B] {
        for &(mname, ty, rows, cols) in mats {
            let set = Streamed::new(client, ty, rows, cols, rows as u64 ^ cols as u64);
            let each = set.seconds(client, plane, Tiling::default(), 4);
            let mb = set.ws[0].device_bytes() as f64 / 1e6;
            let gbs = mb / 1e3 / each;
            println!(
                "| {model} {mname} | {} | {rows} x {cols} | {mb:.1} | {:.1} | {gbs:.0} | {:.2} |",
                ty.name(),
                each * 1e6,
                gbs / peak
            );
        }
    }

    sweep(client, plane, peak);
    for (model, layers, mats) in [TINYLLAMA, LLAMA7B] {
        token(client, model, layers, mats, plane, peak);
    }
}

/// Copies of one matrix filling ~1 GB (far beyond the L2), cycled through so that each product
/// streams its weights from device memory, with the activations and output they share.
struct Streamed {
    ws: Vec<DeviceWeight>,
    x: Handle,
    y: Handle,
}

impl Streamed {
    fn new<R: Runtime>(
        client: &ComputeClient<R>,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        seed: u64,
    ) -> Self {
        let bytes = blocks::random_matrix(ty, rows, cols, seed);
        let copies = (1usize << 30).div_ceil(bytes.len()).clamp(2, 64);
        Streamed {
            ws: (0..copies)
                .map(|_| cube::upload(client, ty, &bytes, rows, cols).expect("upload"))
                .collect(),
            x: client.create_from_slice(f32::as_bytes(&vec![0.01f32; cols])),
            y: client.empty(rows * 4),
        }
    }

    /// Seconds per product over `reps` passes through the copies, after one pass of warm-up.
    fn seconds<R: Runtime>(
        &self,
        client: &ComputeClient<R>,
        plane: bool,
        tiling: Tiling,
        reps: usize,
    ) -> f64 {
        let pass = || {
            for w in &self.ws {
                qmatvec_into(client, w, &self.x, 1, &self.y, plane, tiling).unwrap();
            }
        };
        pass();
        sync(client);
        let t = Instant::now();
        for _ in 0..reps {
            pass();
        }
        sync(client);
        t.elapsed().as_secs_f64() / (reps * self.ws.len()) as f64
    }
}

/// GB/s of each tiling on three matrices (Q4_K 2048 x 2048 and 11008 x 4096, Q6_K 4096 x 11008).
fn sweep<R: Runtime>(client: &ComputeClient<R>, plane: bool, peak: f64) {
    let mats = [
        (GgmlType::Q4_K, 2048, 2048),
        (GgmlType::Q4_K, 11008, 4096),
        (GgmlType::Q6_K, 4096, 11008),
    ];
    println!("tilings (planes per cube x rows per plane), GB/s on Q4_K 2048x2048 | Q4_K 11008x4096 | Q6_K 4096x11008:");
    for (ty, rows, cols) in mats {
        let set = Streamed::new(client, ty, rows, cols, 3);
        let mut line = format!("{} {rows}x{cols}:", ty.name());
        for (planes_per_cube, rows_per_plane) in [
            (1, 1),
            (2, 1),
            (4, 1),
            (8, 1),
            (2, 2),
            (4, 2),
            (8, 2),
            (2, 4),
            (4, 4),
            (1, 8),
            (2, 8),
        ] {
            let tiling = Tiling {
                planes_per_cube,
                rows_per_plane,
                tokens_per_cube: 1,
            };
            let each = set.seconds(client, plane, tiling, 3);
            let gbs = set.ws[0].device_bytes() as f64 / 1e9 / each;
            line += &format!(
                " {planes_per_cube}x{rows_per_plane} {gbs:.0} ({:.2})",
                gbs / peak
            );
        }
        println!("{line}");
    }
}

/// Products over `m` tokens (a prompt) with 1 to 16 tokens to a cube: microseconds per product,
/// and the multiply-adds per second.
fn prefill<R: Runtime>(client: &ComputeClient<R>, name: &str, m: usize) {
    let plane = plane_reduction(client);
    println!("{name}: products over {m} tokens, plane reduction {plane}; ms per product (GMAC/s) by tokens per cube:");
    for (ty, rows, cols) in [
        (GgmlType::Q4_K, 2048, 2048),
        (GgmlType::Q6_K, 2048, 5632),
        (GgmlType::Q5_0, 2048, 2048),
        (GgmlType::Q8_0, 2048, 2048),
        (GgmlType::F16, 2048, 2048),
    ] {
        let bytes = blocks::random_matrix(ty, rows, cols, 5);
        let w = cube::upload(client, ty, &bytes, rows, cols).expect("upload");
        let x = client.create_from_slice(f32::as_bytes(&vec![0.01f32; m * cols]));
        let y = client.empty(m * rows * 4);
        let mut line = format!("{} {rows}x{cols}:", ty.name());
        let mac = (m * rows * cols) as f64;
        for tokens_per_cube in [1, 2, 4, 8, 16] {
            let tiling = Tiling {
                tokens_per_cube,
                ..Tiling::default()
            };
            let each = seconds_per_run(client, || {
                qmatvec_into(client, &w, &x, m, &y, plane, tiling).unwrap()
            });
            line += &format!(
                " {tokens_per_cube}: {:.2} ({:.1})",
                each * 1e3,
                mac / each / 1e9
            );
        }
        line += " | tiled, rows x tokens per unit:";
        for (tile_rows, tile_tokens) in [(4, 4), (4, 8), (8, 8), (8, 16), (16, 8)] {
            let tile = PromptTile {
                rows: tile_rows,
                tokens: tile_tokens,
            };
            let each = seconds_per_run(client, || {
                qmatmul_tiled_into(client, &w, &x, m, &y, tile).unwrap()
            });
            line += &format!(
                " {tile_rows}x{tile_tokens}: {:.2} ({:.1})",
                each * 1e3,
                mac / each / 1e9
            );
        }
        println!("{line}");
    }
}

/// Seconds per call of `run` (a launch), the mean of 3 after one that compiles its kernel.
fn seconds_per_run<R: Runtime>(client: &ComputeClient<R>, run: impl Fn()) -> f64 {
    run();
    sync(client);
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        run();
    }
    sync(client);
    t.elapsed().as_secs_f64() / reps as f64
}

/// The products of decoded tokens: every layer's matrices and a Q6_K output matrix (32000 rows),
/// each its own weights, in model order, input of each the previous one's output where the shapes
/// allow (else the token's input), one sync per token.
fn token<R: Runtime>(
    client: &ComputeClient<R>,
    model: &str,
    layers: usize,
    mats: &[Mat],
    plane: bool,
    peak: f64,
) {
    let hidden = mats[0].3;
    let mut weights: Vec<DeviceWeight> = Vec::new();
    let mut all: Vec<Mat> = (0..layers).flat_map(|_| mats.iter().copied()).collect();
    all.push(("output", GgmlType::Q6_K, 32000, hidden));
    let mut cache: Vec<(Mat, Vec<u8>)> = Vec::new();
    for m in &all {
        if !cache.iter().any(|(c, _)| c == m) {
            cache.push((
                *m,
                blocks::random_matrix(m.1, m.2, m.3, m.2 as u64 * 31 + m.3 as u64),
            ));
        }
        let bytes = &cache.iter().find(|(c, _)| c == m).unwrap().1;
        weights.push(cube::upload(client, m.1, bytes, m.2, m.3).expect("upload"));
    }
    let total: usize = weights.iter().map(DeviceWeight::device_bytes).sum();
    let widest = all.iter().map(|m| m.2.max(m.3)).max().unwrap();
    let bufs: Vec<Handle> = (0..2)
        .map(|_| client.create_from_slice(f32::as_bytes(&vec![0.01f32; widest])))
        .collect();
    let step = |w: &DeviceWeight, i: usize| {
        qmatvec_into(
            client,
            w,
            &bufs[i % 2],
            1,
            &bufs[(i + 1) % 2],
            plane,
            Tiling::default(),
        )
        .unwrap()
    };
    let pass = || {
        for (i, w) in weights.iter().enumerate() {
            step(w, i);
        }
        sync(client);
    };
    pass();
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        pass();
    }
    let each = t.elapsed().as_secs_f64() / n as f64;
    let gb = total as f64 / 1e9;
    println!(
        "{name} {model}: products of one token: {:.0} tok/s ({:.2} ms, {} launches, {gb:.2} GB of weights, {:.0} GB/s = {:.2} of {peak:.0} GB/s; bound W/B {:.0} tok/s)",
        1.0 / each,
        each * 1e3,
        weights.len(),
        gb / each,
        gb / each / peak,
        peak / gb,
        name = client_name::<R>()
    );
}

fn client_name<R: Runtime>() -> &'static str {
    std::any::type_name::<R>()
        .rsplit("::")
        .next()
        .unwrap_or("runtime")
}

/// Logits of `toks[..8]` as one batch, then of each later token alone.
fn logits<B: ChordBackend>(core: &Arc<ModelCore>, toks: &[u32]) -> Vec<f32> {
    let mut t = Transformer::<B>::new(core.clone(), 256, Default::default()).expect("session");
    let mut out = t
        .eval(&toks[..8], WantLogits::All, &|| false)
        .expect("prefill");
    for &tok in &toks[8..] {
        out.extend(t.eval(&[tok], WantLogits::Last, &|| false).expect("decode"));
    }
    out
}

/// `model` mode: the backend against the CPU on `path`, then its speed (see the module docs).
fn model<B: ChordBackend>(name: &str, path: &str, peak: f64) {
    let f = GgufFile::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cfg = Config::from_gguf(&f).expect("config");
    let weights = Weights::from_gguf(&f, &cfg).expect("weights");
    let bytes: usize = weights.layers.iter().map(|l| l.size()).sum::<usize>()
        + (0..weights.n_output_chunks())
            .map(|i| weights.output_chunk(i).expect("output").size())
            .sum::<usize>();
    let core = Arc::new(ModelCore::new(cfg, weights));
    let v = core.cfg.n_vocab;
    let toks: Vec<u32> = (0..16u32).map(|i| (i * 7919 + 13) % v as u32).collect();
    let t = Instant::now();
    let gpu = logits::<B>(&core, &toks);
    let first = t.elapsed().as_secs_f64();
    let cpu = logits::<Cpu>(&core, &toks);
    // KL divergence where the logits are those of a trained model; on random weights the logits
    // span hundreds and the distributions are nearly one-hot, so also the largest difference of
    // a logit relative to the row's spread.
    let (mut kl_sum, mut kl_max, mut rel_max, mut agree) = (0f64, 0f64, 0f64, 0);
    for (a, b) in cpu.chunks_exact(v).zip(gpu.chunks_exact(v)) {
        let kl = logits::kl(a, b);
        kl_sum += kl;
        kl_max = kl_max.max(kl);
        let spread =
            a.iter().fold(f32::MIN, |m, &x| m.max(x)) - a.iter().fold(f32::MAX, |m, &x| m.min(x));
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        rel_max = rel_max.max((diff / spread) as f64);
        let top = chord::session::sampler::argmax;
        agree += usize::from(top(a) == top(b));
    }
    let rows = cpu.len() / v;
    println!(
        "{path} on {name}: {} GB of weights; first run (upload, kernel compiles) {first:.1} s; \
         against the CPU over {rows} positions: KL mean {:.2e} max {kl_max:.2e}, largest logit \
         difference {rel_max:.2e} of the spread, top-1 agrees at {agree} of {rows}",
        bytes as f64 / 1e9,
        kl_sum / rows as f64
    );
    // Timed on the second of two identical runs: the first compiles (and autotunes) the kernels
    // of each new shape, as `chord bench`'s warm-up run does.
    let prompt: Vec<u32> = (0..128u32).map(|i| (i * 104_729 + 7) % v as u32).collect();
    let n = 64;
    let (mut pp, mut each) = (0.0, 0.0);
    for _ in 0..2 {
        let mut s = Transformer::<B>::new(core.clone(), 1024, Default::default()).expect("session");
        let t = Instant::now();
        s.eval(&prompt, WantLogits::Last, &|| false)
            .expect("prefill");
        pp = prompt.len() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for i in 0..n {
            s.eval(&[(i * 31 + 5) % v as u32], WantLogits::Last, &|| false)
                .expect("decode");
        }
        each = t.elapsed().as_secs_f64() / n as f64;
    }
    let gbs = bytes as f64 / 1e9 / each;
    println!(
        "{name}: prefill {pp:.0} tok/s (128 tokens), decode {:.1} tok/s (64 tokens after them): \
         {gbs:.0} GB/s of weights, {:.3} of {peak:.0} GB/s",
        1.0 / each,
        gbs / peak
    );
}
