//! Generates include/chord.h from src/ffi with cbindgen. The header is committed; CI regenerates it
//! and fails when the committed one differs.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(&dir).join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let header = Path::new(&dir).join("include/chord.h");
    // Only src/ffi is the ABI: parse just its module tree (cbindgen follows its `mod` items), so no
    // other public item leaks into the header.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(Path::new(&dir).join("src/ffi/mod.rs"));
    match builder.generate() {
        Ok(bindings) => {
            // write_to_file only rewrites the file when its content changes.
            bindings.write_to_file(&header);
        }
        Err(e) => {
            // A syntax error in src/ffi is reported by rustc itself; do not fail the build here.
            println!("cargo:warning=cbindgen could not generate include/chord.h: {e}");
        }
    }
}
