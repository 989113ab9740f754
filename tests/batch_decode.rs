//! Decoding several sessions in one forward pass ([`Session::decode_batch`]) on the real model:
//! each session's logits and greedy tokens equal those of decoding it alone, at every step, with
//! sessions of different lengths joining and leaving; the refusals that change no session, and a
//! cancelled session left out of a step.
//! `CHORD_BATCH_MODEL=FILE` runs them on another file: bit-identical for Q4_0, Q4_1, Q5_0, Q5_1,
//! Q8_0, Q5_K and Q6_K on every kernel path; F16, BF16, Q3_K and Q4_K batches take kernels whose
//! rounding differs in the last bits from a single row's (as in llama.cpp) on the SIMD paths.
mod common;
use chord::model::{Model, ModelOptions};
use chord::session::sampler::argmax;
use chord::session::{Session, SessionOptions};
use chord::ErrorCode;
use std::sync::Arc;

const PROMPTS: [&str; 5] = [
    "The three primary colors are",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
    "Once upon a time, in a village by the river, there lived a blacksmith who",
    "1, 2, 3, 4,",
];

fn model() -> Arc<Model> {
    let opts = ModelOptions {
        n_threads: 2,
        ..Default::default()
    };
    let path = std::env::var("CHORD_BATCH_MODEL")
        .map_or_else(|_| common::default_model(), std::path::PathBuf::from);
    Arc::new(Model::load(path, &opts).unwrap())
}

fn session(m: &Arc<Model>, prompt: &str, n_ctx: usize) -> Session {
    let opts = SessionOptions {
        n_ctx,
        ..Default::default()
    };
    let mut s = Session::new(m.clone(), &opts).unwrap();
    s.append_text(prompt, true, true, &never).unwrap();
    s
}

fn never() -> bool {
    false
}

/// No session of a batch is cancelled.
fn none(_: usize) -> bool {
    false
}

/// Greedy decoding alone: the logits after each of `n` tokens.
fn alone(m: &Arc<Model>, prompt: &str, n: usize) -> Vec<Vec<f32>> {
    let mut s = session(m, prompt, 256);
    let mut steps = Vec::new();
    for _ in 0..n {
        let t = argmax(s.logits());
        s.append_tokens(&[t], false, &never).unwrap();
        steps.push(s.logits().to_vec());
    }
    steps
}

#[test]
fn batched_equals_alone() {
    let m = model();
    let n = 12;
    let want: Vec<Vec<Vec<f32>>> = PROMPTS.iter().map(|p| alone(&m, p, n)).collect();
    let mut sessions: Vec<Session> = PROMPTS.iter().map(|p| session(&m, p, 256)).collect();
    // Session i joins at step i and the first leaves after n steps: batches of 1 to 5 sessions.
    let mut steps = vec![0usize; PROMPTS.len()];
    for round in 0..n + PROMPTS.len() {
        let active: Vec<usize> = (0..PROMPTS.len())
            .filter(|&i| i <= round && steps[i] < n)
            .collect();
        if active.is_empty() {
            break;
        }
        let tokens: Vec<u32> = active
            .iter()
            .map(|&i| argmax(sessions[i].logits()))
            .collect();
        let mut batch: Vec<&mut Session> = sessions
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| active.contains(i))
            .map(|(_, s)| s)
            .collect();
        Session::decode_batch(&mut batch, &tokens, &none).unwrap();
        for &i in &active {
            assert!(
                sessions[i].logits() == want[i][steps[i]],
                "session {i}, step {}: logits differ from decoding alone (batch of {})",
                steps[i],
                active.len()
            );
            steps[i] += 1;
        }
    }
    assert!(steps.iter().all(|&s| s == n));
}

#[test]
fn refusals_change_nothing() {
    let m = model();
    let mut a = session(&m, PROMPTS[0], 256);
    let prompt_b = PROMPTS[2];
    let mut b = session(&m, prompt_b, 256);
    let n_b = b.tokens().len();
    let mut full = session(&m, PROMPTS[4], 256);
    // Fill `full`'s context to the last position.
    let room = full.n_ctx() - full.tokens().len();
    full.append_tokens(&vec![28; room], false, &never).unwrap();
    let (ta, tb) = (a.tokens().to_vec(), b.tokens().to_vec());
    let (la, lb) = (a.logits().to_vec(), b.logits().to_vec());
    let check = |a: &Session, b: &Session| {
        assert_eq!((a.tokens(), b.tokens()), (&ta[..], &tb[..]));
        assert!(a.logits() == la && b.logits() == lb);
    };

    let e = Session::decode_batch(&mut [&mut a, &mut b], &[1], &none).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let e = Session::decode_batch(&mut [&mut a, &mut b], &[1, u32::MAX], &none).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidToken);
    let e = Session::decode_batch(&mut [&mut a, &mut b, &mut full], &[1, 2, 3], &none).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextFull);
    let other = model();
    let mut c = session(&other, PROMPTS[0], 256);
    let e = Session::decode_batch(&mut [&mut a, &mut c], &[1, 2], &none).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    check(&a, &b);

    // After the refusals the batch works, and an empty batch is nothing.
    Session::decode_batch(&mut [&mut a, &mut b], &[1, 2], &none).unwrap();
    assert_eq!(b.tokens().len(), n_b + 1);
    Session::decode_batch(&mut [], &[], &none).unwrap();

    // A cancelled session is left out as a cancelled append leaves it (no logits); the others
    // decode. Every session cancelled: none changes.
    let (na, nb) = (a.tokens().len(), b.tokens().len());
    let e = Session::decode_batch(&mut [&mut a, &mut b], &[3, 4], &|i| i == 1).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert!(e.to_string().contains("session(s) 1 of the batch"), "{e}");
    assert_eq!((a.tokens().len(), b.tokens().len()), (na + 1, nb));
    assert!(!a.logits().is_empty() && b.logits().is_empty());
    let e = Session::decode_batch(&mut [&mut a, &mut b], &[5, 6], &|_| true).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert_eq!((a.tokens().len(), b.tokens().len()), (na + 1, nb));
    assert!(a.logits().is_empty() && b.logits().is_empty());
    Session::decode_batch(&mut [&mut a, &mut b], &[5, 6], &none).unwrap();
    assert_eq!((a.tokens().len(), b.tokens().len()), (na + 2, nb + 1));
}
