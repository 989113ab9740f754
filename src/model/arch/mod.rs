//! Architectures as data: what each GGUF `general.architecture` chord runs means for the forward
//! pass, one small file per family (like llama.cpp's `src/models/<arch>.cpp` over shared
//! builders). The forward pass reads an [`Arch`] and never branches on a name.
//!
//! Shared by every family today: hyperparameters under `<arch>.*` keys, pre-norm blocks with
//! RMSNorm, grouped-query attention with optional q/k/v biases (as llama.cpp reads them for every
//! family), a gated feed-forward network, and an output head that may be tied to the embeddings.
//! What differs is a field here, starting from [`Arch::LLAMA_LIKE`]; a family that needs an
//! operation the pass does not have yet adds the field and the operation.

mod gemma;
mod gemma2;
mod gemma3;
mod llama;
mod phi3;
mod qwen2;
mod qwen3;

pub use crate::attn::{Glu, RopeMode};
use crate::bail;
use crate::error::Result;

/// One architecture's description.
#[derive(Debug, PartialEq)]
pub struct Arch {
    /// The `general.architecture` value, also the prefix of its hyperparameter keys.
    pub name: &'static str,
    /// How RoPE pairs values.
    pub rope: RopeMode,
    /// Whether the file may carry per-layer RoPE frequency divisors (`rope_freqs.weight`, Llama 3
    /// long-context files).
    pub rope_freqs: bool,
    /// Whether each query and key head is RMS-normalized before RoPE, with weights of one head's
    /// size (`attn_q_norm`, `attn_k_norm`; Qwen 3, Gemma 3).
    pub qk_norm: bool,
    /// The feed-forward network's gated activation.
    pub glu: Glu,
    /// Whether the gate and up projections are one `ffn_up` matrix of twice the feed-forward
    /// width, gate rows first (Phi-3).
    pub fused_gate_up: bool,
    /// Whether token embeddings are multiplied by `sqrt(n_embd)` (Gemma).
    pub embed_scale: bool,
    /// Whether the attention and feed-forward outputs are RMS-normalized before they join the
    /// residual stream (`post_attention_norm`, `post_ffw_norm`: Gemma 2 and 3).
    pub post_norms: bool,
    /// Whether the attention scale multiplies the queries before their product with the keys
    /// (`ggml_scale` on Q: Gemma) rather than the scores in the softmax (llama). The two round
    /// differently.
    pub scale_queries: bool,
    /// Models with this many layers scale attention by `1/sqrt(n_embd / n_head)` instead of
    /// `1/sqrt(head_dim)` (Gemma 2 and 3 27B; llama.cpp tells them by their layer count too).
    pub wide_scale_layers: Option<usize>,
    /// Sliding-window attention on some layers, when the family has it.
    pub swa: Option<Swa>,
    /// Whether attention scores are soft-capped (`<arch>.attn_logit_softcapping`), with the cap
    /// used when the file has no such key; `None`: never.
    pub attn_softcap: Option<f32>,
    /// Whether logits are soft-capped (`<arch>.final_logit_softcapping`), with the cap used when
    /// the file has no such key (0: no cap); `None`: never.
    pub final_softcap: Option<f32>,
}

/// Where a family uses sliding-window attention (llama.cpp's `LLAMA_SWA_TYPE_STANDARD`).
#[derive(Debug, PartialEq, Eq)]
pub struct Swa {
    /// Layer `l` is windowed unless `l % period == period - 1`, when the file has no
    /// `<arch>.attention.sliding_window_pattern` to say another period.
    pub period: usize,
    /// The window when the file has no `<arch>.attention.sliding_window`; `None`: then no layer
    /// is windowed (Gemma 3 files without the key).
    pub default_window: Option<usize>,
    /// Whether windowed layers rotate with their own RoPE base (`<arch>.rope.freq_base_swa`,
    /// 10000 when absent: Gemma 3) rather than the global one (Gemma 2, unless the key is there).
    pub own_rope_base: bool,
}

/// Every architecture chord runs.
pub const ALL: &[&Arch] = &[
    &llama::LLAMA,
    &qwen2::QWEN2,
    &qwen3::QWEN3,
    &gemma::GEMMA,
    &gemma2::GEMMA2,
    &gemma3::GEMMA3,
    &phi3::PHI3,
];

impl Arch {
    /// The llama block that other descriptions start from (`..Arch::LLAMA_LIKE`): normal RoPE,
    /// SwiGLU, scores scaled by `1/sqrt(head_dim)` in the softmax, nothing optional.
    pub const LLAMA_LIKE: Arch = Arch {
        name: "llama",
        rope: RopeMode::Normal,
        rope_freqs: false,
        qk_norm: false,
        glu: Glu::Silu,
        fused_gate_up: false,
        embed_scale: false,
        post_norms: false,
        scale_queries: false,
        wide_scale_layers: None,
        swa: None,
        attn_softcap: None,
        final_softcap: None,
    };

    /// The architecture a file names, or an `UnknownArchitecture` error that names it and lists
    /// the supported ones.
    pub fn find(name: &str) -> Result<&'static Arch> {
        match ALL.iter().find(|a| a.name == name) {
            Some(a) => Ok(a),
            None => bail!(
                UnknownArchitecture,
                "unsupported architecture '{name}'; chord runs: {}",
                ALL.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The block's features as `chord inspect` prints them: the RoPE mode, the activation, and
    /// what the file has of the optional parts (`biases`: the layers carry q/k/v biases).
    pub fn describe(&self, biases: bool) -> String {
        let mut s = String::from(match self.rope {
            RopeMode::Normal => "RoPE normal (adjacent pairs)",
            RopeMode::Neox => "RoPE neox (halves)",
        });
        s += match self.glu {
            Glu::Silu => ", RMSNorm, SwiGLU",
            Glu::Gelu => ", RMSNorm, GeGLU (tanh)",
        };
        let parts = [
            (biases, ", q/k/v biases"),
            (self.qk_norm, ", q/k RMSNorm per head"),
            (self.fused_gate_up, ", fused gate and up projections"),
            (self.post_norms, ", post-attention and post-FFN RMSNorm"),
            (self.embed_scale, ", embeddings x sqrt(n_embd)"),
            (self.scale_queries, ", queries scaled before attention"),
        ];
        for (on, text) in parts {
            if on {
                s += text;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn finds_each_family_and_names_the_list_otherwise() {
        for a in ALL {
            assert_eq!(Arch::find(a.name).unwrap(), *a);
        }
        let e = Arch::find("mamba").unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownArchitecture);
        assert_eq!(
            e.to_string(),
            "unsupported architecture 'mamba'; chord runs: llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3"
        );
    }
}
