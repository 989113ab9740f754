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
    /// What token embeddings are multiplied by (`sqrt(n_embd)`), for architectures that scale them.
    pub embed_scale: Option<f32>,
    /// The attention scale, applied where the architecture says ([`Arch::scale_queries`]).
    pub attn_scale: f32,
    /// The soft cap of attention scores, when scores are capped.
    pub attn_softcap: Option<f32>,
    /// The soft cap of logits, when logits are capped.
    pub final_softcap: Option<f32>,
    /// Sliding-window attention, when some layers use it.
    pub swa: Option<SwaConfig>,
    /// The raw `{arch}.pooling_type` of the file, when it has one (read by
    /// [`super::Pooling::from_file`] when an embedding asks for the file's pooling).
    pub pooling_type: Option<u64>,
}

/// The sliding window of a model whose architecture has one ([`super::arch::Swa`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SwaConfig {
    /// A windowed layer's query at position p sees the keys at `p - window + 1 ..= p`.
    pub window: usize,
    /// Whether each layer is windowed.
    pub layers: Vec<bool>,
    /// RoPE frequency base of the windowed layers (their positions are not scaled).
    pub rope_base: f32,
}

/// Upper bounds that no real model of this family exceeds; larger values mean a corrupt file.
const MAX_DIM: u64 = 1 << 20;

/// Which of `n_layer` layers are windowed: as the file's `key` says (a period, or one flag per
/// layer), else every layer but the last of each `period` (llama.cpp's `set_swa_pattern`; a
/// period of 0 windows every layer).
fn swa_layers(file: &GgufFile, key: &str, n_layer: usize, period: usize) -> Result<Vec<bool>> {
    let period = match file.get(key) {
        None => period,
        Some(v) => match (v.as_u64(), v.as_array()) {
            (Some(p), _) => p as usize,
            (_, Some(flags)) => {
                let layers: Option<Vec<bool>> = flags
                    .values()
                    .map(|f| f.as_bool().or(f.as_u64().map(|n| n != 0)))
                    .collect();
                match layers {
                    Some(l) if l.len() == n_layer => return Ok(l),
                    _ => bail!(
                        BadModel,
                        "metadata '{key}' is not one flag for each of the {n_layer} layers"
                    ),
                }
            }
            _ => bail!(
                BadModel,
                "metadata '{key}' is neither a period nor a list of flags"
            ),
        },
    };
    Ok((0..n_layer)
        .map(|l| period == 0 || l % period < period - 1)
        .collect())
}

impl Config {
    /// Bytes of KV cache one position takes: keys and values of every layer at precision `kv`.
    pub fn kv_bytes_per_token(&self, kv: crate::backend::KvType) -> usize {
        self.n_layer * 2 * self.n_head_kv * self.head_dim * kv.size()
    }

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
        let n_ctx_train = dim("context_length")?;
        let rope_base = file.opt_f32(&key("rope.freq_base"))?.unwrap_or(10000.0);
        let softcap = |k: &str, default: Option<f32>| -> Result<Option<f32>> {
            let Some(default) = default else {
                return Ok(None);
            };
            let c = file.opt_f32(&key(k))?.unwrap_or(default);
            if c == 0.0 {
                Ok(None)
            } else if c.is_finite() && c > 0.0 {
                Ok(Some(c))
            } else {
                bail!(BadModel, "metadata '{}' = {c} is not a soft cap", key(k))
            }
        };
        let swa = match &arch.swa {
            None => None,
            Some(s) => match file.opt_u64(&key("attention.sliding_window"))? {
                Some(0) => None,
                Some(w) => Some(w as usize),
                None => s.default_window,
            }
            .map(|window| -> Result<SwaConfig> {
                if window > n_ctx_train {
                    bail!(
                        BadModel,
                        "sliding window of {window} positions is larger than the context of {n_ctx_train}"
                    );
                }
                let layers = swa_layers(file, &key("attention.sliding_window_pattern"), n_layer, s.period)?;
                let base_swa = file.opt_f32(&key("rope.freq_base_swa"))?;
                let rope_base = match (base_swa, s.own_rope_base) {
                    (Some(b), _) => b,
                    (None, true) => 10000.0,
                    (None, false) => rope_base,
                };
                Ok(SwaConfig {
                    window,
                    layers,
                    rope_base,
                })
            })
            .transpose()?,
        };
        // llama.cpp: 1/sqrt(head_dim), or 1/sqrt(n_embd / n_head) for Gemma 27B.
        let scale_dim = match arch.wide_scale_layers {
            Some(n) if n == n_layer => n_embd / n_head,
            _ => head_dim,
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
            n_ctx_train,
            rms_eps: file
                .opt_f32(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5),
            rope_base,
            rope_dim,
            rope_pos_scale,
            embed_scale: arch.embed_scale.then(|| (n_embd as f32).sqrt()),
            attn_scale: 1.0 / (scale_dim as f32).sqrt(),
            attn_softcap: softcap("attn_logit_softcapping", arch.attn_softcap)?,
            final_softcap: softcap("final_logit_softcapping", arch.final_softcap)?,
            swa,
            pooling_type: file.opt_u64(&key("pooling_type"))?,
            arch,
        })
    }

    /// The attention and output as `chord inspect` prints them: the scale and where it applies,
    /// RoPE scaling, the sliding-window pattern, soft caps.
    pub fn describe_attention(&self) -> String {
        let mut s = format!(
            "scale {} on {}",
            self.attn_scale,
            if self.arch.scale_queries {
                "the queries"
            } else {
                "the scores"
            }
        );
        if self.rope_pos_scale != 1.0 {
            s += &format!(
                ", RoPE positions x {} (linear scaling)",
                self.rope_pos_scale
            );
        }
        match &self.swa {
            None => s += ", every layer global",
            Some(w) => {
                let global: Vec<String> = (0..self.n_layer)
                    .filter(|&l| !w.layers[l])
                    .map(|l| l.to_string())
                    .collect();
                s += &format!(
                    ", sliding window of {} on {} of {} layers (RoPE base {}), global layers: {}",
                    w.window,
                    self.n_layer - global.len(),
                    self.n_layer,
                    w.rope_base,
                    if global.is_empty() {
                        "none".to_string()
                    } else {
                        global.join(" ")
                    }
                );
            }
        }
        if let Some(c) = self.attn_softcap {
            s += &format!(", scores soft-capped at {c}");
        }
        if let Some(c) = self.final_softcap {
            s += &format!(", logits soft-capped at {c}");
        }
        s
    }
}
