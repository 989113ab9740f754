//! Generates include/chord.h from src/ffi with cbindgen, and names the shared library after the ABI
//! version (SONAME `libchord.so.<ABI>` on ELF targets, install name `@rpath/libchord.<ABI>.dylib`
//! on Apple targets). The header is committed; CI regenerates it and fails when the committed one
//! differs.

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
    shared_library_name(&header);
}

/// Passes the linker the shared library's ABI name, read from `CHORD_ABI_VERSION` in the header
/// just generated (the Makefile's `install` reads the same line), so that programs linked against
/// `libchord.so` record `libchord.so.<ABI>` and refuse to load an incompatible one.
fn shared_library_name(header: &Path) {
    let text = std::fs::read_to_string(header).unwrap_or_default();
    let Some(abi) = text.lines().find_map(|line| {
        let value = line.strip_prefix("#define CHORD_ABI_VERSION ")?.trim();
        value.parse::<u32>().ok()
    }) else {
        println!(
            "cargo:warning=include/chord.h defines no CHORD_ABI_VERSION; libchord has no SONAME"
        );
        return;
    };
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    if os == "macos" || os == "ios" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libchord.{abi}.dylib");
    } else if family.split(',').any(|f| f == "unix") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libchord.so.{abi}");
    }
}
