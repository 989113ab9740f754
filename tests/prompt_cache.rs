//! The model's prompt cache ([`chord::model::PromptCache`]) on the real model: a session whose
//! prompt starts like a stored one takes the shared prefix (sharing its memory), computes only
//! the rest, and gets
//! the logits and greedy text of a session without the cache; what is stored and when; precision
//! and all-logits appends that do not use it. Time to first token: `chord bench --prompt-cache`.
mod common;
use chord::model::{Model, ModelOptions};
use chord::session::{
    GenerateParams, KvType, Output, Sampler, SamplerParams, Session, SessionOptions,
};
use std::sync::Arc;

/// A system prompt shared by every character, and two characters' own lines.
fn prompts() -> (String, String) {
    let world = "You are a character in a fantasy village. The village sits by a river, the mill \
                 turns day and night, the blacksmith sells swords and the inn sells ale. "
        .repeat(6);
    (
        format!("{world}You are the blacksmith. A traveller asks about swords."),
        format!("{world}You are the innkeeper. A traveller asks for a room."),
    )
}

fn model(cache_bytes: u64) -> Arc<Model> {
    let opts = ModelOptions {
        n_threads: 2,
        prompt_cache_bytes: cache_bytes,
        ..Default::default()
    };
    Arc::new(Model::load(common::default_model(), &opts).unwrap())
}

fn session(m: &Arc<Model>, kv_type: KvType) -> Session {
    let opts = SessionOptions {
        n_ctx: 512,
        kv_type,
        ..Default::default()
    };
    Session::new(m.clone(), &opts).unwrap()
}

fn never() -> bool {
    false
}

fn greedy(s: &mut Session) -> String {
    let params = GenerateParams {
        max_tokens: 24,
        ..Default::default()
    };
    let mut sampler = Sampler::new(SamplerParams {
        temperature: 0.0,
        ..Default::default()
    });
    let mut text = String::new();
    s.generate(
        &params,
        &mut sampler,
        &mut |o| {
            match o {
                Output::Token { text: t, .. } | Output::Tail(t) => text.push_str(t),
            }
            true
        },
        &never,
    )
    .unwrap();
    text
}

#[test]
fn a_shared_prefix_is_shared_not_computed() {
    let (smith, inn) = prompts();
    let plain = model(0);
    let cached = model(64 << 20);
    let cache = cached.prompt_cache().unwrap();

    // The first prompt is computed and stored.
    let mut a = session(&cached, KvType::F16);
    a.append_text(&smith, true, true, &never).unwrap();
    let n_smith = a.tokens().len();
    assert_eq!(a.stats().prefill_tokens, n_smith);
    assert!(cache.bytes() > 0);
    assert_eq!(cache.tokens_reused(), 0);

    // The second shares the world description: only its own part is computed.
    let mut b = session(&cached, KvType::F16);
    b.append_text(&inn, true, true, &never).unwrap();
    let toks = b.tokens().to_vec();
    let shared = toks
        .iter()
        .zip(a.tokens())
        .take_while(|(x, y)| x == y)
        .count();
    assert!(shared > 100, "{shared} shared tokens");
    assert_eq!(cache.tokens_reused(), shared as u64);
    assert_eq!(b.stats().prefill_tokens, toks.len() - shared);

    // The same logits and text as without the cache.
    let mut c = session(&plain, KvType::F16);
    c.append_text(&inn, true, true, &never).unwrap();
    assert_eq!(c.tokens(), toks);
    assert_eq!(b.logits(), c.logits());
    assert_eq!(greedy(&mut b), greedy(&mut c));

    // The same prompt again: all but its last two tokens come from the cache, their memory
    // shared with the entry and the session that stored it (each block counted as a share).
    let alone = c.kv_bytes();
    let mut d = session(&cached, KvType::F16);
    d.append_text(&smith, true, true, &never).unwrap();
    assert_eq!(d.stats().prefill_tokens, 2);
    assert!(
        d.kv_bytes() < 0.5 * alone,
        "a session taking its prompt from the cache holds {} bytes, one computing it {alone}",
        d.kv_bytes()
    );
    assert_eq!(d.logits(), a.logits());
    assert_eq!(greedy(&mut d), greedy(&mut a));
}

#[test]
fn what_uses_the_cache() {
    let (smith, _) = prompts();
    let cached = model(64 << 20);
    let cache = cached.prompt_cache().unwrap();
    let mut a = session(&cached, KvType::F16);
    a.append_text(&smith, true, true, &never).unwrap();
    let stored = cache.bytes();

    // Another precision, an append asking for every position's logits, an append to a context
    // that is not empty: computed in full, nothing reused.
    let mut f32s = session(&cached, KvType::F32);
    f32s.append_text(&smith, true, true, &never).unwrap();
    assert_eq!(f32s.stats().prefill_tokens, f32s.tokens().len());
    let toks = a.tokens().to_vec();
    let mut all = session(&cached, KvType::F16);
    all.append_tokens(&toks, true, &never).unwrap();
    assert_eq!(all.stats().prefill_tokens, toks.len());
    assert_eq!(
        all.logits().len(),
        toks.len() * cached.tokenizer().n_vocab()
    );
    let mut later = session(&cached, KvType::F16);
    later.append_tokens(&toks[..1], false, &never).unwrap();
    later.append_tokens(&toks[1..], false, &never).unwrap();
    assert_eq!(later.stats().prefill_tokens, toks.len() - 1);
    assert_eq!(cache.tokens_reused(), 0);
    // The F32 prompt was stored beside the F16 one; the rest added nothing.
    assert!(cache.bytes() > stored);

    // A short prompt is not stored; a cache too small for a prompt stores nothing.
    let before = cache.bytes();
    let mut short = session(&cached, KvType::F16);
    short
        .append_text("Hello there", true, true, &never)
        .unwrap();
    assert_eq!(cache.bytes(), before);
    let tiny = model(1000);
    let mut t = session(&tiny, KvType::F16);
    t.append_text(&smith, true, true, &never).unwrap();
    assert_eq!(tiny.prompt_cache().unwrap().bytes(), 0);
}
