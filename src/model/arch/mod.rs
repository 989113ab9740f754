//! Architectures as data: what each GGUF `general.architecture` chord runs means for the forward
//! pass, one small file per family (like llama.cpp's `src/models/<arch>.cpp` over shared
//! builders). The forward pass reads an [`Arch`] and never branches on a name.
//!
//! Shared by every family today: hyperparameters under `<arch>.*` keys, pre-norm blocks with
//! RMSNorm, grouped-query attention scaled by `1/sqrt(head_dim)` with optional q/k/v biases (as
//! llama.cpp reads them for every family), a SwiGLU feed-forward network, and an output head
//! that may be tied to the embeddings. What differs is a field here; a family that needs an
//! operation the pass does not have yet adds the field and the operation.

mod llama;
mod qwen2;
mod qwen3;

pub use crate::attn::RopeMode;
use crate::bail;
use crate::error::Result;

/// One architecture's description.
#[derive(Debug, PartialEq, Eq)]
pub struct Arch {
    /// The `general.architecture` value, also the prefix of its hyperparameter keys.
    pub name: &'static str,
    /// How RoPE pairs values.
    pub rope: RopeMode,
    /// Whether the file may carry per-layer RoPE frequency divisors (`rope_freqs.weight`, Llama 3
    /// long-context files).
    pub rope_freqs: bool,
    /// Whether each query and key head is RMS-normalized before RoPE, with weights of one head's
    /// size (`attn_q_norm`, `attn_k_norm`; Qwen 3).
    pub qk_norm: bool,
}

/// Every architecture chord runs.
pub const ALL: &[&Arch] = &[&llama::LLAMA, &qwen2::QWEN2, &qwen3::QWEN3];

impl Arch {
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

    /// The features `chord inspect` prints: the RoPE mode, and what the file has of the optional
    /// parts (`biases`: the layers carry q/k/v biases).
    pub fn describe(&self, biases: bool) -> String {
        let rope = match self.rope {
            RopeMode::Normal => "RoPE normal (adjacent pairs)",
            RopeMode::Neox => "RoPE neox (halves)",
        };
        let bias = if biases { ", q/k/v biases" } else { "" };
        let qk = if self.qk_norm {
            ", q/k RMSNorm per head"
        } else {
            ""
        };
        format!("{rope}, RMSNorm, SwiGLU{bias}{qk}")
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
            "unsupported architecture 'mamba'; chord runs: llama, qwen2, qwen3"
        );
    }
}
