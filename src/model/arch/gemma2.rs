//! `gemma2`: Gemma 2 (Gemma 1's block with post-norms, a 4096-token sliding window on even layers,
//! attention scores capped at 50 and logits at 30). llama.cpp: `src/models/gemma2.cpp`.

use super::{Arch, Glu, RopeMode, Swa};

/// The gemma2 description.
pub const GEMMA2: Arch = Arch {
    name: "gemma2",
    rope: RopeMode::Neox,
    glu: Glu::Gelu,
    embed_scale: true,
    post_norms: true,
    scale_queries: true,
    wide_scale_layers: Some(46),
    swa: Some(Swa {
        period: 2,
        default_window: Some(4096),
        own_rope_base: false,
    }),
    attn_softcap: Some(50.0),
    final_softcap: Some(30.0),
    ..Arch::LLAMA_LIKE
};
