//! The model side of the API in Rust: loading with and without mmap, progress and cancellation,
//! option validation, and typed metadata lookups (on the real model and on a hand-built GGUF that
//! holds every value type, an empty array and out-of-range integers).

mod common;

use chord::gguf::query::{to_bool, to_f64, to_i64, to_str, to_u64};
use chord::gguf::{GgufFile, MetaType};
use chord::model::{BackendKind, Model, ModelOptions, Progress, MAX_THREADS};
use chord::ErrorCode;
use std::sync::{Arc, Mutex};

fn opts() -> ModelOptions {
    ModelOptions {
        n_threads: 1,
        ..Default::default()
    }
}

#[test]
fn owned_read_equals_map() {
    let path = common::default_model();
    let mapped = GgufFile::open(&path).unwrap();
    let mut steps = Vec::new();
    let owned = GgufFile::read(&path, |done, total| {
        steps.push((done, total));
        Ok(())
    })
    .unwrap();
    assert!(mapped.is_mapped() && !owned.is_mapped());
    assert_eq!(&mapped.map()[..], &owned.map()[..]);
    assert_eq!(mapped.metadata(), owned.metadata());
    let len = mapped.file_size();
    assert_eq!(steps.last(), Some(&(len, len)));
    assert_eq!(steps.len(), len.div_ceil(chord::gguf::READ_CHUNK));
    // The owned copy is page-aligned like a map, so tensor data keeps the file's alignment.
    assert_eq!(owned.map().as_ptr() as usize % 4096, 0);
}

#[test]
fn read_error_stops_and_is_returned() {
    let path = common::default_model();
    let mut calls = 0;
    let e = GgufFile::read(&path, |_, _| {
        calls += 1;
        Err(chord::Error::new(ErrorCode::Cancelled, "stop"))
    })
    .err()
    .unwrap();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert_eq!(calls, 1);
}

#[test]
fn progress_is_monotonic_and_cancels_at_any_step() {
    let path = common::default_model();
    for use_mmap in [true, false] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let o = ModelOptions {
            use_mmap,
            progress: Some(Progress(Arc::new(move |p| {
                s.lock().unwrap().push(p);
                true
            }))),
            ..opts()
        };
        let m = Model::load(&path, &o).unwrap();
        assert_eq!(m.uses_mmap(), use_mmap);
        let seen = seen.lock().unwrap().clone();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(seen.first(), Some(&0.0));
        assert_eq!(seen.last(), Some(&1.0));
        for k in [1, seen.len() / 2, seen.len()] {
            let calls = Arc::new(Mutex::new(0));
            let c = calls.clone();
            let o = ModelOptions {
                use_mmap,
                progress: Some(Progress(Arc::new(move |_| {
                    let mut n = c.lock().unwrap();
                    *n += 1;
                    *n < k
                }))),
                ..opts()
            };
            let e = Model::load(&path, &o).err().expect("cancelled");
            assert_eq!(e.code(), ErrorCode::Cancelled, "{}", e.message());
            assert_eq!(*calls.lock().unwrap(), k);
        }
    }
}

#[test]
fn options_are_validated_and_recorded() {
    let path = common::default_model();
    let bad = |o: ModelOptions| Model::load(&path, &o).err().expect("fails").code();
    assert_eq!(
        bad(ModelOptions {
            backend: BackendKind::Cuda,
            ..opts()
        }),
        ErrorCode::Unsupported
    );
    assert_eq!(
        bad(ModelOptions {
            n_threads: MAX_THREADS + 1,
            ..opts()
        }),
        ErrorCode::InvalidArgument
    );
    let m = Model::load(
        &path,
        &ModelOptions {
            memory_budget: 1 << 30,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(m.memory_budget(), 1 << 30);
    assert_eq!(m.backend(), BackendKind::Cpu);
    assert!(m.describe().contains("memory_budget=1073741824"));
    let sizes: u64 = m.gguf().tensors().iter().map(|t| t.size as u64).sum();
    assert_eq!(m.weight_bytes(), sizes);
    let cfg = m.config().unwrap();
    assert!(m.n_params() > (cfg.n_vocab * cfg.n_embd) as u64);
}

/// Appends a GGUF string.
fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// A GGUF v3 file without tensors holding one value of every type plus edge cases.
fn every_type_gguf() -> Vec<u8> {
    let mut kv: Vec<(&str, u32, Vec<u8>)> = vec![
        ("t.u8", 0, vec![200]),
        ("t.i8", 1, vec![(-5i8) as u8]),
        ("t.u16", 2, 60000u16.to_le_bytes().to_vec()),
        ("t.i16", 3, (-300i16).to_le_bytes().to_vec()),
        ("t.u32", 4, 4_000_000_000u32.to_le_bytes().to_vec()),
        ("t.i32", 5, (-7i32).to_le_bytes().to_vec()),
        ("t.f32", 6, 0.25f32.to_le_bytes().to_vec()),
        ("t.bool", 7, vec![1]),
        ("t.u64", 10, u64::MAX.to_le_bytes().to_vec()),
        ("t.i64", 11, i64::MIN.to_le_bytes().to_vec()),
        ("t.f64", 12, (-1.5f64).to_le_bytes().to_vec()),
    ];
    let mut s = Vec::new();
    put_str(&mut s, "héllo");
    kv.push(("t.str", 8, s));
    let mut empty = 12u32.to_le_bytes().to_vec(); // array of f64, no elements
    empty.extend(0u64.to_le_bytes());
    kv.push(("t.empty", 9, empty));
    let mut ints = 5u32.to_le_bytes().to_vec(); // array of i32
    ints.extend(3u64.to_le_bytes());
    for v in [1i32, -2, 3] {
        ints.extend(v.to_le_bytes());
    }
    kv.push(("t.ints", 9, ints));
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend((kv.len() as u64).to_le_bytes());
    for (k, ty, v) in &kv {
        put_str(&mut b, k);
        b.extend(ty.to_le_bytes());
        b.extend(v);
    }
    b
}

#[test]
fn typed_lookups_follow_the_widening_rules() {
    let path = std::env::temp_dir().join(format!("chord-every-type-{}.gguf", std::process::id()));
    std::fs::write(&path, every_type_gguf()).unwrap();
    let owned = GgufFile::read(&path, |_, _| Ok(()));
    let mapped = GgufFile::open(&path);
    std::fs::remove_file(&path).unwrap();
    for f in [owned.unwrap(), mapped.unwrap()] {
        let v = |k: &str| f.meta(k).unwrap();
        let ty = |k: &str| MetaType::of(v(k)) as u32;
        let names = [
            "t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32", "t.bool", "t.str",
            "t.empty", "t.u64", "t.i64", "t.f64",
        ];
        for (id, k) in names.iter().enumerate() {
            assert_eq!(ty(k), id as u32, "{k}");
        }
        assert_eq!(to_u64(v("t.u8"), "k").unwrap(), 200);
        assert_eq!(to_i64(v("t.u32"), "k").unwrap(), 4_000_000_000);
        assert_eq!(to_u64(v("t.u64"), "k").unwrap(), u64::MAX);
        assert_eq!(to_i64(v("t.i64"), "k").unwrap(), i64::MIN);
        assert_eq!(to_i64(v("t.i16"), "k").unwrap(), -300);
        for k in ["t.i8", "t.i16", "t.i32", "t.i64"] {
            assert_eq!(to_u64(v(k), k).unwrap_err().code(), ErrorCode::TypeMismatch);
        }
        assert_eq!(
            to_i64(v("t.u64"), "k").unwrap_err().code(),
            ErrorCode::TypeMismatch
        );
        assert_eq!(to_f64(v("t.f32"), "k").unwrap(), 0.25);
        assert_eq!(to_f64(v("t.f64"), "k").unwrap(), -1.5);
        assert_eq!(
            to_f64(v("t.u8"), "k").unwrap_err().code(),
            ErrorCode::TypeMismatch
        );
        assert!(to_bool(v("t.bool"), "k").unwrap());
        assert_eq!(to_str(v("t.str"), "k").unwrap(), "héllo");
        // An empty array keeps its element type.
        assert_eq!(f.meta_array("t.empty").unwrap().len(), 0);
        assert_eq!(f.meta_array_type("t.empty").unwrap(), MetaType::F64);
        assert_eq!(
            f.meta_element("t.empty", 0).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        assert_eq!(f.meta_array_type("t.ints").unwrap(), MetaType::I32);
        assert_eq!(
            to_i64(&f.meta_element("t.ints", 1).unwrap(), "k").unwrap(),
            -2
        );
        assert_eq!(
            f.meta_array("t.u8").unwrap_err().code(),
            ErrorCode::TypeMismatch
        );
        assert_eq!(f.meta("nope").unwrap_err().code(), ErrorCode::NotFound);
        assert_eq!(f.meta_entry(0).unwrap().0, "t.u8");
        assert_eq!(
            f.meta_entry(names.len() + 1).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }
}
