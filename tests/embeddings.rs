//! Text embeddings ([`Session::embed`]) on the real model: pooling and normalisation as documented,
//! the session's context afterwards, and the refusals that change nothing. Their values against
//! llama.cpp's: scripts/compare-embeddings.py (in the oracle tests).
mod common;
use chord::model::{Model, ModelOptions, Pooling};
use chord::session::{GenerateParams, Sampler, SamplerParams, Session, SessionOptions};
use chord::ErrorCode;
use std::sync::Arc;

const TEXT: &str = "The merchant whispered that the guards were looking for a thief.";

fn session(n_ctx: usize) -> Session {
    let opts = ModelOptions {
        n_threads: 2,
        ..Default::default()
    };
    let m = Arc::new(Model::load(common::default_model(), &opts).unwrap());
    let opts = SessionOptions {
        n_ctx,
        ..Default::default()
    };
    Session::new(m, &opts).unwrap()
}

fn never() -> bool {
    false
}

#[test]
fn pooling_and_normalisation() {
    let mut s = session(256);
    let n_embd = s.model().core().unwrap().cfg.n_embd;
    let raw = |s: &mut Session, p| s.embed(TEXT, true, true, Some(p), false, &never).unwrap();
    let mean = raw(&mut s, Pooling::Mean);
    let last = raw(&mut s, Pooling::Last);
    let first = raw(&mut s, Pooling::Cls);
    assert_eq!(mean.len(), n_embd);
    assert!(mean
        .iter()
        .chain(&last)
        .chain(&first)
        .all(|v| v.is_finite()));
    assert_ne!(mean, last);
    assert_ne!(first, last);

    // The same text embeds the same way every time (the context is reset first).
    assert_eq!(raw(&mut s, Pooling::Mean), mean);
    // SmolLM2's file names no pooling: the default is the mean.
    assert_eq!(
        s.embed(TEXT, true, true, None, false, &never).unwrap(),
        mean
    );

    // Normalised: the raw vector over its length, within rounding.
    let unit = s
        .embed(TEXT, true, true, Some(Pooling::Mean), true, &never)
        .unwrap();
    let norm = mean.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    let len = unit.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    assert!((len - 1.0).abs() < 1e-6, "length {len}");
    for (u, m) in unit.iter().zip(&mean) {
        assert!((*u as f64 - *m as f64 / norm).abs() < 1e-6);
    }

    // The first token of a one-token text is also its last and its mean.
    let one = |s: &mut Session, p| s.embed("Paris", false, false, Some(p), false, &never);
    assert_eq!(
        s.model()
            .tokenizer()
            .encode("Paris", false, false)
            .unwrap()
            .len(),
        1
    );
    let a = one(&mut s, Pooling::Cls).unwrap();
    assert_eq!(one(&mut s, Pooling::Last).unwrap(), a);
    assert_eq!(one(&mut s, Pooling::Mean).unwrap(), a);
}

#[test]
fn context_after_embedding_and_refusals() {
    let mut s = session(64);
    s.append_text("Hello", true, true, &never).unwrap();
    let held = s.tokens().to_vec();

    // Refused before anything changes: a text longer than the context, a text without tokens.
    let long = "word ".repeat(200);
    let e = s.embed(&long, true, true, None, true, &never).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextFull);
    let e = s.embed("", false, false, None, true, &never).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(s.tokens(), held);
    assert!(!s.logits().is_empty());

    // Cancelled: the context is empty.
    let e = s.embed(TEXT, true, true, None, true, &|| true).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert!(s.tokens().is_empty());

    // After an embedding the context holds the text's tokens and no logits: generating needs an
    // append first, and then works.
    s.embed(TEXT, true, true, None, true, &never).unwrap();
    let toks = s.model().tokenizer().encode(TEXT, true, true).unwrap();
    assert_eq!(s.tokens(), toks);
    assert!(s.logits().is_empty());
    let params = GenerateParams {
        max_tokens: 4,
        ..Default::default()
    };
    let mut sampler = Sampler::new(SamplerParams::default());
    let e = s
        .generate(&params, &mut sampler, &mut |_| true, &never)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    s.append_text(" Then", false, false, &never).unwrap();
    s.generate(&params, &mut sampler, &mut |_| true, &never)
        .unwrap();
}
