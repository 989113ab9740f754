//! Helpers shared by the integration tests: where the test models live.
#![allow(dead_code)]

use std::path::PathBuf;

/// The cache folder that scripts/env.sh uses.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CHORD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cache/chord")
        })
}

/// A test model by file name; panics (the test fails loudly) when it is missing.
pub fn model(name: &str) -> PathBuf {
    let p = cache_dir().join("models").join(name);
    assert!(
        p.exists(),
        "test model {} is missing: run scripts/fetch-test-data.sh",
        p.display()
    );
    p
}

/// The default model, SmolLM2-135M-Instruct Q4_1.
pub fn default_model() -> PathBuf {
    model("SmolLM2-135M-Instruct.Q4_1.gguf")
}
