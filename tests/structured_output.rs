//! Structured output from a real model (SmolLM2-135M-Instruct Q4_1): 100 generations at
//! temperature 1.0 under the JSON Schema of an NPC action all parse as JSON and validate against
//! the schema; greedy generation under a grammar equals greedy generation with every disallowed
//! token banned by hand (the grammar only removes tokens, it changes no logit).

mod common;

use chord::grammar::Grammar;
use chord::model::{Model, ModelOptions};
use chord::session::{
    GenerateParams, Output, Sampler, SamplerParams, Session, SessionOptions, StopReason,
};
use std::sync::Arc;

const NO: &(dyn Fn() -> bool + Sync) = &|| false;

const NPC_SCHEMA: &str = r#"{
    "type": "object",
    "properties": {
        "action": {"enum": ["attack", "flee", "talk", "trade"]},
        "say": {"type": "string", "maxLength": 60},
        "amount": {"type": "integer", "minimum": 0, "maximum": 100}
    },
    "required": ["action", "say", "amount"],
    "additionalProperties": false
}"#;

fn model() -> Arc<Model> {
    Arc::new(Model::load(common::default_model(), &ModelOptions::default()).expect("load SmolLM2"))
}

/// The generated text and why it stopped.
fn generate(s: &mut Session, prompt: &str, sp: SamplerParams, max: usize) -> (String, StopReason) {
    s.reset();
    s.append_text(prompt, true, true, NO).unwrap();
    let mut text = String::new();
    let params = GenerateParams {
        max_tokens: max,
        ..Default::default()
    };
    let mut on = |o: Output<'_>| {
        match o {
            Output::Token { text: t, .. } | Output::Tail(t) => text.push_str(t),
        }
        true
    };
    let reason = s
        .generate(&params, &mut Sampler::new(sp), &mut on, NO)
        .expect("generate");
    (text, reason)
}

fn valid_npc(v: &serde_json::Value) -> Result<(), String> {
    let o = v.as_object().ok_or("not an object")?;
    if o.len() != 3 {
        return Err(format!("{} properties", o.len()));
    }
    let action = o
        .get("action")
        .and_then(|a| a.as_str())
        .ok_or("no action")?;
    if !["attack", "flee", "talk", "trade"].contains(&action) {
        return Err(format!("action {action}"));
    }
    let say = o.get("say").and_then(|s| s.as_str()).ok_or("no say")?;
    if say.chars().count() > 60 {
        return Err(format!("say has {} characters", say.chars().count()));
    }
    let amount = o
        .get("amount")
        .and_then(|a| a.as_i64())
        .ok_or("amount is not an integer")?;
    if !(0..=100).contains(&amount) {
        return Err(format!("amount {amount}"));
    }
    Ok(())
}

#[test]
fn npc_actions_always_validate() {
    let m = model();
    let g = Arc::new(Grammar::from_json_schema(NPC_SCHEMA, true, None).expect("schema"));
    let mut s = Session::new(
        m,
        &SessionOptions {
            n_ctx: 512,
            ..Default::default()
        },
    )
    .unwrap();
    let prompt = "<|im_start|>user\nYou are a goblin merchant. A knight enters your shop. What do you do? Answer as JSON.<|im_end|>\n<|im_start|>assistant\n";
    let mut actions = std::collections::BTreeMap::new();
    for seed in 0..100 {
        let sp = SamplerParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            grammar: Some(g.clone()),
            ..Default::default()
        };
        let (text, reason) = generate(&mut s, prompt, sp, 256);
        assert_eq!(reason, StopReason::EndOfGeneration, "seed {seed}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: not JSON ({e}): {text}"));
        valid_npc(&v).unwrap_or_else(|e| panic!("seed {seed}: {e}: {text}"));
        *actions
            .entry(v["action"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    println!("actions over 100 samples: {actions:?}");
}

#[test]
fn a_grammar_only_removes_tokens() {
    let m = model();
    let vocab = m.tokenizer();
    let g = Arc::new(Grammar::new("root ::= [A-Z] [a-z ,]* \".\"", "root", None).unwrap());
    let mut s = Session::new(
        m.clone(),
        &SessionOptions {
            n_ctx: 256,
            ..Default::default()
        },
    )
    .unwrap();
    let prompt = "The weather today is";
    let greedy = SamplerParams {
        temperature: 0.0,
        ..Default::default()
    };
    let (constrained, _) = generate(
        &mut s,
        prompt,
        SamplerParams {
            grammar: Some(g.clone()),
            ..greedy.clone()
        },
        12,
    );
    // The same by hand: at each step the best token that the grammar state allows.
    s.reset();
    s.append_text(prompt, true, true, NO).unwrap();
    let mut state = chord::grammar::GrammarState::new(g);
    let mut text = Vec::new();
    for _ in 0..12 {
        let logits = s.logits().to_vec();
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        let tok = *order
            .iter()
            .find(|&&t| {
                if vocab.is_eog(t) {
                    state.can_end()
                } else {
                    state.allows(t, vocab.rendered_piece(t))
                }
            })
            .unwrap();
        if vocab.is_eog(tok) {
            break;
        }
        state.accept(tok, vocab.rendered_piece(tok)).unwrap();
        text.extend_from_slice(&vocab.token_to_piece(tok, false));
        s.append_tokens(&[tok], false, NO).unwrap();
    }
    assert_eq!(constrained, String::from_utf8_lossy(&text));
    assert!(
        constrained.starts_with(|c: char| c.is_ascii_uppercase()),
        "{constrained}"
    );
}
