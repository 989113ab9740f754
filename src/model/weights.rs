//! Weight handles: where each tensor's bytes are and how to use them. Weights stay in their GGUF
//! block encoding; only the small norm vectors are converted to f32 at load.
//!
//! The forward pass reaches matrices only through [`Weights::layer`], [`Weights::output`] and
//! [`Weights::embed_rows`]. For a model that fits its budget these borrow the mapped file; under a
//! budget it does not fit, they return handles over units the [`Pager`] keeps loaded for as long
//! as the handle lives.

use super::Config;
use crate::bail;
use crate::error::Result;
use crate::gguf::{GgufFile, TensorInfo};
use crate::huge::HugeBuf;
use crate::pager::{Loader, Pager, PagerStats, Plan, UnitGuard, UnitLayout};
use crate::quant::{self, GgmlType, Isa, Layout};
use memmap2::Mmap;
use std::fs::File;
use std::ops::Deref;
use std::sync::Arc;

/// Where a weight's bytes are.
#[derive(Clone)]
enum Src {
    /// In the file image (mapped, or read into owned memory), at this byte offset.
    Image(Arc<Mmap>, usize),
    /// Part `i` of a unit the pager holds for as long as the guard lives.
    Unit(Arc<UnitGuard>, usize),
    /// In memory of its own (packed at load), at this byte offset.
    Owned(Arc<HugeBuf>, usize),
}

/// A 2-D weight matrix of `rows` rows of `cols` values in format `ty`.
#[derive(Clone)]
pub struct QWeight {
    src: Src,
    /// Storage format.
    pub ty: GgmlType,
    /// How the blocks are laid out: GGUF's, or packed at load for the CPU kernels
    /// ([`Weights::pack`]).
    pub layout: Layout,
    /// Output features (rows).
    pub rows: usize,
    /// Input features (values per row).
    pub cols: usize,
}

impl QWeight {
    /// The encoded bytes, `rows * row_bytes`.
    pub fn bytes(&self) -> &[u8] {
        match &self.src {
            Src::Image(map, offset) => &map[*offset..*offset + self.size()],
            Src::Unit(guard, part) => guard.part(*part),
            Src::Owned(buf, offset) => &buf[*offset..*offset + self.size()],
        }
    }

    /// Offset of the matrix in the file (for a weight still backed by the file image).
    fn file_offset(&self) -> Option<usize> {
        match &self.src {
            Src::Image(_, offset) => Some(*offset),
            Src::Unit(..) | Src::Owned(..) => None,
        }
    }

    /// This matrix with its bytes taken from part `part` of a loaded unit, laid out in `layout`.
    fn in_unit(&self, guard: &Arc<UnitGuard>, part: usize, layout: Layout) -> QWeight {
        QWeight {
            src: Src::Unit(guard.clone(), part),
            layout,
            ..self.clone()
        }
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
        if self.layout == Layout::Gguf {
            return quant::dequantize_row(self.ty, &self.bytes()[r * rb..(r + 1) * rb], out);
        }
        let mut row = vec![0u8; rb];
        quant::unpack_row(self.ty, self.layout, self.bytes(), self.cols, r, &mut row);
        quant::dequantize_row(self.ty, &row, out);
    }

    /// This matrix in the layout the CPU kernels on `isa` read fastest, packed into memory of
    /// its own; `None` when that is GGUF's.
    fn packed(&self, isa: Isa) -> Option<QWeight> {
        let layout = quant::preferred_layout(isa, self.ty, self.rows);
        if layout == Layout::Gguf || self.layout != Layout::Gguf {
            return None;
        }
        let mut buf = HugeBuf::zeroed(self.size());
        quant::pack(
            self.ty,
            layout,
            self.bytes(),
            self.rows,
            self.cols,
            &mut buf,
        )
        .then(|| QWeight {
            src: Src::Owned(Arc::new(buf), 0),
            layout,
            ..self.clone()
        })
    }
}

/// The q/k/v projection biases of a layer (f32, converted at load).
#[derive(Clone)]
pub struct QkvBias {
    /// Added to the queries (`n_head * head_dim`).
    pub q: Vec<f32>,
    /// Added to the keys (`n_head_kv * head_dim`).
    pub k: Vec<f32>,
    /// Added to the values (`n_head_kv * head_dim`).
    pub v: Vec<f32>,
}

/// Projections of one input that a file stores either as separate matrices or as one matrix whose
/// rows are theirs, concatenated (llama.cpp's `attn_qkv`, Phi-3's `ffn_up` of gate and up rows).
/// The product with a fused matrix is split by columns afterwards, as llama.cpp views it.
pub enum Proj<const N: usize> {
    /// One matrix per output.
    Split([QWeight; N]),
    /// One matrix; the outputs are consecutive runs of its rows, of these widths.
    Fused(QWeight, [usize; N]),
}

impl<const N: usize> Proj<N> {
    /// The matrices, in order.
    pub fn matrices(&self) -> Vec<&QWeight> {
        match self {
            Proj::Split(ws) => ws.iter().collect(),
            Proj::Fused(w, _) => vec![w],
        }
    }

    /// How many matrices [`Proj::matrices`] gives (without collecting them).
    pub fn count(&self) -> usize {
        match self {
            Proj::Split(_) => N,
            Proj::Fused(..) => 1,
        }
    }

    /// The same projections with each matrix replaced by `f` of it, in [`Proj::matrices`] order.
    fn map(&self, f: &mut impl FnMut(&QWeight) -> QWeight) -> Proj<N> {
        match self {
            Proj::Split(ws) => Proj::Split(std::array::from_fn(|i| f(&ws[i]))),
            Proj::Fused(w, widths) => Proj::Fused(f(w), *widths),
        }
    }
}

/// The weights of one transformer block.
pub struct LayerWeights {
    /// RMSNorm weight before attention.
    pub attn_norm: Vec<f32>,
    /// Query, key and value projections (`attn_q`, `attn_k`, `attn_v`, or one `attn_qkv`).
    pub qkv: Proj<3>,
    /// Query, key and value biases (`attn_{q,k,v}.bias`, or `attn_qkv.bias` split), when the
    /// file has them (Qwen 2).
    pub bias: Option<QkvBias>,
    /// RMSNorm weights of each query head and each key head (`attn_q_norm`, `attn_k_norm`,
    /// `head_dim` each), for architectures that normalize them (Qwen 3, Gemma 3).
    pub qk_norm: Option<[Vec<f32>; 2]>,
    /// Attention output projection.
    pub wo: QWeight,
    /// RMSNorm weight before the feed-forward network.
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections of the feed-forward network (`ffn_gate`, `ffn_up`, or Phi-3's
    /// one `ffn_up` of gate rows then up rows).
    pub gate_up: Proj<2>,
    /// Down projection.
    pub w_down: QWeight,
    /// RMSNorm weights of the attention output and of the feed-forward output before each joins
    /// the residual stream (`post_attention_norm`, `post_ffw_norm`), for architectures that have
    /// them (Gemma 2 and 3).
    pub post_norm: Option<[Vec<f32>; 2]>,
}

impl LayerWeights {
    /// The matrices, in the order the forward pass uses them: what the pager loads as this
    /// layer's unit, one part each.
    pub fn matrices(&self) -> Vec<&QWeight> {
        let mut m = self.qkv.matrices();
        m.push(&self.wo);
        m.extend(self.gate_up.matrices());
        m.push(&self.w_down);
        m
    }

    /// This layer with each matrix replaced by `f` of it, in [`Self::matrices`] order.
    fn map_matrices(&self, mut f: impl FnMut(&QWeight) -> QWeight) -> LayerWeights {
        LayerWeights {
            attn_norm: self.attn_norm.clone(),
            qkv: self.qkv.map(&mut f),
            bias: self.bias.clone(),
            qk_norm: self.qk_norm.clone(),
            wo: f(&self.wo),
            ffn_norm: self.ffn_norm.clone(),
            gate_up: self.gate_up.map(&mut f),
            w_down: f(&self.w_down),
            post_norm: self.post_norm.clone(),
        }
    }

    /// This layer with every matrix taken from the loaded unit `g` (parts in [`Self::matrices`]
    /// order), part `i` laid out in `layouts[i]`.
    fn in_unit(&self, g: &Arc<UnitGuard>, layouts: &[Layout]) -> LayerWeights {
        let mut part = 0;
        self.map_matrices(|w| {
            part += 1;
            w.in_unit(g, part - 1, layouts[part - 1])
        })
    }

    /// Bytes of encoded weights in this layer.
    pub fn size(&self) -> usize {
        let bias = self
            .bias
            .as_ref()
            .map_or(0, |b| b.q.len() + b.k.len() + b.v.len())
            + self.qk_norm.as_ref().map_or(0, |[q, k]| q.len() + k.len())
            + self
                .post_norm
                .as_ref()
                .map_or(0, |[a, f]| a.len() + f.len());
        self.matrices().iter().map(|w| w.size()).sum::<usize>()
            + 4 * (self.attn_norm.len() + self.ffn_norm.len() + bias)
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
    /// The transformer blocks, in order. Under paging their matrices are placeholders that still
    /// point into the file image: use [`Weights::layer`], never this field, to read them.
    pub layers: Vec<LayerWeights>,
    /// The pager, when the model runs under a budget it does not fit. Units `0..n_layer` are the
    /// layers, then one unit per chunk of the output head.
    pager: Option<Pager>,
    /// The output head's row chunks `(first row, rows)`, one unit each: the head of a small model
    /// can be larger than all its layers together (SmolLM2-135M: 30%), so it is streamed in
    /// pieces no larger than a layer. One chunk of every row when the model is not paged.
    head_chunks: Vec<(usize, usize)>,
    /// Under paging, the layout of each part of each unit as the pager holds it: pinned units
    /// packed for the CPU kernels ([`Weights::page`]), streamed ones as the file has them.
    unit_layouts: Vec<Vec<Layout>>,
}

/// Output-head chunks hold a multiple of this many rows (a multiple of every row grouping the
/// product kernels use, so chunked products equal the whole one bit for bit).
const HEAD_CHUNK_ROWS: usize = 64;

/// A layer's weights, ready for the forward pass; a paged layer stays loaded while this lives.
pub enum LayerRef<'a> {
    /// A layer of a model that is not paged.
    Resident(&'a LayerWeights),
    /// A layer loaded by the pager.
    Paged(Box<LayerWeights>),
}

impl Deref for LayerRef<'_> {
    type Target = LayerWeights;
    fn deref(&self) -> &LayerWeights {
        match self {
            LayerRef::Resident(l) => l,
            LayerRef::Paged(l) => l,
        }
    }
}

impl Weights {
    /// Finds, checks and wraps every tensor the model's architecture needs (and the optional ones
    /// the file has).
    pub fn from_gguf(file: &GgufFile, cfg: &Config) -> Result<Weights> {
        let q_dim = cfg.n_head * cfg.head_dim;
        let kv_dim = cfg.n_head_kv * cfg.head_dim;
        let (d, ff) = (cfg.n_embd, cfg.n_ff);
        let mat = |name: &str, cols: usize, rows: usize| matrix(file, name, cols, rows);
        let vec = |name: &str, len: usize| vector(file, name, len);
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let b = |s: &str| format!("blk.{i}.{s}.bias");
            let has = |name: &str| file.tensor(name).is_some();
            // llama.cpp (create_tensor_qkv) takes a fused attn_qkv for every family when the file
            // has one, with its fused bias or separate ones.
            let qkv = if has(&n("attn_qkv")) {
                let rows = q_dim + 2 * kv_dim;
                Proj::Fused(mat(&n("attn_qkv"), d, rows)?, [q_dim, kv_dim, kv_dim])
            } else {
                Proj::Split([
                    mat(&n("attn_q"), d, q_dim)?,
                    mat(&n("attn_k"), d, kv_dim)?,
                    mat(&n("attn_v"), d, kv_dim)?,
                ])
            };
            let bias = if has(&b("attn_qkv")) {
                let all = vec(&b("attn_qkv"), q_dim + 2 * kv_dim)?;
                Some(QkvBias {
                    q: all[..q_dim].to_vec(),
                    k: all[q_dim..q_dim + kv_dim].to_vec(),
                    v: all[q_dim + kv_dim..].to_vec(),
                })
            } else {
                match [b("attn_q"), b("attn_k"), b("attn_v")].map(|n| has(&n)) {
                    [false, false, false] => None,
                    [true, true, true] => Some(QkvBias {
                        q: vec(&b("attn_q"), q_dim)?,
                        k: vec(&b("attn_k"), kv_dim)?,
                        v: vec(&b("attn_v"), kv_dim)?,
                    }),
                    _ => bail!(
                    Unsupported,
                    "layer {i} has biases for some of its query, key and value projections only"
                ),
                }
            };
            let qk_norm = if cfg.arch.qk_norm {
                let hd = cfg.head_dim;
                Some([vec(&n("attn_q_norm"), hd)?, vec(&n("attn_k_norm"), hd)?])
            } else {
                None
            };
            let post_norm = if cfg.arch.post_norms {
                Some([
                    vec(&n("post_attention_norm"), d)?,
                    vec(&n("post_ffw_norm"), d)?,
                ])
            } else {
                None
            };
            let gate_up = if cfg.arch.fused_gate_up {
                Proj::Fused(mat(&n("ffn_up"), d, 2 * ff)?, [ff, ff])
            } else {
                Proj::Split([mat(&n("ffn_gate"), d, ff)?, mat(&n("ffn_up"), d, ff)?])
            };
            layers.push(LayerWeights {
                attn_norm: vec(&n("attn_norm"), d)?,
                qkv,
                bias,
                qk_norm,
                wo: mat(&n("attn_output"), q_dim, d)?,
                ffn_norm: vec(&n("ffn_norm"), d)?,
                gate_up,
                w_down: mat(&n("ffn_down"), ff, d)?,
                post_norm,
            });
        }
        let token_embd = mat("token_embd.weight", d, cfg.n_vocab)?;
        let output = match file.tensor("output.weight") {
            Some(_) => mat("output.weight", d, cfg.n_vocab)?,
            None => token_embd.clone(),
        };
        for f in ["rope_factors_long.weight", "rope_factors_short.weight"] {
            if file.tensor(f).is_some() {
                bail!(
                    Unsupported,
                    "tensor '{f}': long-context RoPE factors (Phi-3 128k) are not supported yet"
                );
            }
        }
        let rope_freqs = match file.tensor("rope_freqs.weight") {
            Some(_) if cfg.arch.rope_freqs => Some(vec("rope_freqs.weight", cfg.rope_dim / 2)?),
            _ => None,
        };
        Ok(Weights {
            token_embd,
            output_norm: vec("output_norm.weight", d)?,
            output,
            rope_freqs,
            head_chunks: vec![(0, cfg.n_vocab)],
            layers,
            pager: None,
            unit_layouts: Vec::new(),
        })
    }

    /// Splits the output head into chunks no larger than the largest layer (see `head_chunks`).
    fn chunk_head(&mut self) {
        let largest = self.layers.iter().map(|l| l.size()).max().unwrap_or(0);
        let rb = self.output.row_bytes().max(1);
        let rows = (largest / rb / HEAD_CHUNK_ROWS).max(1) * HEAD_CHUNK_ROWS;
        self.head_chunks = (0..self.output.rows)
            .step_by(rows)
            .map(|r| (r, rows.min(self.output.rows - r)))
            .collect();
    }

    /// Rows `first..first + n` of the output head, as a matrix of its own.
    fn head_rows(&self, first: usize, n: usize) -> QWeight {
        let mut w = self.output.clone();
        if let Src::Image(_, offset) | Src::Owned(_, offset) = &mut w.src {
            *offset += first * self.output.row_bytes();
        }
        w.rows = n;
        w
    }

    /// The pager's units: each layer's matrices, then the output head.
    pub fn units(&self) -> Vec<UnitLayout> {
        unit_layouts(&self.unit_matrices())
    }

    /// The matrices of each pager unit, in part order: each layer's, then each output-head chunk.
    fn unit_matrices(&self) -> Vec<Vec<QWeight>> {
        let layers = self
            .layers
            .iter()
            .map(|l| l.matrices().into_iter().cloned().collect());
        let head = self
            .head_chunks
            .iter()
            .map(|&(first, n)| vec![self.head_rows(first, n)]);
        layers.chain(head).collect()
    }

    /// Prepares paging: splits the output head into chunks and returns the pager's units (each
    /// layer's matrices, then the head's chunks), to plan with.
    pub fn paging_units(&mut self) -> Vec<UnitLayout> {
        self.chunk_head();
        self.units()
    }

    /// From now on, serves layers and the output head through a pager over `file` (the same file
    /// the image was made from) following `plan` over [`Weights::paging_units`]. Pinned units are
    /// read before this returns; `progress` gets the fraction read and may cancel. Streamed units
    /// are held as `loader` says ([`Loader`]). With `pack`, the matrices of the units the pager
    /// holds pinned are packed in place into the layout the kernels on that ISA read fastest, as
    /// [`Weights::pack`] packs a resident model's (same bits, same bytes); streamed units stay in
    /// GGUF layout, which the kernels also take. Returns the bytes packed.
    pub fn page(
        &mut self,
        file: File,
        plan: Plan,
        loader: Loader,
        pack: Option<Isa>,
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<usize> {
        let matrices = self.unit_matrices();
        let layouts: Vec<Vec<Layout>> = matrices
            .iter()
            .enumerate()
            .map(|(u, ws)| {
                ws.iter()
                    .map(|w| match pack {
                        Some(isa) if plan.pinned[u] && plan.hold_pinned => {
                            quant::preferred_layout(isa, w.ty, w.rows)
                        }
                        _ => Layout::Gguf,
                    })
                    .collect()
            })
            .collect();
        let packed = std::sync::atomic::AtomicUsize::new(0);
        let prepare = |u: usize, i: usize, bytes: &mut [u8]| {
            let (w, layout) = (&matrices[u][i], layouts[u][i]);
            if layout != Layout::Gguf {
                let done = quant::pack_in_place(w.ty, layout, bytes, w.rows, w.cols);
                assert!(done, "preferred_layout chose a layout pack takes");
                packed.fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed);
            }
        };
        let units = unit_layouts(&matrices);
        let pager = Pager::new(file, units, plan, loader, &prepare, progress)?;
        if pager.loader() != loader {
            crate::log!(
                Info,
                "pager: the system refused {loader:?} slots: streamed layers {:?}",
                pager.loader()
            );
        }
        self.pager = Some(pager);
        self.unit_layouts = layouts;
        Ok(packed.into_inner())
    }

    /// Packs every matrix the products read (the layers', and the output head when it is not
    /// the embedding matrix, which is also read by rows) into the layout the kernels on `isa`
    /// read fastest ([`quant::preferred_layout`]), each into memory of its own; `release` gets the
    /// file-image range `(offset, len)` each one leaves unused. Only for a model that is not
    /// paged (the pager reads units in GGUF layout, which the kernels also take, with the same
    /// results). Returns the bytes packed.
    ///
    /// Runs on `threads` threads (layers split between them): packing reads and writes every
    /// byte once, about 0.3 s for 600 MB on one core.
    pub fn pack(
        &mut self,
        isa: Isa,
        threads: usize,
        release: &(dyn Fn(usize, usize) + Sync),
    ) -> usize {
        assert!(self.pager.is_none(), "paged weights stay in GGUF layout");
        let bytes = std::sync::atomic::AtomicUsize::new(0);
        let pack = |w: &QWeight| match w.packed(isa) {
            Some(p) => {
                bytes.fetch_add(p.size(), std::sync::atomic::Ordering::Relaxed);
                if let Some(offset) = w.file_offset() {
                    release(offset, w.size());
                }
                p
            }
            None => w.clone(),
        };
        let per = self.layers.len().div_ceil(threads.max(1)).max(1);
        let layers: Vec<LayerWeights> = std::thread::scope(|s| {
            let pack_all = |ls: &[LayerWeights]| -> Vec<LayerWeights> {
                ls.iter().map(|l| l.map_matrices(pack)).collect()
            };
            // A thread the system refuses is no error: that share is packed on this thread.
            let parts: Vec<_> = self
                .layers
                .chunks(per)
                .map(|ls| {
                    std::thread::Builder::new()
                        .name("chord-pack".into())
                        .spawn_scoped(s, move || pack_all(ls))
                        .map_err(|e| {
                            crate::log!(Debug, "packing on the loading thread: {e}");
                            ls
                        })
                })
                .collect();
            let tied = self.output.file_offset() == self.token_embd.file_offset();
            if !tied {
                self.output = pack(&self.output);
            }
            parts
                .into_iter()
                .flat_map(|p| match p {
                    Ok(h) => h.join().expect("packing does not panic"),
                    Err(ls) => pack_all(ls),
                })
                .collect()
        });
        self.layers = layers;
        bytes.into_inner()
    }

    /// Whether layer `l` stays loaded for the model's life (the model is not paged, or the
    /// pager pinned it): what a device keeps a copy of.
    pub fn layer_pinned(&self, l: usize) -> bool {
        self.pager.as_ref().is_none_or(|p| p.plan().pinned[l])
    }

    /// Whether chunk `i` of the output head stays loaded for the model's life (see
    /// [`Weights::layer_pinned`]).
    pub fn output_chunk_pinned(&self, i: usize) -> bool {
        self.pager
            .as_ref()
            .is_none_or(|p| p.plan().pinned[self.layers.len() + i])
    }

    /// The pager's counters, when the model is paged.
    pub fn pager_stats(&self) -> Option<PagerStats> {
        self.pager.as_ref().map(|p| p.stats())
    }

    /// The pager's prefetch step for the model's worker team, where it prefetches better there
    /// ([`Pager::prefetch_by_team`]).
    pub fn prefetch_by_team(&self) -> Option<std::sync::Arc<dyn Fn() -> bool + Send + Sync>> {
        self.pager.as_ref().and_then(|p| p.prefetch_by_team())
    }

    /// Reads of paged weights that faulted so far (the file shrank under a mapped unit, which read
    /// zeros); a forward pass during which this grew computed garbage and fails.
    pub fn read_faults(&self) -> u64 {
        self.pager.as_ref().map_or(0, |p| p.faults())
    }

    /// Layer `l`'s weights, loaded (waiting for the pager if needed).
    pub fn layer(&self, l: usize) -> Result<LayerRef<'_>> {
        match &self.pager {
            None => Ok(LayerRef::Resident(&self.layers[l])),
            Some(p) => Ok(LayerRef::Paged(Box::new(
                self.layers[l].in_unit(&Arc::new(p.acquire(l)?), &self.unit_layouts[l]),
            ))),
        }
    }

    /// Number of row chunks the output head is used in ([`Weights::output_chunk`]).
    pub fn n_output_chunks(&self) -> usize {
        self.head_chunks.len()
    }

    /// Chunk `i` of the output head (consecutive rows; chunk outputs concatenate to the logits),
    /// loaded.
    pub fn output_chunk(&self, i: usize) -> Result<QWeight> {
        let (first, n) = self.head_chunks[i];
        let w = self.head_rows(first, n);
        match &self.pager {
            None => Ok(w),
            Some(p) => {
                let u = self.layers.len() + i;
                Ok(w.in_unit(&Arc::new(p.acquire(u)?), 0, self.unit_layouts[u][0]))
            }
        }
    }

    /// Chunk `i` of the output head as the file image has it, without the pager: for the
    /// shape of a chunk whose device copy is what the products read (its bytes, if ever read,
    /// come through the image's map).
    pub fn output_chunk_unpaged(&self, i: usize) -> QWeight {
        let (first, n) = self.head_chunks[i];
        self.head_rows(first, n)
    }

    /// Writes the embeddings of `tokens` into `out` (`tokens.len()` rows of `cols` values). Under
    /// paging the rows are read from the file one by one and nothing stays resident.
    pub fn embed_rows(&self, tokens: &[u32], out: &mut [f32]) -> Result<()> {
        let e = &self.token_embd;
        let Some(pager) = &self.pager else {
            for (row, &tok) in out.chunks_exact_mut(e.cols).zip(tokens) {
                e.row_f32(tok as usize, row);
            }
            return Ok(());
        };
        let rb = e.row_bytes();
        let base = e.file_offset().expect("embeddings stay in the image") as u64;
        let mut buf = vec![0u8; rb];
        for (row, &tok) in out.chunks_exact_mut(e.cols).zip(tokens) {
            pager.read_at(base + (tok as usize * rb) as u64, &mut buf)?;
            quant::dequantize_row(e.ty, &buf, row);
        }
        Ok(())
    }
}

/// The file ranges of each pager unit's matrices ([`Weights::unit_matrices`]), in part order.
fn unit_layouts(matrices: &[Vec<QWeight>]) -> Vec<UnitLayout> {
    matrices
        .iter()
        .map(|ws| UnitLayout {
            parts: ws
                .iter()
                .map(|w| (w.file_offset().expect("from the image") as u64, w.size()))
                .collect(),
        })
        .collect()
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
        src: Src::Image(file.map().clone(), t.offset),
        ty: t.ty,
        layout: Layout::Gguf,
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
    quant::dequantize_row(t.ty, &file.read_tensor(t)?, &mut out);
    Ok(out)
}
