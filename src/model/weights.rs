//! Weight handles: where each tensor's bytes are and how to use them. Weights stay in their GGUF
//! block encoding; only the small norm vectors are converted to f32 at load.

use super::Config;
use crate::bail;
use crate::error::Result;
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{self, GgmlType};
use memmap2::Mmap;
use std::sync::Arc;

/// A 2-D weight matrix of `rows` rows of `cols` values in format `ty`, borrowed from the mapped file.
#[derive(Clone)]
pub struct QWeight {
    map: Arc<Mmap>,
    offset: usize,
    /// Storage format.
    pub ty: GgmlType,
    /// Output features (rows).
    pub rows: usize,
    /// Input features (values per row).
    pub cols: usize,
}

impl QWeight {
    /// The encoded bytes, `rows * row_bytes`.
    pub fn bytes(&self) -> &[u8] {
        &self.map[self.offset..self.offset + self.size()]
    }

    /// Bytes of the encoded matrix.
    pub fn size(&self) -> usize {
        self.rows * self.row_bytes()
    }

    /// Bytes of one encoded row.
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.cols).expect("validated at load")
    }

    /// Dequantizes row `r` into `out` (`cols` values).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        let rb = self.row_bytes();
        quant::dequantize_row(self.ty, &self.bytes()[r * rb..(r + 1) * rb], out);
    }
}

/// The weights of one transformer block.
pub struct LayerWeights {
    /// RMSNorm weight before attention.
    pub attn_norm: Vec<f32>,
    /// Query projection.
    pub wq: QWeight,
    /// Key projection.
    pub wk: QWeight,
    /// Value projection.
    pub wv: QWeight,
    /// Attention output projection.
    pub wo: QWeight,
    /// RMSNorm weight before the feed-forward network.
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate projection.
    pub w_gate: QWeight,
    /// SwiGLU up projection.
    pub w_up: QWeight,
    /// Down projection.
    pub w_down: QWeight,
}

impl LayerWeights {
    /// Bytes of encoded weights in this layer.
    pub fn size(&self) -> usize {
        [
            &self.wq,
            &self.wk,
            &self.wv,
            &self.wo,
            &self.w_gate,
            &self.w_up,
            &self.w_down,
        ]
        .iter()
        .map(|w| w.size())
        .sum::<usize>()
            + 4 * (self.attn_norm.len() + self.ffn_norm.len())
    }
}

/// All weights of a model.
pub struct Weights {
    /// Token embedding matrix, `n_vocab` rows of `n_embd`.
    pub token_embd: QWeight,
    /// Final RMSNorm weight.
    pub output_norm: Vec<f32>,
    /// Output head (`token_embd` itself when the model ties them).
    pub output: QWeight,
    /// Per-layer RoPE frequency divisors (`rope_freqs.weight`), when the file has them.
    pub rope_freqs: Option<Vec<f32>>,
    /// The transformer blocks, in order.
    pub layers: Vec<LayerWeights>,
}

impl Weights {
    /// Finds, checks and wraps every tensor the llama architecture needs.
    pub fn from_gguf(file: &GgufFile, cfg: &Config) -> Result<Weights> {
        let q_dim = cfg.n_head * cfg.head_dim;
        let kv_dim = cfg.n_head_kv * cfg.head_dim;
        let (d, ff) = (cfg.n_embd, cfg.n_ff);
        let mat = |name: &str, cols: usize, rows: usize| matrix(file, name, cols, rows);
        let vec = |name: &str, len: usize| vector(file, name, len);
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(LayerWeights {
                attn_norm: vec(&n("attn_norm"), d)?,
                wq: mat(&n("attn_q"), d, q_dim)?,
                wk: mat(&n("attn_k"), d, kv_dim)?,
                wv: mat(&n("attn_v"), d, kv_dim)?,
                wo: mat(&n("attn_output"), q_dim, d)?,
                ffn_norm: vec(&n("ffn_norm"), d)?,
                w_gate: mat(&n("ffn_gate"), d, ff)?,
                w_up: mat(&n("ffn_up"), d, ff)?,
                w_down: mat(&n("ffn_down"), ff, d)?,
            });
        }
        let token_embd = mat("token_embd.weight", d, cfg.n_vocab)?;
        let output = match file.tensor("output.weight") {
            Some(_) => mat("output.weight", d, cfg.n_vocab)?,
            None => token_embd.clone(),
        };
        let rope_freqs = match file.tensor("rope_freqs.weight") {
            Some(_) => Some(vec("rope_freqs.weight", cfg.rope_dim / 2)?),
            None => None,
        };
        Ok(Weights {
            token_embd,
            output_norm: vec("output_norm.weight", d)?,
            output,
            rope_freqs,
            layers,
        })
    }
}

fn find<'a>(file: &'a GgufFile, name: &str) -> Result<&'a TensorInfo> {
    match file.tensor(name) {
        Some(t) => Ok(t),
        None => bail!(BadModel, "the model has no tensor '{name}'"),
    }
}

fn matrix(file: &GgufFile, name: &str, cols: usize, rows: usize) -> Result<QWeight> {
    let t = find(file, name)?;
    if t.dims != [cols as u64, rows as u64] {
        bail!(
            BadModel,
            "tensor '{name}' has shape {:?}, expected [{cols}, {rows}]",
            t.dims
        );
    }
    Ok(QWeight {
        map: file.map().clone(),
        offset: t.offset,
        ty: t.ty,
        rows,
        cols,
    })
}

fn vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = find(file, name)?;
    if t.dims != [len as u64] {
        bail!(
            BadModel,
            "tensor '{name}' has shape {:?}, expected [{len}]",
            t.dims
        );
    }
    let mut out = vec![0f32; len];
    quant::dequantize_row(t.ty, file.tensor_data(t), &mut out);
    Ok(out)
}
