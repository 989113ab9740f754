//! `llama`: LLaMA 1/2/3, Mistral (stored as `llama`), SmolLM, TinyLlama. llama.cpp:
//! `src/models/llama.cpp`.

use super::Arch;

/// The llama description.
pub const LLAMA: Arch = Arch {
    rope_freqs: true,
    ..Arch::LLAMA_LIKE
};
