//! Session state loading (`chord_session_state_load`) from arbitrary bytes, into a session over
//! the tiny random model (`CHORD_FUZZ_MODEL`). A random buffer fails the checksum at once, so
//! the first byte picks how the input is used:
//! * 0: the rest as it is;
//! * 1: the rest with a correct checksum appended (reaches every field check);
//! * 2: a valid state of 5 evaluated tokens, patched by the rest as (u16 offset, u8 xor) triples
//!   and truncated or extended by its last byte, with the checksum fixed;
//! * 3: the same without fixing the checksum.
//!
//! A load either fails with `BadState` and leaves the session as it was, or succeeds and the
//! session then evaluates one more token.
#![no_main]

#[path = "common.rs"]
mod common;

use chord::model::Model;
use chord::session::{state, Session, SessionOptions};
use chord::ErrorCode;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, Mutex, OnceLock};

struct Fixture {
    session: Mutex<Session>,
    valid: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let model: Arc<Model> = common::model_from_env("CHORD_FUZZ_MODEL", false);
        let opts = SessionOptions {
            n_ctx: 64,
            ..SessionOptions::default()
        };
        let mut s = Session::new(model, &opts).expect("session");
        s.append_tokens(&[1, 2, 3, 4, 5], false, &|| false)
            .expect("evaluate 5 tokens");
        let valid = state::save(&s).expect("save");
        s.reset();
        Fixture {
            session: Mutex::new(s),
            valid,
        }
    })
}

fn with_checksum(mut body: Vec<u8>) -> Vec<u8> {
    let h = state::hash(&body);
    body.extend_from_slice(&h.to_le_bytes());
    body
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let buf = match mode % 4 {
        0 => rest.to_vec(),
        1 => with_checksum(rest.to_vec()),
        _ => {
            let mut body = f.valid[..f.valid.len() - 8].to_vec();
            for p in rest.chunks_exact(3) {
                let at = u16::from_le_bytes([p[0], p[1]]) as usize % body.len();
                body[at] ^= p[2];
            }
            if let Some(&last) = rest.last() {
                let n = body.len();
                match last % 3 {
                    0 => body.truncate(n - (last as usize % n)),
                    1 => body.extend(std::iter::repeat_n(last, last as usize)),
                    _ => {}
                }
            }
            if mode % 4 == 2 {
                with_checksum(body)
            } else {
                let sum = f.valid[f.valid.len() - 8..].to_vec();
                body.extend_from_slice(&sum);
                body
            }
        }
    };
    let mut s = f.session.lock().unwrap();
    s.reset();
    match state::load(&mut s, &buf) {
        Ok(()) => {
            if s.tokens().len() < s.n_ctx() {
                s.append_tokens(&[7], false, &|| false)
                    .expect("evaluate after a load");
            }
        }
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::BadState, "{e}");
            assert!(s.tokens().is_empty(), "a failed load changed the session");
        }
    }
});
