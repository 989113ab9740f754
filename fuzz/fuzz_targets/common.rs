//! What the targets share: models named by environment variables, loaded once per process.
#![allow(dead_code)] // each target uses part of it

use chord::model::{Model, ModelOptions};
use std::sync::Arc;

/// Loads the GGUF named by the environment variable `var` (one worker thread). Panics with the
/// variable's name when it is unset or the file does not load: a target run without its model
/// must fail loudly, not fuzz nothing.
pub fn model_from_env(var: &str, vocab_only: bool) -> Arc<Model> {
    let path = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} must name a GGUF file (make fuzz sets it)"));
    let opts = ModelOptions {
        n_threads: 1,
        vocab_only,
        ..ModelOptions::default()
    };
    Arc::new(Model::load(&path, &opts).unwrap_or_else(|e| panic!("cannot load {path}: {e}")))
}

/// Splits `data` at the first `sep` byte: (before, after); all of it and nothing without one.
pub fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
