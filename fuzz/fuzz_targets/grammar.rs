//! A GBNF grammar from arbitrary bytes (`chord_grammar_new` with root `root`), then, when it
//! compiles, the bytes after the first NUL fed through it as one-byte pieces until it refuses
//! one. The input is `grammar \0 text`.
#![no_main]

#[path = "common.rs"]
mod common;

use chord::grammar::{Grammar, GrammarState};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let (gbnf, text) = common::split(data, 0);
    let Ok(gbnf) = std::str::from_utf8(gbnf) else {
        return;
    };
    let Ok(g) = Grammar::new(gbnf, "root", None) else {
        return;
    };
    let _ = g.rules();
    let mut st = GrammarState::new(Arc::new(g));
    for (i, b) in text.iter().enumerate() {
        let piece = [*b];
        if !st.allows(i as u32, &piece) || st.accept(i as u32, &piece).is_err() {
            break;
        }
    }
    let _ = st.can_end();
});
