//! Background generation polled for events ([`SessionHandle`]) on the real model: the same tokens
//! and text as a foreground generate, `Busy` for other calls while it runs, cancel, drop while
//! running, per-call and cumulative counters.
mod common;
use chord::model::{Model, ModelOptions};
use chord::session::{
    Event, GenerateParams, Output, Sampler, SamplerParams, Session, SessionHandle, SessionOptions,
    StopReason,
};
use chord::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

const PROMPT: &str =
    "<|im_start|>user\nTell me a long story about a dragon.<|im_end|>\n<|im_start|>assistant\n";

fn handle(m: &Arc<Model>) -> SessionHandle {
    let opts = SessionOptions {
        n_ctx: 512,
        ..Default::default()
    };
    let h = SessionHandle::new(Session::new(m.clone(), &opts).unwrap());
    h.with(|s, c| s.append_text(PROMPT, true, true, c)).unwrap();
    h
}

fn model() -> Arc<Model> {
    let opts = ModelOptions {
        n_threads: 2,
        ..Default::default()
    };
    Arc::new(Model::load(common::default_model(), &opts).unwrap())
}

fn params(n: usize) -> (GenerateParams, SamplerParams) {
    (
        GenerateParams {
            max_tokens: n,
            stop: vec!["\n\n\n".into()],
            ..Default::default()
        },
        SamplerParams {
            temperature: 0.8,
            seed: 99,
            ..Default::default()
        },
    )
}

/// Polls until the end event; returns the token ids, the text and the end event.
fn drain(h: &SessionHandle) -> (Vec<u32>, String, Event) {
    let (mut ids, mut text) = (Vec::new(), String::new());
    loop {
        let ev = h
            .poll(Duration::from_millis(200), |e| Ok(e.cloned()))
            .unwrap();
        match ev {
            None => continue,
            Some(Event::Token { id, text: t, .. }) => {
                ids.push(id);
                text.push_str(&t);
            }
            Some(e) => {
                if let Event::Done { text: t, .. } = &e {
                    text.push_str(t);
                }
                return (ids, text, e);
            }
        }
    }
}

#[test]
fn poll_equals_callback_and_blocks_other_calls() {
    let m = model();
    let (gen, sp) = params(40);
    // Foreground, with a callback.
    let fg = handle(&m);
    let (mut ids, mut text) = (Vec::new(), String::new());
    let reason = fg
        .with(|s, c| {
            s.generate(
                &gen,
                &mut Sampler::new(sp.clone()),
                &mut |o| {
                    match o {
                        Output::Token { id, text: t, .. } => {
                            ids.push(id);
                            text.push_str(t);
                        }
                        Output::Tail(t) => text.push_str(t),
                    }
                    true
                },
                c,
            )
        })
        .unwrap();

    // Background, polled.
    let bg = handle(&m);
    let n_prompt = bg.with(|s, _| Ok(s.tokens().len())).unwrap();
    bg.start(gen.clone(), Sampler::new(sp.clone())).unwrap();
    assert_eq!(
        bg.with(|s, _| Ok(s.tokens().len())).unwrap_err().code(),
        ErrorCode::Busy
    );
    assert_eq!(
        bg.start(gen.clone(), Sampler::new(sp.clone()))
            .unwrap_err()
            .code(),
        ErrorCode::Busy
    );
    let (pids, ptext, end) = drain(&bg);
    assert!(
        matches!(end, Event::Done { reason: r, .. } if r == reason),
        "{end:?}"
    );
    assert_eq!(pids, ids);
    assert_eq!(ptext, text);
    assert!(!ids.is_empty());
    // The session is back, with the generated tokens; nothing more to poll.
    let (toks, st) = bg
        .with(|s, _| Ok((s.tokens().to_vec(), s.stats())))
        .unwrap();
    assert_eq!(toks.len(), n_prompt + pids.len());
    assert_eq!(st.decode_tokens, pids.len());
    assert_eq!(
        bg.poll(Duration::from_millis(0), |e| Ok(e.is_none())),
        Ok(true)
    );
    // Cumulative counters: the prompt, then the generation.
    let total = bg.with(|s, _| Ok(s.total_stats())).unwrap();
    assert_eq!(total.prefill_tokens, n_prompt);
    assert_eq!(total.decode_tokens, pids.len());
}

#[test]
fn a_failed_delivery_keeps_the_event() {
    let m = model();
    let h = handle(&m);
    let (gen, sp) = params(3);
    h.start(gen, Sampler::new(sp)).unwrap();
    let first = loop {
        if let Some(e) = h
            .poll(Duration::from_millis(200), |e| Ok(e.cloned()))
            .ok()
            .flatten()
        {
            break e;
        }
    };
    // Refuse the next event: it comes again.
    let refused: Result<Event, _> = loop {
        let r = h.poll(Duration::from_millis(200), |e| match e {
            None => Ok(None::<()>),
            Some(e) => Err(chord::Error::new(
                ErrorCode::BufferTooSmall,
                format!("{e:?}"),
            )),
        });
        match r {
            Ok(None) => continue,
            Ok(Some(_)) => unreachable!(),
            Err(e) => break Err(e),
        }
    };
    let msg = refused.unwrap_err().message().to_string();
    let again = h
        .poll(Duration::from_millis(0), |e| {
            Ok(format!("{:?}", e.unwrap()))
        })
        .unwrap();
    assert_eq!(msg, again);
    assert!(matches!(first, Event::Token { .. }));
    drain(&h);
}

#[test]
fn cancel_keeps_generated_tokens_and_drop_joins() {
    let m = model();
    let h = handle(&m);
    let n_prompt = h.with(|s, _| Ok(s.tokens().len())).unwrap();
    let (gen, sp) = params(400);
    h.start(gen.clone(), Sampler::new(sp.clone())).unwrap();
    let mut got = 0;
    while got < 3 {
        if let Ok(Some(true)) = h.poll(Duration::from_millis(200), |e| {
            Ok(e.map(|e| matches!(e, Event::Token { .. })))
        }) {
            got += 1;
        }
    }
    h.cancel();
    h.cancel();
    let (ids, _, end) = drain(&h);
    match end {
        Event::Error(e) => assert_eq!(e.code(), ErrorCode::Cancelled),
        e => panic!("expected a cancel, got {e:?}"),
    }
    // Tokens queued before the cancel are still delivered; all of them stay in the context.
    let n = h.with(|s, _| Ok(s.tokens().len())).unwrap();
    assert_eq!(n, n_prompt + got + ids.len());
    // A cancel aimed at the finished generation does not hit the next call.
    h.with(|s, c| s.append_tokens(&[28], false, c)).unwrap();
    // Usable again; then dropped while a generation runs.
    h.start(gen, Sampler::new(sp)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(h);
    // The model is still fine for a new session.
    let h2 = handle(&m);
    h2.with(|s, _| Ok(s.tokens().len())).unwrap();
}

#[test]
fn stop_reason_of_max_tokens_and_no_logits() {
    let m = model();
    let h = handle(&m);
    let (gen, sp) = params(2);
    h.start(gen.clone(), Sampler::new(sp.clone())).unwrap();
    let (ids, _, end) = drain(&h);
    assert_eq!(ids.len(), 2);
    assert!(matches!(
        end,
        Event::Done {
            reason: StopReason::MaxTokens,
            ..
        }
    ));
    h.with(|s, _| s.truncate(3)).unwrap();
    assert_eq!(
        h.start(gen, Sampler::new(sp)).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        h.poll(Duration::from_millis(0), |e| Ok(e.is_none())),
        Ok(true)
    );
}
