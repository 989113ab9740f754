//! `phi3`: Phi-3 and Phi-3.5 mini/medium (fused `attn_qkv` and `ffn_up` of gate and up rows, NEOX
//! RoPE, queries scaled before attention). Files whose sliding window llama.cpp ignores run as it
//! runs them, without one. llama.cpp: `src/models/phi3.cpp`.

use super::{Arch, RopeMode};

/// The phi3 description.
pub const PHI3: Arch = Arch {
    name: "phi3",
    rope: RopeMode::Neox,
    fused_gate_up: true,
    scale_queries: true,
    ..Arch::LLAMA_LIKE
};
