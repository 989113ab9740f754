//! Each way an architecture's file can be wrong gives its own clear error from `Model::load`, never
//! a panic: the Qwen2-, Qwen3- and Gemma2-shape test models (scripts/make-random-model.py) and the
//! real Gemma 3 270M file with one thing in their header changed in place (same length, so the rest
//! of the file stays valid GGUF), and the unchanged files load and describe their architecture.
mod common;

use chord::model::{Model, ModelOptions};
use chord::ErrorCode;

/// The Qwen2 test model's bytes.
fn qwen2_bytes() -> Vec<u8> {
    std::fs::read(common::model("qwen2-shape-random.Q4_K_M.gguf")).unwrap()
}

/// The Qwen3 test model's bytes.
fn qwen3_bytes() -> Vec<u8> {
    std::fs::read(common::model("qwen3-shape-random.Q4_K_M.gguf")).unwrap()
}

/// Replaces the first occurrence of `from` (a length-prefixed GGUF string when `prefixed`, the
/// bytes alone otherwise) with `to`, of the same length.
fn replace(bytes: &mut [u8], from: &str, to: &str, prefixed: bool) {
    assert_eq!(from.len(), to.len());
    let mut pat = Vec::new();
    if prefixed {
        pat.extend_from_slice(&(from.len() as u64).to_le_bytes());
    }
    pat.extend_from_slice(from.as_bytes());
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .unwrap_or_else(|| panic!("{from:?} is not in the file"));
    let start = at + pat.len() - from.len();
    bytes[start..start + to.len()].copy_from_slice(to.as_bytes());
}

/// Changes the 4-byte value of metadata key `key`, of GGUF type `ty`, from `from` to `to`.
fn set_4(bytes: &mut [u8], key: &str, ty: u32, from: [u8; 4], to: [u8; 4]) {
    let mut pat = (key.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .unwrap_or_else(|| panic!("{key} is not in the file"))
        + pat.len();
    // The value's type, then the value.
    assert_eq!(bytes[at..at + 4], ty.to_le_bytes(), "{key} is of type {ty}");
    assert_eq!(bytes[at + 4..at + 8], from, "{key} = {from:?}");
    bytes[at + 4..at + 8].copy_from_slice(&to);
}

/// Changes the u32 value of metadata key `key` from `from` to `to`.
fn set_u32(bytes: &mut [u8], key: &str, from: u32, to: u32) {
    set_4(bytes, key, 4, from.to_le_bytes(), to.to_le_bytes());
}

/// Changes the f32 value of metadata key `key` from `from` to `to`.
fn set_f32(bytes: &mut [u8], key: &str, from: f32, to: f32) {
    set_4(bytes, key, 6, from.to_le_bytes(), to.to_le_bytes());
}

/// Loads `bytes` from a file of their own.
fn load(bytes: &[u8], tag: &str) -> chord::Result<Model> {
    let path = std::env::temp_dir().join(format!("chord-arch-{tag}-{}.gguf", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let r = Model::load(&path, &ModelOptions::default());
    let _ = std::fs::remove_file(&path);
    r
}

/// Loads `bytes` and checks the error's code and that its message holds `needles`.
fn fails(bytes: &[u8], tag: &str, code: ErrorCode, needles: &[&str]) {
    let e = match load(bytes, tag) {
        Ok(_) => panic!("{tag}: the model loaded"),
        Err(e) => e,
    };
    assert_eq!(e.code(), code, "{tag}: {e}");
    for n in needles {
        assert!(
            e.message().contains(n),
            "{tag}: {:?} lacks {n:?}",
            e.message()
        );
    }
}

#[test]
fn the_unchanged_file_loads_as_qwen2() {
    let m = load(&qwen2_bytes(), "ok").unwrap();
    let d = m.describe();
    assert!(d.contains("architecture: qwen2"), "{d}");
    assert!(
        d.contains("layers: RoPE neox (halves), RMSNorm, SwiGLU, q/k/v biases"),
        "{d}"
    );
}

#[test]
fn an_unknown_architecture_names_itself_and_the_supported_ones() {
    let mut b = qwen2_bytes();
    replace(&mut b, "qwen2", "qwen9", true);
    fails(
        &b,
        "unknown",
        ErrorCode::UnknownArchitecture,
        &["'qwen9'", "chord runs: llama, qwen2, qwen3"],
    );
}

#[test]
fn biases_for_some_projections_only_are_refused() {
    let mut b = qwen2_bytes();
    replace(&mut b, "blk.0.attn_k.bias", "blk.0.attn_k.biaz", true);
    fails(
        &b,
        "partial-bias",
        ErrorCode::Unsupported,
        &["layer 0", "biases for some"],
    );
}

#[test]
fn a_bias_of_the_wrong_shape_names_the_tensor() {
    let mut b = qwen2_bytes();
    // The query bias (896 values) and the key bias (128) trade names.
    replace(&mut b, "blk.1.attn_q.bias", "blk.1.attn_x.bias", true);
    replace(&mut b, "blk.1.attn_k.bias", "blk.1.attn_q.bias", true);
    replace(&mut b, "blk.1.attn_x.bias", "blk.1.attn_k.bias", true);
    fails(
        &b,
        "bias-shape",
        ErrorCode::BadModel,
        &["blk.1.attn_q.bias", "[128]", "expected [896]"],
    );
}

#[test]
fn a_missing_required_tensor_is_named() {
    let mut b = qwen2_bytes();
    replace(&mut b, "blk.3.ffn_up.weight", "blk.3.ffn_uq.weight", true);
    fails(
        &b,
        "missing",
        ErrorCode::BadModel,
        &["no tensor 'blk.3.ffn_up.weight'"],
    );
}

#[test]
fn heads_that_do_not_group_are_refused() {
    let mut b = qwen2_bytes();
    // 14 query heads do not group over 3 key/value heads.
    set_u32(&mut b, "qwen2.attention.head_count_kv", 2, 3);
    fails(
        &b,
        "heads",
        ErrorCode::BadModel,
        &["14 query heads cannot be grouped over 3"],
    );
}

#[test]
fn the_unchanged_qwen3_file_loads() {
    let d = load(&qwen3_bytes(), "ok3").unwrap().describe();
    assert!(d.contains("architecture: qwen3"), "{d}");
    assert!(d.contains("head_dim=128"), "{d}");
    assert!(d.contains("q/k RMSNorm per head"), "{d}");
}

#[test]
fn a_missing_head_norm_is_named() {
    let mut b = qwen3_bytes();
    replace(
        &mut b,
        "blk.2.attn_k_norm.weight",
        "blk.2.attn_k_norx.weight",
        true,
    );
    fails(
        &b,
        "qk-norm",
        ErrorCode::BadModel,
        &["no tensor 'blk.2.attn_k_norm.weight'"],
    );
}

#[test]
fn value_heads_of_another_width_are_refused() {
    let mut b = qwen3_bytes();
    set_u32(&mut b, "qwen3.attention.value_length", 128, 96);
    fails(
        &b,
        "value-length",
        ErrorCode::Unsupported,
        &["value heads of 96 values differ from key heads of 128"],
    );
}

/// The real Gemma 3 270M file's bytes (scripts/fetch-gemma3.sh).
fn gemma3_bytes() -> Vec<u8> {
    std::fs::read(common::model("gemma-3-270m-Q4_K_M.gguf")).unwrap()
}

#[test]
fn the_unchanged_gemma3_file_describes_its_window_pattern() {
    let d = load(&gemma3_bytes(), "ok-gemma3").unwrap().describe();
    assert!(d.contains("architecture: gemma3"), "{d}");
    assert!(
        d.contains("GeGLU (tanh), q/k RMSNorm per head, post-attention and post-FFN RMSNorm"),
        "{d}"
    );
    assert!(
        d.contains(
            "sliding window of 512 on 15 of 18 layers (RoPE base 10000), global layers: 5 11 17"
        ),
        "{d}"
    );
}

#[test]
fn a_sliding_window_larger_than_the_context_is_refused() {
    let mut b = gemma3_bytes();
    set_u32(&mut b, "gemma3.attention.sliding_window", 512, 40000);
    fails(
        &b,
        "window",
        ErrorCode::BadModel,
        &["sliding window of 40000 positions is larger than the context of 32768"],
    );
}

#[test]
fn a_missing_post_norm_is_named() {
    let mut b = gemma3_bytes();
    replace(
        &mut b,
        "blk.7.post_ffw_norm.weight",
        "blk.7.post_ffw_norx.weight",
        true,
    );
    fails(
        &b,
        "post-norm",
        ErrorCode::BadModel,
        &["no tensor 'blk.7.post_ffw_norm.weight'"],
    );
}

#[test]
fn a_negative_soft_cap_is_refused() {
    let mut b = std::fs::read(common::model("gemma2-shape-random.Q8_0.gguf")).unwrap();
    set_f32(&mut b, "gemma2.final_logit_softcapping", 5.0, -5.0);
    fails(
        &b,
        "softcap",
        ErrorCode::BadModel,
        &["'gemma2.final_logit_softcapping' = -5 is not a soft cap"],
    );
}
