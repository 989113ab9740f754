//! Forked sessions ([`Session::fork`]) on the real model: 16 forks of a 1,000-token prompt each
//! generate, bit for bit, what a session that computed the same tokens itself generates, while
//! together holding less than 1.5 times one 1,000-token session's KV memory plus their own tokens';
//! forks of forks, forks outliving their parent, a fork's saved state, and the f32 cache (which
//! forks by copying).
mod common;
use chord::model::{Model, ModelOptions};
use chord::session::sampler::argmax;
use chord::session::{state, KvType, Session, SessionOptions};
use std::sync::Arc;

fn model() -> Arc<Model> {
    let opts = ModelOptions {
        n_threads: 2,
        ..Default::default()
    };
    Arc::new(Model::load(common::default_model(), &opts).unwrap())
}

fn never() -> bool {
    false
}

fn new_session(m: &Arc<Model>, kv_type: KvType) -> Session {
    let opts = SessionOptions {
        n_ctx: 1536,
        kv_type,
        ..Default::default()
    };
    Session::new(m.clone(), &opts).unwrap()
}

/// A prompt of exactly `n` tokens of real text (a story's sentences, numbered so they differ).
fn prompt(m: &Model, n: usize) -> Vec<u32> {
    let mut text = String::new();
    let mut i = 0;
    loop {
        let toks = m.tokenizer().encode(&text, true, false).unwrap();
        if toks.len() >= n {
            return toks[..n].to_vec();
        }
        text.push_str(&format!(
            "In chapter {i} the travellers crossed the {} and rested by the {} fire. ",
            ["river", "desert", "mountain pass", "old bridge"][i % 4],
            ["small", "bright", "smoky"][i % 3]
        ));
        i += 1;
    }
}

/// Appends `suffix`, then greedily decodes `n` tokens; the logits after the suffix and after each
/// token, as bits.
fn continue_greedy(s: &mut Session, suffix: &[u32], n: usize) -> Vec<Vec<u32>> {
    s.append_tokens(suffix, false, &never).unwrap();
    let mut steps = vec![bits(s.logits())];
    for _ in 0..n {
        let t = argmax(s.logits());
        s.append_tokens(&[t], false, &never).unwrap();
        steps.push(bits(s.logits()));
    }
    steps
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn suffix(m: &Model, i: usize) -> Vec<u32> {
    let text = format!(" Traveller number {i} said:");
    m.tokenizer().encode(&text, false, false).unwrap()
}

/// Done-when 1 of issue 18: 16 forks of a 1,000-token prompt, each given its own few tokens and
/// 24 generated ones, generate the bits of the unforked run and hold, together, less than 1.5 times
/// the KV memory of one 1,000-token session plus the KV of the tokens they added.
#[test]
fn sixteen_forks_share_the_prompt_and_generate_as_unforked() {
    let m = model();
    let p = prompt(&m, 1000);
    let (n_forks, n_gen) = (16, 24);
    let mut parent = new_session(&m, KvType::F16);
    parent.append_tokens(&p, false, &never).unwrap();
    let one = parent.kv_bytes();
    let per_token = one / 1008.0; // a session of 1,000 positions holds 63 blocks of 16
    assert_eq!(
        one.round() as usize,
        (m.core().unwrap().cfg.n_layer * 2 * 1008 * m.core().unwrap().cfg.n_head_kv)
            * m.core().unwrap().cfg.head_dim
            * 2,
        "a 1,000-token session's f16 cache holds 1,008 positions"
    );

    let mut forks: Vec<Session> = (0..n_forks).map(|_| parent.fork()).collect();
    drop(parent); // the forks keep the prompt's memory alive
    let mut added = 0;
    let mut got = Vec::new();
    for (i, f) in forks.iter_mut().enumerate() {
        let sfx = suffix(&m, i);
        added += sfx.len() + n_gen;
        got.push(continue_greedy(f, &sfx, n_gen));
    }
    let held: f64 = forks.iter().map(|f| f.kv_bytes()).sum();
    let bound = 1.5 * one + added as f64 * per_token;
    eprintln!(
        "16 forks of a 1,000-token prompt, {added} tokens added: KV held {:.1} MiB ({:.0} positions), \
         bound {:.1} MiB, unshared {:.1} MiB",
        held / 1048576.0,
        held / per_token,
        bound / 1048576.0,
        (n_forks as f64 * one + added as f64 * per_token) / 1048576.0
    );
    assert!(held < bound, "forks hold {held} bytes, bound {bound}");

    // The unforked run: one session computing the prompt, then each suffix after it (the
    // context rolled back to the prompt in between).
    let mut reference = new_session(&m, KvType::F16);
    reference.append_tokens(&p, false, &never).unwrap();
    for (i, want) in got.iter().enumerate() {
        reference.truncate(p.len()).unwrap();
        let steps = continue_greedy(&mut reference, &suffix(&m, i), n_gen);
        assert!(steps == *want, "fork {i} differs from the unforked run");
    }
}

/// Forks of forks at different lengths, freed in an order unlike their creation, each equal to the
/// unforked run; a fork's saved state loads into a fresh session and continues alike.
#[test]
fn forks_of_forks_and_a_forks_state() {
    let m = model();
    let p = prompt(&m, 150);
    let mut root = new_session(&m, KvType::F16);
    root.append_tokens(&p, false, &never).unwrap();
    let mut a = root.fork();
    let ga = continue_greedy(&mut a, &suffix(&m, 1), 10);
    let mut b = a.fork(); // fork of a fork, mid-block
    let mut c = root.fork();
    drop(root);
    let gc = continue_greedy(&mut c, &suffix(&m, 3), 20);
    let mut d = b.fork();
    drop(a);
    let gb = continue_greedy(&mut b, &suffix(&m, 2), 33);
    let saved = state::save(&d).unwrap();
    let gd = continue_greedy(&mut d, &suffix(&m, 4), 5);
    drop(b);
    let mut loaded = new_session(&m, KvType::F16);
    state::load(&mut loaded, &saved).unwrap();
    assert_eq!(continue_greedy(&mut loaded, &suffix(&m, 4), 5), gd);
    drop(c);

    let mut r = new_session(&m, KvType::F16);
    r.append_tokens(&p, false, &never).unwrap();
    assert_eq!(continue_greedy(&mut r, &suffix(&m, 1), 10), ga);
    let mark = r.tokens().len();
    assert_eq!(continue_greedy(&mut r, &suffix(&m, 2), 33), gb);
    r.truncate(mark).unwrap();
    assert_eq!(continue_greedy(&mut r, &suffix(&m, 4), 5), gd);
    r.truncate(p.len()).unwrap();
    assert_eq!(continue_greedy(&mut r, &suffix(&m, 3), 20), gc);
}

/// The f32 cache forks by copying; the fork generates what the unforked f32 run does.
#[test]
fn an_f32_cache_forks_by_copy() {
    let m = model();
    let p = prompt(&m, 40);
    let mut s = new_session(&m, KvType::F32);
    s.append_tokens(&p, false, &never).unwrap();
    let mut f = s.fork();
    assert_eq!(f.kv_type(), KvType::F32);
    let got = continue_greedy(&mut f, &suffix(&m, 0), 8);
    assert_eq!(continue_greedy(&mut s, &suffix(&m, 0), 8), got);
}
