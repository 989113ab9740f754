//! Paged runs equal the fully resident run bit for bit (issue: models larger than memory, criterion
//! 1), on SmolLM2-135M Q4_1 and the TinyLlama-1.1B-shape Q4_K_M file, at budgets of 15%, 40% and
//! 70% of the weight bytes: every logit of every position of a 256-token text, and 32 greedy
//! tokens. The counters show the policy: pinned units are read once, streamed units once per
//! forward pass (plus at most one look-ahead per slot at the end). Streamed layers are in the file's
//! layout; the resident run's Q4_K matrices are packed (on x86 with AVX2), and so are a paged run's
//! pinned ones, in the pager's buffers; both equal the resident run without packing too. Streamed layers are mapped (the default, `use_mmap`) at every budget,
//! read into buffers at 40%, and read past the page cache (as for a file larger than available
//! memory) at 15% and 40%.
mod common;
use chord::backend::Cpu;
use chord::model::*;
use chord::pager::Loader;
use chord::session::sampler::argmax;
use chord::tokenizer::Tokenizer;
use std::path::Path;
use std::sync::Arc;

const POSITIONS: usize = 256;
const GREEDY: usize = 32;

fn load(path: &Path, budget: u64) -> Model {
    load_with(path, budget, true, None)
}

/// Loads under `budget`, streamed layers held by `loader` (chord's choice when `None`), which the
/// pager must then use (every loader exists on Linux with the files on ext4, as on CI's machine).
fn load_with(path: &Path, budget: u64, pack_weights: bool, loader: Option<Loader>) -> Model {
    let opts = ModelOptions {
        memory_budget: budget,
        n_threads: 2,
        pack_weights,
        stream_loader: loader,
        ..Default::default()
    };
    let model = Model::load(path, &opts).unwrap();
    if let (Some(want), Some(st), true) = (loader, model.pager_stats(), cfg!(target_os = "linux")) {
        assert_eq!(st.loader, Some(want), "the loader asked for");
    }
    model
}

fn text_tokens(tok: &Tokenizer) -> Vec<u32> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/text/gpl-3.0-excerpt.txt"),
    )
    .unwrap();
    let mut t = tok.encode(&text, true, false).unwrap();
    assert!(t.len() >= POSITIONS);
    t.truncate(POSITIONS);
    t
}

/// Logits of every position of `tokens`, then `GREEDY` greedy tokens after its first 8.
fn run(model: &Model, tokens: &[u32]) -> (Vec<f32>, Vec<u32>) {
    let core: Arc<ModelCore> = model.core().unwrap().clone();
    let mut t = Transformer::<Cpu>::new(core.clone(), 512, Default::default()).unwrap();
    let logits = model
        .pool()
        .install(|| t.eval(tokens, WantLogits::All, &|| false))
        .unwrap();
    let mut g = Transformer::<Cpu>::new(core, 512, Default::default()).unwrap();
    let mut last = model
        .pool()
        .install(|| g.eval(&tokens[..8], WantLogits::Last, &|| false))
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..GREEDY {
        let next = argmax(&last) as u32;
        out.push(next);
        last = model
            .pool()
            .install(|| g.eval(&[next], WantLogits::Last, &|| false))
            .unwrap();
    }
    (logits, out)
}

fn check(file: &str) {
    let path = common::model(file);
    let resident = load(&path, 0);
    assert!(
        resident.pager_stats().is_none(),
        "{file} paged without a budget"
    );
    let tokens = text_tokens(resident.tokenizer());
    let (want_logits, want_greedy) = run(&resident, &tokens);
    let weights = resident.weight_bytes();
    drop(resident);
    for (pct, loader) in [
        (15u64, Loader::Map),
        (40, Loader::Map),
        (70, Loader::Map),
        (40, Loader::Read),
        (15, Loader::Direct),
        (40, Loader::Direct),
    ] {
        let budget = weights * pct / 100;
        let paged = load_with(&path, budget, true, Some(loader));
        let (logits, greedy) = run(&paged, &tokens);
        assert!(
            logits
                .iter()
                .zip(&want_logits)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{file} at {pct}% {loader:?}: logits differ from the resident run"
        );
        assert_eq!(
            greedy, want_greedy,
            "{file} at {pct}% {loader:?}: greedy tokens differ"
        );
        let st = paged.pager_stats().expect("paged");
        assert!(
            st.bytes_resident <= budget,
            "{file} at {pct}% {loader:?}: {st:?}"
        );
        // Pinned Q4_K matrices are packed where the kernels have a packed layout; nothing else.
        assert!(
            paged.packed_bytes() <= st.bytes_pinned,
            "{file} at {pct}% {loader:?}"
        );
        let q4_k = file.contains("Q4_K");
        if q4_k && st.units_pinned > 0 && chord::quant::Isa::active().has_avx2() {
            assert!(
                paged.packed_bytes() > 0,
                "{file} at {pct}% {loader:?}: pinned, not packed"
            );
        } else if !q4_k {
            assert_eq!(paged.packed_bytes(), 0, "{file} at {pct}% {loader:?}");
        }
        // Forward passes: one prefill of 256, one of 8, and one per greedy token.
        let passes = 2 + GREEDY as u64;
        let mut ahead = Vec::new();
        for (u, &reads) in st.reads_per_unit.iter().enumerate() {
            if reads == 1 && st.units_pinned > 0 && reads < passes {
                continue; // pinned
            }
            // At most once per pass plus one read ahead for a pass that never came; fewer when a
            // unit happens to stay in its slot until its next use (timing-dependent, seen under
            // load in the pager's unit test).
            assert!(
                reads <= passes + 1,
                "{file} at {pct}% {loader:?}: unit {u} read {reads} times in {passes} passes: {st:?}"
            );
            if reads > passes {
                ahead.push(u);
            }
        }
        // What was read ahead is at most one span (consecutive units loaded as one) per slot.
        let runs = ahead
            .iter()
            .filter(|&&u| u == 0 || !ahead.contains(&(u - 1)))
            .count();
        assert!(runs <= 2, "{file} at {pct}% {loader:?}: {st:?}");
        let pinned_reads = st.reads_per_unit.iter().filter(|&&r| r == 1).count();
        assert_eq!(
            pinned_reads, st.units_pinned,
            "{file} at {pct}% {loader:?}: {st:?}"
        );
    }
}

#[test]
fn smollm2_q4_1_paged_equals_resident() {
    check("SmolLM2-135M-Instruct.Q4_1.gguf");
}

#[test]
fn tinyllama_shape_q4_k_m_paged_equals_resident() {
    check("tinyllama-shape-random.Q4_K_M.gguf");
}

/// Packing at load (Q4_K on x86 with AVX2: `chord::quant::pack`) changes no bit of the logits of
/// prefill (the batch kernels) or of decode (the one-row kernels), and packs every Q4_K layer
/// matrix of the TinyLlama-shape file where the kernel path has packed kernels.
#[test]
fn packed_weights_equal_the_file_layout() {
    let path = common::model("tinyllama-shape-random.Q4_K_M.gguf");
    let packed = load_with(&path, 0, true, None);
    let plain = load_with(&path, 0, false, None);
    let tokens = text_tokens(packed.tokenizer());
    let (want_logits, want_greedy) = run(&plain, &tokens);
    let (logits, greedy) = run(&packed, &tokens);
    assert!(
        logits
            .iter()
            .zip(&want_logits)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "packed logits differ from the file layout's"
    );
    assert_eq!(greedy, want_greedy);
    assert_eq!(plain.packed_bytes(), 0);
    let isa = chord::quant::Isa::active();
    if isa.has_avx2() {
        // 22 layers of Q4_K q, k, o, gate, up (and some v and down) matrices: most of the file.
        assert!(
            packed.packed_bytes() > packed.weight_bytes() / 2,
            "{} of {} bytes packed on {}",
            packed.packed_bytes(),
            packed.weight_bytes(),
            isa.name()
        );
    } else {
        assert_eq!(
            packed.packed_bytes(),
            0,
            "no packed kernels on {}",
            isa.name()
        );
    }
}

/// A file truncated under a running paged model (issue 16, done-when 4): the next call fails with
/// an I/O error that says so, the session keeps its tokens, nothing crashes (with mapped units, the
/// unit held in a slot across the truncation faults and reads zeros under the pager's SIGBUS guard,
/// and the call fails; with `CHORD_PAGER_LOADER=read`, as `make test-pager` also runs it, reads come
/// up short); once the file is whole again the same session goes on and computes exactly what a
/// session that never saw the error computes.
#[test]
fn a_file_truncated_under_a_paged_session_is_an_error_then_recovers() {
    truncated_under_a_paged_session(Loader::Map);
    truncated_under_a_paged_session(Loader::Read);
    truncated_under_a_paged_session(Loader::Direct);
}

fn truncated_under_a_paged_session(loader: Loader) {
    use chord::error::ErrorCode;
    use chord::session::{Session, SessionOptions};
    let original = common::default_model();
    /// Removes the copy of the model even when an assertion fails (it is 100 MB).
    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = TempDir(
        std::env::temp_dir().join(format!("chord-truncated-{}-{loader:?}", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("model.gguf");
    std::fs::copy(&original, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let opts = SessionOptions {
        n_ctx: 256,
        ..Default::default()
    };
    let weights = load(&path, 0).weight_bytes();
    let model = Arc::new(load_with(&path, weights * 40 / 100, true, Some(loader)));
    assert!(model.pager_stats().is_some(), "not paged at 40%");
    let reference = Arc::new(load(&original, weights * 40 / 100));
    let tokens = text_tokens(model.tokenizer());
    let never = || false;
    let mut s = Session::new(model.clone(), &opts).unwrap();
    let mut r = Session::new(reference, &opts).unwrap();
    s.append_tokens(&tokens[..16], false, &never).unwrap();
    r.append_tokens(&tokens[..16], false, &never).unwrap();

    // Cut the file inside its tensor data: every streamed unit's read now comes up short.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(bytes.len() as u64 / 3)
        .unwrap();
    let mut failures = 0;
    for &t in &tokens[16..20] {
        let e = s.append_tokens(&[t], false, &never).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Io, "{e}");
        assert!(
            e.message().contains("shorter than when it was loaded"),
            "{e}"
        );
        assert_eq!(
            s.tokens(),
            &tokens[..16],
            "a failed call changed the context"
        );
        failures += 1;
    }
    assert_eq!(failures, 4);

    // The file is whole again: the session continues as if nothing happened.
    std::fs::write(&path, &bytes).unwrap();
    for &t in &tokens[16..24] {
        s.append_tokens(&[t], false, &never).unwrap();
        r.append_tokens(&[t], false, &never).unwrap();
        assert!(
            s.logits()
                .iter()
                .zip(r.logits())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "logits after the recovery differ"
        );
    }
    drop(s);
    drop(model);
    drop(dir);
}
