//! `CHORD_ISA` chooses the kernel path for the whole process (it is read once), so each case runs
//! this test binary again as a child with the variable set, and the child's helper test reports what
//! loading the default model and one public product gave.
mod common;

use std::process::Command;

/// Runs the `child_report` helper with `CHORD_ISA=value`; returns its report line.
fn child(value: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_report",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CHORD_ISA", value)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child with CHORD_ISA={value:?}: {stdout}"
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("REPORT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"))
        .to_string()
}

/// Not a test of its own: the child process of the tests below.
#[test]
#[ignore]
fn child_report() {
    use chord::model::{Model, ModelOptions};
    let load = match Model::load(common::default_model(), &ModelOptions::default()) {
        Ok(m) => {
            let line = m.describe();
            let compute = line.lines().find(|l| l.starts_with("compute: ")).unwrap();
            format!("ok {compute}")
        }
        Err(e) => format!("err {:?} {e}", e.code()),
    };
    let (w, x, mut y) = (vec![0u8; 34], vec![1.0f32; 32], vec![0.0f32; 1]);
    let product = match chord::quant::matmul(chord::quant::GgmlType::Q8_0, &w, 1, 32, &x, 1, &mut y)
    {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("err {:?}", e.code()),
    };
    println!("REPORT load: {load} | product: {product}");
}

#[test]
fn scalar_and_auto_load_and_say_so() {
    let r = child("scalar");
    assert!(
        r.starts_with("load: ok compute: backend cpu, scalar kernels (CHORD_ISA)"),
        "{r}"
    );
    assert!(r.ends_with("product: ok"), "{r}");
    let detected = chord::quant::Isa::detected().name();
    let r = child("auto");
    assert!(
        r.contains(&format!("{detected} kernels (CHORD_ISA)")),
        "{r}"
    );
    let r = child("");
    assert!(r.contains(&format!("{detected} kernels |")), "{r}");
}

#[test]
fn avx2_and_avx512_load_where_the_cpu_has_them_and_are_refused_elsewhere() {
    let cases = [
        ("avx2", chord::quant::Isa::avx2().is_some(), "lacks AVX2"),
        (
            "avx512",
            chord::quant::Isa::avx512().is_some(),
            "lacks AVX-512",
        ),
    ];
    for (name, runs_here, why) in cases {
        let r = child(name);
        if runs_here {
            assert!(r.contains(&format!("{name} kernels (CHORD_ISA)")), "{r}");
            assert!(r.ends_with("product: ok"), "{r}");
        } else {
            assert!(
                r.starts_with(&format!(
                    "load: err Unsupported CHORD_ISA={name}: this CPU {why}"
                )),
                "{r}"
            );
            assert!(r.ends_with("product: err Unsupported"), "{r}");
        }
    }
}

#[test]
fn unknown_paths_fail_loading_and_products() {
    let r = child("neon");
    assert!(r.starts_with("load: err InvalidArgument CHORD_ISA=\"neon\" is not a kernel path: use auto, scalar, avx2, avx512"), "{r}");
    assert!(r.ends_with("product: err InvalidArgument"), "{r}");
}
