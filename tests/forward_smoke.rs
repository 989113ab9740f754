//! The forward pass gives the same logits whether tokens come as one prefill batch or one by one.
//! Not bit-identical: like llama.cpp, prefill and decode attention use different kernels (a tiled
//! product and a dot product) whose summation orders differ in the last bits, and the 8-bit
//! quantization of activations before each weight product amplifies such differences (up to about
//! half a logit over a few positions on this Q4_1 model, in llama.cpp too).
mod common;
use chord::backend::Cpu;
use chord::gguf::GgufFile;
use chord::model::*;
use std::sync::Arc;

#[test]
fn batch_equals_incremental() {
    let f = GgufFile::open(common::default_model()).unwrap();
    let cfg = Config::from_gguf(&f).unwrap();
    let weights = Weights::from_gguf(&f, &cfg).unwrap();
    let core = Arc::new(ModelCore::new(cfg, weights));
    let toks = [19556u32, 905, 28, 451, 314, 260, 1345, 2000];
    let mut a = Transformer::<Cpu>::new(core.clone(), 64, Default::default()).unwrap();
    let all = a.eval(&toks, WantLogits::All, &|| false).unwrap();
    let mut b = Transformer::<Cpu>::new(core.clone(), 64, Default::default()).unwrap();
    let v = core.cfg.n_vocab;
    for (i, t) in toks.iter().enumerate() {
        let one = b.eval(&[*t], WantLogits::Last, &|| false).unwrap();
        assert_eq!(one.len(), v);
        assert!(one.iter().all(|x| x.is_finite()));
        let row = &all[i * v..(i + 1) * v];
        let diff = one
            .iter()
            .zip(row)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let top = |r: &[f32]| chord::session::sampler::argmax(r);
        assert!(diff < 1.0, "position {i}: logits differ by {diff}");
        assert_eq!(
            top(&one),
            top(row),
            "position {i}: different most likely token"
        );
    }
}

/// A prefill that wants every position's logits over a large vocabulary computes them in pieces
/// of at most 64 MiB (a GPU's buffers may be small): Gemma 3's 262,144 logits are 1 MiB a
/// position, so 70 positions take two pieces. Every position's logits must still be its own
/// hidden state times the output matrix, in the right columns: checked on a spread of columns
/// against a float64 product of the normed hidden states (the CPU's product quantizes them to 8
/// bits, hence the tolerance; a misplaced piece is off by whole logits).
#[test]
fn logits_of_many_positions_come_in_pieces_in_their_places() {
    let f = GgufFile::open(common::model("gemma-3-270m-Q4_K_M.gguf")).unwrap();
    let cfg = Config::from_gguf(&f).unwrap();
    let weights = Weights::from_gguf(&f, &cfg).unwrap();
    let core = Arc::new(ModelCore::new(cfg, weights));
    let v = core.cfg.n_vocab;
    let n = 70;
    assert!(n * v * 4 > 64 << 20, "one piece would do");
    let toks: Vec<u32> = (0..n as u32).map(|i| 1000 + 37 * i).collect();
    let mut a = Transformer::<Cpu>::new(core.clone(), 128, Default::default()).unwrap();
    let logits = a.eval(&toks, WantLogits::All, &|| false).unwrap();
    let mut b = Transformer::<Cpu>::new(core.clone(), 128, Default::default()).unwrap();
    let hidden = b.eval(&toks, WantLogits::Hidden, &|| false).unwrap();
    assert_eq!(logits.len(), n * v);
    let e = core.cfg.n_embd;
    let head = core.weights.output_chunk(0).unwrap();
    let mut row = vec![0f32; e];
    let (mut worst, mut scale) = (0f64, 0f64);
    for c in (0..v).step_by(997).chain([v - 1]) {
        head.row_f32(c, &mut row);
        for p in 0..n {
            let h = &hidden[p * e..(p + 1) * e];
            let exact: f64 = h.iter().zip(&row).map(|(&x, &w)| x as f64 * w as f64).sum();
            worst = worst.max((logits[p * v + c] as f64 - exact).abs());
            scale = scale.max(exact.abs());
        }
    }
    assert!(
        worst <= 0.02 * scale.max(1.0),
        "logits differ from the hidden states' product by {worst} (largest {scale})"
    );
}
