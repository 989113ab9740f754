//! `qwen2`: Qwen 2 and 2.5 (q/k/v biases, NEOX RoPE). llama.cpp: `src/models/qwen2.cpp`.

use super::{Arch, RopeMode};

/// The qwen2 description.
pub const QWEN2: Arch = Arch {
    name: "qwen2",
    rope: RopeMode::Neox,
    ..Arch::LLAMA_LIKE
};
