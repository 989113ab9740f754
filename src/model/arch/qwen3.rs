//! `qwen3`: Qwen 3 dense models (per-head q/k RMS norms, NEOX RoPE, no biases; heads may be wider
//! than `n_embd / n_head`). llama.cpp: `src/models/qwen3.cpp`.

use super::{Arch, RopeMode};

/// The qwen3 description.
pub const QWEN3: Arch = Arch {
    name: "qwen3",
    rope: RopeMode::Neox,
    qk_norm: true,
    ..Arch::LLAMA_LIKE
};
