//! `gemma3`: Gemma 3 text models (Gemma 2's block with per-head q/k norms instead of score
//! capping; five sliding-window layers of RoPE base 10000 to each global one). llama.cpp:
//! `src/models/gemma3.cpp`.

use super::{Arch, Glu, RopeMode, Swa};

/// The gemma3 description.
pub const GEMMA3: Arch = Arch {
    name: "gemma3",
    rope: RopeMode::Neox,
    qk_norm: true,
    glu: Glu::Gelu,
    embed_scale: true,
    post_norms: true,
    scale_queries: true,
    wide_scale_layers: Some(62),
    swa: Some(Swa {
        period: 6,
        default_window: None,
        own_rope_base: true,
    }),
    final_softcap: Some(0.0),
    ..Arch::LLAMA_LIKE
};
