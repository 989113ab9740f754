//! `gemma`: Gemma 1 (GeGLU, embeddings scaled by `sqrt(n_embd)`, queries scaled before
//! attention, NEOX RoPE, tied head). llama.cpp: `src/models/gemma.cpp`.

use super::{Arch, Glu, RopeMode};

/// The gemma description.
pub const GEMMA: Arch = Arch {
    name: "gemma",
    rope: RopeMode::Neox,
    glu: Glu::Gelu,
    embed_scale: true,
    scale_queries: true,
    ..Arch::LLAMA_LIKE
};
