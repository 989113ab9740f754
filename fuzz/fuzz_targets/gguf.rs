//! A GGUF file from arbitrary bytes, loaded as the C API loads one (`Model::load`: header,
//! metadata, tensor index, vocabulary, hyperparameters, weights' shapes and formats), then
//! described as `chord inspect` does. Any result is fine except a panic, a sanitizer report, a
//! hang or an allocation beyond libFuzzer's limit.
#![no_main]

use chord::model::{Model, ModelOptions};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The file each input is written to: the C API loads from a path, and so does this target.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("chord-fuzz-gguf-{}.gguf", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).expect("write the input file");
    for use_mmap in [true, false] {
        let opts = ModelOptions {
            n_threads: 1,
            use_mmap,
            ..ModelOptions::default()
        };
        if let Ok(m) = Model::load(p, &opts) {
            let _ = m.describe();
            let _ = m.n_params();
            let _ = m.chat_template();
            for (k, v) in m.gguf().metadata() {
                let _ = format!("{k}={v}");
            }
        }
    }
});
