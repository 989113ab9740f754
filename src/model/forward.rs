//! The transformer forward pass as Burn tensor operations, generic over the backend; what differs
//! between architectures comes from the model's [`super::Arch`].
//!
//! A [`Transformer`] holds one session's KV cache on the device. `eval` runs a batch of tokens at
//! the next positions through every layer (prefill when the batch is long, decode when it is one
//! token) and returns logits. Weights come from [`Weights`] one layer at a time, so that a pager can
//! supply them without the forward pass knowing.

use super::{Config, Proj, Weights};
use crate::attn::Scores;
use crate::backend::{traffic, ChordBackend, KvCache, KvRows, KvType, Traffic};
use crate::error::Result;
use burn_tensor::{Tensor, TensorData};
use parking_lot::Mutex;
use std::any::Any;
use std::sync::Arc;

/// Which positions of a batch the caller wants logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WantLogits {
    /// None (prompt prefill that is not the last batch).
    None,
    /// Only the last position.
    Last,
    /// Every position of the batch.
    All,
    /// No logits: every position's final hidden state (after the output norm, `n_embd` values
    /// each), which embeddings pool.
    Hidden,
}

/// A model's weights and configuration, shared by every session.
pub struct ModelCore {
    /// Hyperparameters.
    pub cfg: Config,
    /// Weight handles.
    pub weights: Weights,
    /// The small weights as tensors of each backend and device the model has run on
    /// ([`DeviceVecs`]), made by the first session there and shared by the others.
    on_device: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
    /// Kernel launches and transfers of every forward pass so far, all sessions together.
    traffic: Mutex<Traffic>,
}

impl ModelCore {
    /// The model of `cfg` over `weights`.
    pub fn new(cfg: Config, weights: Weights) -> ModelCore {
        ModelCore {
            cfg,
            weights,
            on_device: Mutex::new(Vec::new()),
            traffic: Mutex::new(Traffic::default()),
        }
    }

    /// The kernel launches and host-device transfers of every forward pass of the model's
    /// sessions so far (zero on the CPU; see [`crate::backend::traffic`]).
    pub fn traffic(&self) -> Traffic {
        *self.traffic.lock()
    }

    /// The small weights on `device` of backend `B`, and the matrices where `B` keeps them in
    /// device memory, made on first use.
    fn vecs_on<B: ChordBackend>(&self, device: &B::Device) -> Result<Arc<DeviceVecs<B>>> {
        let mut all = self.on_device.lock();
        for v in all.iter() {
            if let Ok(v) = v.clone().downcast::<DeviceVecs<B>>() {
                if &v.device == device {
                    return Ok(v);
                }
            }
        }
        let v = Arc::new(DeviceVecs::new(&self.weights, device)?);
        all.push(v.clone());
        Ok(v)
    }
}

/// One session's transformer state on backend `B`: its KV cache, and the model's small weights
/// on its device (shared with the model's other sessions there).
pub struct Transformer<B: ChordBackend> {
    core: Arc<ModelCore>,
    device: B::Device,
    n_ctx: usize,
    n_past: usize,
    cache: Vec<KvCache<B>>,
    vecs: Arc<DeviceVecs<B>>,
}

/// A model's norm weights and biases as tensors on one device of backend `B`, and its matrices
/// where `B` keeps them in device memory ([`ChordBackend::upload`]): every one of a resident
/// model, the pinned units of a paged one (its streamed units are uploaded for each use:
/// [`Streamed`]).
struct DeviceVecs<B: ChordBackend> {
    device: B::Device,
    layers: Vec<LayerVecs<B>>,
    output_norm: Tensor<B, 1>,
    /// The output matrix's chunks on the device (empty where none is uploaded).
    output: Vec<Option<B::Matrix>>,
}

impl<B: ChordBackend> DeviceVecs<B> {
    fn new(w: &Weights, device: &B::Device) -> Result<DeviceVecs<B>> {
        let vec1 =
            |v: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device);
        let row = |v: &[f32]| vec1(v).unsqueeze::<2>();
        let upload = |m: &[&super::QWeight]| -> Result<Vec<Option<B::Matrix>>> {
            m.iter().map(|m| B::upload(m, device)).collect()
        };
        let layers = w
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                // A pinned layer of a paged model reads its bytes from the pager, once.
                let matrices = match w.layer_pinned(i) {
                    true => upload(&w.layer(i)?.matrices())?,
                    false => Vec::new(),
                };
                Ok(LayerVecs {
                    attn_norm: vec1(&l.attn_norm),
                    ffn_norm: vec1(&l.ffn_norm),
                    qkv_bias: l.bias.as_ref().map(|b| [row(&b.q), row(&b.k), row(&b.v)]),
                    qk_norm: l.qk_norm.as_ref().map(|[q, k]| [vec1(q), vec1(k)]),
                    post_norm: l.post_norm.as_ref().map(|[a, f]| [vec1(a), vec1(f)]),
                    matrices,
                })
            })
            .collect::<Result<_>>()?;
        let output = (0..w.n_output_chunks())
            .map(|i| match w.output_chunk_pinned(i) {
                true => B::upload(&w.output_chunk(i)?, device),
                false => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DeviceVecs {
            device: device.clone(),
            layers,
            output_norm: vec1(&w.output_norm),
            output,
        })
    }
}

/// One layer's small weights (norms and biases) as tensors on the session's device.
struct LayerVecs<B: ChordBackend> {
    attn_norm: Tensor<B, 1>,
    ffn_norm: Tensor<B, 1>,
    /// q/k/v biases as `[1, width]` rows, when the layer has them.
    qkv_bias: Option<[Tensor<B, 2>; 3]>,
    /// Per-head query and key RMSNorm weights, when the architecture has them.
    qk_norm: Option<[Tensor<B, 1>; 2]>,
    /// RMSNorm weights of the attention and feed-forward outputs, when the architecture has them.
    post_norm: Option<[Tensor<B, 1>; 2]>,
    /// The layer's matrices on the device, in [`super::LayerWeights::matrices`] order (empty
    /// where none is kept: a streamed layer of a paged model, or a backend that reads host bytes).
    matrices: Vec<Option<B::Matrix>>,
}

/// The device copies of one unit's matrices for one use: those the device keeps, or, for a unit
/// the pager streams, copies uploaded now and freed after the use (counted as uploads, see
/// [`crate::backend::traffic`]). The products then run the same kernels on the same bytes as
/// with the unit kept, so a paged model computes what the resident one does.
enum Streamed<'a, M> {
    Kept(&'a [Option<M>]),
    Uploaded(Vec<Option<M>>),
}

impl<B: ChordBackend> LayerVecs<B> {
    /// Whether the device keeps every matrix of the layer.
    fn kept_whole(&self) -> bool {
        !self.matrices.is_empty() && self.matrices.iter().all(Option::is_some)
    }
}

impl<'a, M> Streamed<'a, M> {
    /// `matrices` uploaded to `device` for this use.
    fn upload<B: ChordBackend<Matrix = M>>(
        matrices: &[&super::QWeight],
        device: &B::Device,
    ) -> Result<Self> {
        let mut up = Vec::with_capacity(matrices.len());
        for w in matrices {
            let m = B::upload(w, device)?;
            if m.is_some() {
                crate::backend::count_upload(w.size());
            }
            up.push(m);
        }
        Ok(Streamed::Uploaded(up))
    }

    /// The device copy of matrix `i`, if any.
    fn get(&self, i: usize) -> Option<&M> {
        match self {
            Streamed::Kept(m) => m.get(i),
            Streamed::Uploaded(m) => m.get(i),
        }
        .and_then(Option::as_ref)
    }
}

/// cos and sin of the RoPE angles of a batch's positions, `[t, 1, rope_dim / 2]` each.
type RopeTables<B> = (Tensor<B, 3>, Tensor<B, 3>);

impl<B: ChordBackend> Transformer<B> {
    /// Creates the state for a context of `n_ctx` positions on `device`, with an f16 KV cache.
    pub fn new(core: Arc<ModelCore>, n_ctx: usize, device: B::Device) -> Result<Self> {
        Self::with_kv_type(core, n_ctx, KvType::F16, device)
    }

    /// Creates the state for a context of `n_ctx` positions on `device`, with a KV cache of
    /// precision `kv`.
    pub fn with_kv_type(
        core: Arc<ModelCore>,
        n_ctx: usize,
        kv: KvType,
        device: B::Device,
    ) -> Result<Self> {
        let cfg = &core.cfg;
        let cache = (0..cfg.n_layer)
            .map(|_| B::kv_cache(cfg.n_head_kv, n_ctx, cfg.head_dim, kv, &device))
            .collect();
        let vecs = core.vecs_on::<B>(&device)?;
        Ok(Transformer {
            core,
            device,
            n_ctx,
            n_past: 0,
            cache,
            vecs,
        })
    }

    /// The model this state runs.
    pub fn core(&self) -> &Arc<ModelCore> {
        &self.core
    }

    /// Positions already in the cache.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Capacity of the cache.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// The precision the KV cache holds.
    pub fn kv_type(&self) -> KvType {
        self.cache.first().map_or(KvType::F16, |c| B::kv_type(c))
    }

    /// Copies the cached keys and values of positions `0..n_past`, one [`KvRows`] per layer.
    pub fn kv_export(&self) -> Result<Vec<KvRows>> {
        self.cache
            .iter()
            .map(|c| B::kv_export(c, self.n_past))
            .collect()
    }

    /// Replaces the cache contents with `rows` (one per layer, as [`Transformer::kv_export`] made
    /// them) for positions `0..n`; the positions in the cache become `n`.
    pub fn kv_import(&mut self, n: usize, rows: &[KvRows]) -> Result<()> {
        if n > self.n_ctx || rows.len() != self.cache.len() {
            crate::bail!(Internal, "KV rows do not fit this cache");
        }
        self.n_past = 0;
        for (c, r) in self.cache.iter_mut().zip(rows) {
            B::kv_import(c, n, r)?;
        }
        self.n_past = n;
        Ok(())
    }

    /// Forgets every position from `n` on (the block cache frees the blocks wholly past `n`).
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
        for c in &mut self.cache {
            B::kv_truncate(c, self.n_past);
        }
    }

    /// A transformer state holding this one's first `n` positions (at most all), for a forked
    /// session: the KV cache shares their memory where the backend's cache can
    /// ([`ChordBackend::kv_fork`]).
    pub fn fork(&self, n: usize) -> Self {
        let n = n.min(self.n_past);
        Transformer {
            core: self.core.clone(),
            device: self.device.clone(),
            n_ctx: self.n_ctx,
            n_past: n,
            cache: self.cache.iter().map(|c| B::kv_fork(c, n)).collect(),
            vecs: self.vecs.clone(),
        }
    }

    /// Bytes of memory the KV cache holds, shared blocks counted as this state's share.
    pub fn kv_bytes(&self) -> f64 {
        self.cache.iter().map(|c| B::kv_bytes(c)).sum()
    }

    /// Runs `tokens` at positions `n_past..` and returns logits (`[positions x n_vocab]`, row-major)
    /// for the positions `want` names, or with [`WantLogits::Hidden`] every position's hidden state
    /// (`[positions x n_embd]`). The caller checks token ids and context space.
    pub fn eval(
        &mut self,
        tokens: &[u32],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>> {
        forward(&mut [self], &[tokens], want, cancel)
    }

    /// Runs several sequences of the same model in one pass: `tokens[i]` after the positions of
    /// `seqs[i]`, each in its own cache. The weight products take every sequence's rows at once
    /// (the weights are read once for all); attention runs per sequence, as in [`Transformer::eval`].
    /// Returns what `eval` would for each sequence, concatenated in order. The caller checks token
    /// ids and context space; `Internal` when the sequences belong to different models or devices.
    pub fn eval_batch(
        seqs: &mut [&mut Self],
        tokens: &[&[u32]],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>> {
        let Some(first) = seqs.first() else {
            return Ok(Vec::new());
        };
        let (core, device) = (first.core.clone(), first.device.clone());
        if seqs.len() != tokens.len()
            || tokens.iter().any(|t| t.is_empty())
            || seqs
                .iter()
                .any(|s| !Arc::ptr_eq(&s.core, &core) || s.device != device)
        {
            crate::bail!(
                Internal,
                "a batch needs one non-empty token list per sequence, all of one model and device"
            );
        }
        forward(seqs, tokens, want, cancel)
    }

    /// cos and sin of the RoPE angles for positions `pos0..pos0+t` with frequency base `base`,
    /// positions scaled by `pos_scale`, divided by the file's frequency factors where `factors`
    /// and the file has them, computed as ggml does (the angle advances by repeated
    /// multiplication in f32).
    fn rope_tables(
        &self,
        pos0: usize,
        t: usize,
        base: f32,
        pos_scale: f32,
        factors: bool,
    ) -> RopeTables<B> {
        let cfg = &self.core.cfg;
        let half = cfg.rope_dim / 2;
        let theta_scale = base.powf(-2.0 / cfg.rope_dim as f32);
        let freqs = self.core.weights.rope_freqs.as_deref().filter(|_| factors);
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for p in pos0..pos0 + t {
            let mut theta = p as f32;
            for i in 0..half {
                let ff = freqs.map_or(1.0, |f| f[i]);
                let angle = pos_scale * (theta / ff);
                cos.push(angle.cos());
                sin.push(angle.sin());
                theta *= theta_scale;
            }
        }
        let mk = |v| B::tensor_from_host(v, [t, 1, half], &self.device);
        (mk(cos), mk(sin))
    }
}

/// The forward pass of [`Transformer::eval`] and [`Transformer::eval_batch`] ([`run_layers`]),
/// its launches and transfers added to the model's counters; an error when paged weights faulted
/// under it ([`super::Weights::read_faults`]).
fn forward<B: ChordBackend>(
    seqs: &mut [&mut Transformer<B>],
    tokens: &[&[u32]],
    want: WantLogits,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<f32>> {
    let before = traffic();
    let core = seqs[0].core.clone();
    let faults = core.weights.read_faults();
    let out = run_layers(seqs, tokens, want, cancel);
    let used = traffic().since(before);
    let mut total = core.traffic.lock();
    *total = total.plus(used);
    if core.weights.read_faults() != faults {
        crate::bail!(
            Io,
            "the model file is shorter than when it was loaded (truncated?): a layer's weights \
             vanished while it was computed"
        );
    }
    out
}

/// The rows of every sequence's tokens stacked (`tokens[0]`'s first), each sequence's positions,
/// RoPE angles, cache writes and attention its own; the products over all rows at once.
fn run_layers<B: ChordBackend>(
    seqs: &mut [&mut Transformer<B>],
    tokens: &[&[u32]],
    want: WantLogits,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<f32>> {
    let core = seqs[0].core.clone();
    let device = seqs[0].device.clone();
    let vecs = seqs[0].vecs.clone();
    let cfg = &core.cfg;
    let w = &core.weights;
    let d = cfg.n_embd;
    // Each sequence's rows: `starts[i]..starts[i] + tokens[i].len()`, at its positions `pos0[i]..`.
    let mut starts = Vec::with_capacity(seqs.len());
    let mut t = 0;
    for toks in tokens {
        starts.push(t);
        t += toks.len();
    }
    let pos0: Vec<usize> = seqs.iter().map(|s| s.n_past).collect();
    for (s, toks) in seqs.iter().zip(tokens) {
        debug_assert!(!toks.is_empty() && s.n_past + toks.len() <= s.n_ctx);
    }
    let all: Vec<u32> = tokens.concat();
    let mut emb = vec![0f32; t * d];
    w.embed_rows(&all, &mut emb)?;
    if let Some(s) = cfg.embed_scale {
        // ggml_scale: one f32 multiplication per value.
        emb.iter_mut().for_each(|v| *v *= s);
    }
    let mut x = B::tensor_from_host(emb, [t, d], &device);
    let tables = |base: f32, scale: f32, factors: bool| -> RopeTables<B> {
        let parts: Vec<RopeTables<B>> = seqs
            .iter()
            .zip(tokens)
            .map(|(s, toks)| s.rope_tables(s.n_past, toks.len(), base, scale, factors))
            .collect();
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let (cos, sin): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        (Tensor::cat(cos, 0), Tensor::cat(sin, 0))
    };
    let rope = tables(cfg.rope_base, cfg.rope_pos_scale, true);
    let rope_swa = cfg.swa.as_ref().map(|s| tables(s.rope_base, 1.0, false));
    // The rows whose outputs `want` names: every row, or each sequence's last.
    let last_rows = |x: Tensor<B, 2>| -> Tensor<B, 2> {
        let rows: Vec<Tensor<B, 2>> = starts
            .iter()
            .zip(tokens)
            .map(|(&s, toks)| x.clone().narrow(0, s + toks.len() - 1, 1))
            .collect();
        Tensor::cat(rows, 0)
    };

    // A block's output waiting to be added to the residual stream `x`: the next norm adds it in
    // the same pass (`add_rms_norm`).
    let mut pending: Option<Tensor<B, 2>> = None;
    for l in 0..cfg.n_layer {
        if cancel() {
            crate::bail!(Cancelled, "cancelled");
        }
        let lv = &vecs.layers[l];
        // A layer the device keeps whole needs no host bytes (the pager of a GPU model holds none
        // of its pinned units): the file image's handles give the shapes.
        let lw = match lv.kept_whole() {
            true => super::weights::LayerRef::Resident(&w.layers[l]),
            false => w.layer(l)?,
        };
        let on_device = match w.layer_pinned(l) {
            true => Streamed::Kept(&lv.matrices),
            false => Streamed::upload::<B>(&lw.matrices(), &device)?,
        };
        let window = cfg.swa.as_ref().filter(|s| s.layers[l]);
        let h = match pending.take() {
            Some(o) => {
                let (sum, h) = B::add_rms_norm(x, o, &lv.attn_norm, cfg.rms_eps);
                x = sum;
                h
            }
            None => B::rms_norm(x.clone(), &lv.attn_norm, cfg.rms_eps),
        };
        let (nq, ngu) = (lw.qkv.count(), lw.gate_up.count());
        let [mut q, mut k, mut v] = project(h, &lw.qkv, |i| on_device.get(i))?;
        if let Some([bq, bk, bv]) = &lv.qkv_bias {
            q = q + bq.clone();
            k = k + bk.clone();
            v = v + bv.clone();
        }
        if let Some([qn, kn]) = &lv.qk_norm {
            // Each head normalized over its own values (llama.cpp's build_norm on [head_dim,
            // heads, tokens]).
            let hd = cfg.head_dim;
            q = B::rms_norm(q.reshape([t * cfg.n_head, hd]), qn, cfg.rms_eps);
            k = B::rms_norm(k.reshape([t * cfg.n_head_kv, hd]), kn, cfg.rms_eps);
        }
        let mode = cfg.arch.rope;
        let (cos, sin) = match (window, &rope_swa) {
            (Some(_), Some(r)) => r,
            _ => &rope,
        };
        let rot = |x: Tensor<B, 2>, heads| {
            let x = x.reshape([t, heads, cfg.head_dim]);
            B::rope(x, cos, sin, cfg.rope_dim, mode)
        };
        let (mut q, k) = (rot(q, cfg.n_head), rot(k, cfg.n_head_kv));
        let v = v.reshape([t, cfg.n_head_kv, cfg.head_dim]);
        // llama.cpp: kq_scale = 1.0f / sqrtf(float(n_embd_head)) in the softmax, or (Gemma)
        // ggml_scale of the queries and a kq_scale of 1.
        let mut scores = Scores {
            scale: cfg.attn_scale,
            softcap: cfg.attn_softcap,
            window: window.map(|s| s.window),
        };
        if cfg.arch.scale_queries {
            q = q.mul_scalar(cfg.attn_scale);
            scores.scale = 1.0;
        }
        let attn = if seqs.len() == 1 {
            B::kv_store(&mut seqs[0].cache[l], pos0[0], k, v);
            B::kv_attention(q, &seqs[0].cache[l], pos0[0], &scores)
        } else {
            let mut parts = Vec::with_capacity(seqs.len());
            for (i, s) in seqs.iter_mut().enumerate() {
                let (r, n) = (starts[i], tokens[i].len());
                let cache = &mut s.cache[l];
                B::kv_store(
                    cache,
                    pos0[i],
                    k.clone().narrow(0, r, n),
                    v.clone().narrow(0, r, n),
                );
                parts.push(B::kv_attention(
                    q.clone().narrow(0, r, n),
                    cache,
                    pos0[i],
                    &scores,
                ));
            }
            Tensor::cat(parts, 0)
        };
        let mut out = B::qmatmul(attn, &lw.wo, on_device.get(nq))?;
        if let Some([an, _]) = &lv.post_norm {
            out = B::rms_norm(out, an, cfg.rms_eps);
        }
        if l + 1 == cfg.n_layer {
            // The last layer's feed-forward only feeds the logits: like llama.cpp (its
            // `inp_out_ids`), run it on the positions whose logits are wanted, so that the
            // products take the same (single-row) path as there, and not at all for none.
            match want {
                WantLogits::None => break,
                WantLogits::Last if x.dims()[0] > seqs.len() => {
                    x = last_rows(x);
                    out = last_rows(out);
                }
                WantLogits::Last | WantLogits::All | WantLogits::Hidden => {}
            }
        }
        let (sum, h) = B::add_rms_norm(x, out, &lv.ffn_norm, cfg.rms_eps);
        x = sum;
        let [gate, up] = project(h, &lw.gate_up, |i| on_device.get(nq + 1 + i))?;
        let down = on_device.get(nq + 1 + ngu);
        let mut out = B::qmatmul(B::glu(gate, up, cfg.arch.glu), &lw.w_down, down)?;
        if let Some([_, fnorm]) = &lv.post_norm {
            out = B::rms_norm(out, fnorm, cfg.rms_eps);
        }
        pending = Some(out);
    }
    for (s, toks) in seqs.iter_mut().zip(tokens) {
        s.n_past += toks.len();
    }

    let x = match want {
        WantLogits::None => return Ok(Vec::new()),
        // Already one row per sequence unless the model has no layers (then nothing is pending).
        WantLogits::Last if x.dims()[0] > seqs.len() => last_rows(x),
        _ => x,
    };
    let x = match pending {
        Some(o) => B::add_rms_norm(x, o, &vecs.output_norm, cfg.rms_eps).1,
        None => B::rms_norm(x, &vecs.output_norm, cfg.rms_eps),
    };
    if want == WantLogits::Hidden {
        return read_f32(x, "hidden states");
    }
    let mut logits = output_head(x, w, &vecs.output, &device, cfg.n_vocab)?;
    if let Some(cap) = cfg.final_softcap {
        // ggml_scale by 1/cap, ggml_tanh, ggml_scale by cap.
        let inv = 1.0 / cap;
        logits.iter_mut().for_each(|v| *v = (*v * inv).tanh() * cap);
    }
    Ok(logits)
}

/// Bytes of logits computed at once: a device's buffers may be small (lavapipe's end at 128 MiB)
/// and a 256k vocabulary makes 1 MiB of logits a position, so a prefill that wants every
/// position's logits computes them this many at a time.
const LOGITS_BYTES: usize = 64 << 20;

/// The logits of the rows of `x` (normed): the output head's chunks (one unless paged; `kept`
/// holds those the device keeps) over at most [`LOGITS_BYTES`] of logits at a time, assembled on
/// the host.
fn output_head<B: ChordBackend>(
    x: Tensor<B, 2>,
    w: &Weights,
    kept: &[Option<B::Matrix>],
    device: &B::Device,
    n_vocab: usize,
) -> Result<Vec<f32>> {
    let n_rows = x.dims()[0];
    let per = (LOGITS_BYTES / (4 * n_vocab).max(1)).clamp(1, n_rows.max(1));
    let on_device = |i: usize, chunk: &super::QWeight| match w.output_chunk_pinned(i) {
        true => Ok(Streamed::Kept(kept.get(i..i + 1).unwrap_or(&[]))),
        false => Streamed::upload::<B>(&[chunk], device),
    };
    // A chunk the device keeps needs no host bytes (see the layers in `run_layers`).
    let chunk = |i: usize| match kept.get(i) {
        Some(Some(_)) => Ok(w.output_chunk_unpaged(i)),
        _ => w.output_chunk(i),
    };
    if w.n_output_chunks() == 1 && per == n_rows {
        let chunk = chunk(0)?;
        let on = on_device(0, &chunk)?;
        return read_f32(B::qmatmul(x, &chunk, on.get(0))?, "logits");
    }
    let mut logits = vec![0f32; n_rows * n_vocab];
    let mut col = 0;
    for i in 0..w.n_output_chunks() {
        let chunk = chunk(i)?;
        let on = on_device(i, &chunk)?;
        for start in (0..n_rows).step_by(per) {
            let len = per.min(n_rows - start);
            let xs = x.clone().narrow(0, start, len);
            let part = read_f32(B::qmatmul(xs, &chunk, on.get(0))?, "logits")?;
            for (r, row) in part.chunks_exact(chunk.rows).enumerate() {
                logits[(start + r) * n_vocab + col..][..chunk.rows].copy_from_slice(row);
            }
        }
        col += chunk.rows;
    }
    Ok(logits)
}

/// The values of `x`, read back from its device.
fn read_f32<B: ChordBackend>(x: Tensor<B, 2>, what: &str) -> Result<Vec<f32>> {
    B::tensor_to_host(x).map_err(|e| {
        crate::Error::new(
            crate::ErrorCode::Internal,
            format!("reading {what}: {}", e.message()),
        )
    })
}

/// The products of `x` with each projection of `p` (matrix `i`'s device copy `on_device(i)`, in
/// [`Proj::matrices`] order); a fused matrix's product is split by columns (llama.cpp's views of
/// the fused result).
fn project<'a, B: ChordBackend, const N: usize>(
    x: Tensor<B, 2>,
    p: &Proj<N>,
    on_device: impl Fn(usize) -> Option<&'a B::Matrix>,
) -> Result<[Tensor<B, 2>; N]> {
    match p {
        Proj::Split(ws) => {
            let mut out = Vec::with_capacity(N);
            for (i, w) in ws.iter().enumerate() {
                out.push(B::qmatmul(x.clone(), w, on_device(i))?);
            }
            Ok(out
                .try_into()
                .unwrap_or_else(|_| unreachable!("N products")))
        }
        Proj::Fused(w, widths) => {
            let all = B::qmatmul(x, w, on_device(0))?;
            let mut start = 0;
            Ok(widths.map(|n| {
                start += n;
                all.clone().narrow(1, start - n, n)
            }))
        }
    }
}
