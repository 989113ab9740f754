//! `llama`: LLaMA 1/2/3, Mistral (stored as `llama`), SmolLM, TinyLlama. llama.cpp:
//! `src/models/llama.cpp`.

use super::{Arch, RopeMode};

/// The llama description.
pub const LLAMA: Arch = Arch {
    name: "llama",
    rope: RopeMode::Normal,
    rope_freqs: true,
    qk_norm: false,
};
