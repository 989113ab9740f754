//! Hyperparameters of a model, read from GGUF metadata and checked for consistency.

use super::arch::Arch;
use crate::bail;
use crate::error::Result;
use crate::gguf::GgufFile;

/// Transformer hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The architecture `general.architecture` names.
    pub arch: &'static Arch,
    /// Vocabulary size (rows of the embedding matrix).
    pub n_vocab: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_head_kv: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Inner size of the feed-forward network.
    pub n_ff: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// Dimensions rotated by RoPE (the first `rope_dim` of each head).
    pub rope_dim: usize,
    /// Linear RoPE scaling: positions are multiplied by this (1 / scaling factor).
    pub rope_pos_scale: f32,
}

/// Upper bounds that no real model of this family exceeds; larger values mean a corrupt file.
const MAX_DIM: u64 = 1 << 20;

impl Config {
    /// Reads and validates the hyperparameters of `file`.
    pub fn from_gguf(file: &GgufFile) -> Result<Config> {
        let arch = Arch::find(file.get_str("general.architecture")?)?;
        let key = |k: &str| format!("{}.{k}", arch.name);
        let dim = |k: &str| -> Result<usize> {
            let v = file.get_u64(&key(k))?;
            if v == 0 || v > MAX_DIM {
                bail!(BadModel, "metadata '{}' = {v} is out of range", key(k));
            }
            Ok(v as usize)
        };
        let n_embd = dim("embedding_length")?;
        let n_layer = dim("block_count")?;
        let n_head = dim("attention.head_count")?;
        let n_head_kv = match file.opt_u64(&key("attention.head_count_kv"))? {
            Some(v) => v as usize,
            None => n_head,
        };
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            bail!(
                BadModel,
                "{n_head} query heads cannot be grouped over {n_head_kv} key/value heads"
            );
        }
        let head_dim = match file.opt_u64(&key("attention.key_length"))? {
            Some(v) => v as usize,
            None => n_embd / n_head,
        };
        if head_dim == 0 || head_dim % 2 != 0 || head_dim > 1024 {
            bail!(BadModel, "head size {head_dim} is not supported");
        }
        if let Some(v) = file.opt_u64(&key("attention.value_length"))? {
            if v as usize != head_dim {
                bail!(
                    Unsupported,
                    "value heads of {v} values differ from key heads of {head_dim}"
                );
            }
        }
        let rope_dim = match file.opt_u64(&key("rope.dimension_count"))? {
            Some(v) => v as usize,
            None => head_dim,
        };
        if rope_dim > head_dim || rope_dim % 2 != 0 || rope_dim == 0 {
            bail!(
                BadModel,
                "RoPE dimension {rope_dim} does not fit head size {head_dim}"
            );
        }
        let scaling = file.opt_str(&key("rope.scaling.type"))?.unwrap_or("none");
        let factor = file.opt_f32(&key("rope.scaling.factor"))?.unwrap_or(0.0);
        let rope_pos_scale = match scaling {
            "none" => 1.0,
            "linear" if factor > 0.0 => 1.0 / factor,
            "linear" => 1.0,
            other => bail!(Unsupported, "RoPE scaling '{other}' is not supported yet"),
        };
        let n_vocab = match file.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
            Some(t) => bail!(
                BadModel,
                "token_embd.weight has shape {:?}, expected 2 dimensions",
                t.dims
            ),
            None => bail!(BadModel, "the model has no tensor 'token_embd.weight'"),
        };
        Ok(Config {
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff: dim("feed_forward_length")?,
            n_ctx_train: dim("context_length")?,
            rms_eps: file
                .opt_f32(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5),
            rope_base: file.opt_f32(&key("rope.freq_base"))?.unwrap_or(10000.0),
            rope_dim,
            rope_pos_scale,
            arch,
        })
    }
}
