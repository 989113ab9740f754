//! Sessions: a KV cache and token history over a shared model, prompt processing, logits, the
//! generation loop with streaming UTF-8 text and stop conditions, rollback, and per-call counters.
//!
//! [`Session`] is the single-threaded state; [`SessionHandle`] ([`handle`]) guards it for use from
//! many threads (busy detection, cancellation, background generation polled for events) and
//! [`state`] saves and restores it.

mod engine;
pub mod handle;
pub mod sampler;
pub mod state;
mod stop;

pub use crate::backend::KvType;
pub use handle::{Event, SessionHandle};
pub use sampler::{logprobs, Logprobs, NoVocab, Sampler, SamplerParams, TokenBytes};

use crate::bail;
use crate::error::Result;
use crate::model::{prompt_cache, Model, Pooling, PromptCache, WantLogits};
use crate::tokenizer::Utf8Stream;
use engine::Engine;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stop::StopMatcher;

/// Default context length when neither the caller nor a smaller training context sets one.
pub const DEFAULT_N_CTX: usize = 4096;

/// Options for [`Session::new`].
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Context length in tokens; 0 means the model's training context, at most [`DEFAULT_N_CTX`].
    pub n_ctx: usize,
    /// Most tokens per forward batch during prompt processing; 0 means 512.
    pub n_batch: usize,
    /// Precision of the KV cache (f16 by default, as llama.cpp).
    pub kv_type: KvType,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Stop when the text contains one of these; the stop string itself is not emitted.
    pub stop: Vec<String>,
    /// Emit the text of control tokens (e.g. `<|im_end|>`) instead of nothing.
    pub render_special: bool,
    /// With N > 0, each token comes with its log-probability and the N most likely tokens'
    /// ([`Logprobs`]); 0 computes none.
    pub logprobs: usize,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 128,
            stop: Vec::new(),
            render_special: false,
            logprobs: 0,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop string appeared.
    StopString,
    /// The callback asked to stop.
    Callback,
    /// The context is full.
    ContextFull,
}

/// What the generation loop hands to its consumer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output<'a> {
    /// A generated token and the text that became complete with it: whole UTF-8 characters,
    /// without any stop string; empty while text is held back (a split character, or the possible
    /// start of a stop string). The consumer returns false to stop.
    Token {
        /// The token id.
        id: u32,
        /// Text completed by this token (may be empty).
        text: &'a str,
        /// The step's log-probabilities, when [`GenerateParams::logprobs`] asks for them.
        logprobs: Option<&'a Logprobs>,
    },
    /// At the end of generation (not after a stop string, a consumer stop or an error): text
    /// held back until then. Never empty.
    Tail(&'a str),
}

/// Counters of one call, or summed over calls, for the host's display.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Prompt tokens processed.
    pub prefill_tokens: usize,
    /// Time spent processing them.
    pub prefill_time: Duration,
    /// Tokens generated.
    pub decode_tokens: usize,
    /// Time spent generating them (forward passes and sampling).
    pub decode_time: Duration,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.prefill_tokens += o.prefill_tokens;
        self.prefill_time += o.prefill_time;
        self.decode_tokens += o.decode_tokens;
        self.decode_time += o.decode_time;
    }
}

/// A conversation state over a model. Use from one thread at a time.
pub struct Session {
    model: Arc<Model>,
    engine: Box<dyn Engine>,
    n_ctx: usize,
    n_batch: usize,
    tokens: Vec<u32>,
    logits: Vec<f32>,
    stats: Stats,
    total: Stats,
    fingerprint: std::cell::OnceCell<u64>,
    _recycle: crate::recycle::InUse,
}

impl Session {
    /// Creates a session with an empty context.
    pub fn new(model: Arc<Model>, opts: &SessionOptions) -> Result<Session> {
        let core = model.core()?.clone();
        let n_ctx = match opts.n_ctx {
            0 => core.cfg.n_ctx_train.min(DEFAULT_N_CTX),
            n if n > 1 << 20 => bail!(InvalidArgument, "context length {n} is too large"),
            n => n,
        };
        let n_batch = if opts.n_batch == 0 { 512 } else { opts.n_batch };
        let engine = engine::create(core, n_ctx, opts.kv_type, model.backend())?;
        Ok(Session {
            model,
            engine,
            n_ctx,
            n_batch,
            tokens: Vec::new(),
            logits: Vec::new(),
            stats: Stats::default(),
            total: Stats::default(),
            fingerprint: std::cell::OnceCell::new(),
            _recycle: crate::recycle::InUse::new(),
        })
    }

    /// The precision of the KV cache.
    pub fn kv_type(&self) -> KvType {
        self.engine.kv_type()
    }

    /// A new session over the same model holding this one's context: its tokens, their KV cache
    /// and its logits, without computing anything; the same context length and batch size, and
    /// counters at zero. The two then go their own ways. On the CPU's f16 cache the fork shares
    /// the memory of the positions it was given with this session (and any other forks) instead
    /// of copying it: each holds only the blocks of 16 positions it writes itself (the block
    /// holding the last position is copied by the first session to write into it). Forks of forks
    /// share alike; freeing any of them in any order leaves the others whole.
    pub fn fork(&self) -> Session {
        Session {
            model: self.model.clone(),
            engine: self.engine.fork(),
            n_ctx: self.n_ctx,
            n_batch: self.n_batch,
            tokens: self.tokens.clone(),
            logits: self.logits.clone(),
            stats: Stats::default(),
            total: Stats::default(),
            fingerprint: self.fingerprint.clone(),
            _recycle: crate::recycle::InUse::new(),
        }
    }

    /// Bytes of memory the KV cache holds now, memory shared with forks counted as this session's
    /// share (a block held by k sessions counts 1/k in each), so that the figures of sessions
    /// sharing memory add up to what they hold together.
    pub fn kv_bytes(&self) -> f64 {
        self.engine.kv_bytes()
    }

    /// A hash identifying the model file's header, metadata and tensor index ([`state`]).
    pub fn model_fingerprint(&self) -> u64 {
        *self
            .fingerprint
            .get_or_init(|| state::model_fingerprint(&self.model))
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Context capacity in tokens.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Tokens in the context.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Counters of the last `append_*` or `generate` call (an append counts prompt tokens only,
    /// a generate generated tokens only; a failed call counts what it did before failing).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Counters summed over every call since the session was created (not cleared by
    /// [`Session::reset`] or [`Session::truncate`]).
    pub fn total_stats(&self) -> Stats {
        self.total
    }

    fn record(&mut self, st: Stats) {
        self.stats = st;
        self.total.add(&st);
    }

    /// Logits of the last evaluated positions (`rows x n_vocab`; one row unless the last append
    /// asked for all positions). Empty before anything was evaluated.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Empties the context.
    pub fn reset(&mut self) {
        self.engine.truncate(0);
        self.tokens.clear();
        self.logits.clear();
    }

    /// Rolls the context back to its first `n` tokens (the KV cache forgets the rest). When `n`
    /// is less than the number of tokens the logits are dropped: append at least one token before
    /// generating again. `InvalidArgument` when `n` exceeds the number of tokens.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        let len = self.tokens.len();
        if n > len {
            bail!(
                InvalidArgument,
                "cannot truncate to {n} tokens: the context holds {len}"
            );
        }
        if n < len {
            self.engine.truncate(n);
            self.tokens.truncate(n);
            self.logits.clear();
        }
        Ok(())
    }

    /// Evaluates `tokens` after the context. With `all_logits`, keeps the logits of every one of
    /// them, else of the last. On error (bad id, full context, cancel) the context is unchanged.
    pub fn append_tokens(
        &mut self,
        tokens: &[u32],
        all_logits: bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        let want = if all_logits {
            WantLogits::All
        } else {
            WantLogits::Last
        };
        if !tokens.is_empty() {
            self.logits = self.append(tokens, want, cancel)?;
        }
        Ok(())
    }

    /// Checks that `tokens` are in the vocabulary and fit the context.
    fn check_fits(&self, tokens: &[u32]) -> Result<()> {
        let n_vocab = self.model.tokenizer().n_vocab();
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            bail!(
                InvalidToken,
                "token id {bad} is outside the vocabulary ({n_vocab} tokens)"
            );
        }
        if self.tokens.len() + tokens.len() > self.n_ctx {
            bail!(
                ContextFull,
                "{} tokens do not fit: the context holds {} of {}",
                tokens.len(),
                self.tokens.len(),
                self.n_ctx
            );
        }
        Ok(())
    }

    /// Evaluates `tokens` (at least one) after the context in batches of `n_batch`, the last
    /// batch as `want` asks (the others too for every-position outputs), and returns what they
    /// output. A prompt appended to an empty context for its last logits goes through the model's
    /// prompt cache, when it has one: the longest prefix stored there is copied in instead of
    /// computed, and the prompt is stored. Counts the call's prefill (the positions computed). On
    /// error the context is unchanged and has no logits.
    fn append(
        &mut self,
        tokens: &[u32],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>> {
        self.check_fits(tokens)?;
        let start = Instant::now();
        let before = self.tokens.len();
        self.logits.clear();
        let model = self.model.clone();
        let cache = model
            .prompt_cache()
            .filter(|_| before == 0 && want == WantLogits::Last);
        let result = cache
            .map_or(Ok(0), |c| self.reuse_prefix(c, tokens))
            .and_then(|n| Ok((n, self.eval_batches(&tokens[n..], want, cancel)?)));
        match (&result, cache) {
            (Err(_), _) => {
                self.engine.truncate(before);
                self.tokens.truncate(before);
            }
            (Ok(_), Some(c)) => {
                if let Err(e) = self.store_prompt(c) {
                    crate::log!(Warn, "prompt cache: cannot store the prompt: {e}");
                }
            }
            (Ok(_), None) => {}
        }
        self.record(Stats {
            prefill_tokens: result.as_ref().map_or(0, |(n, _)| tokens.len() - n),
            prefill_time: start.elapsed(),
            ..Stats::default()
        });
        result.map(|(_, out)| out)
    }

    /// Takes into the empty context the longest prefix of `tokens` that `cache` holds (sharing its
    /// memory: [`Engine::fork_from`]), and returns its length (0 when none). At least the last two
    /// tokens are left to compute: the logits need the last one, and a batch of one token takes
    /// the single-row kernels, whose rounding differs from that of the batches that computed the
    /// stored positions.
    fn reuse_prefix(&mut self, cache: &PromptCache, tokens: &[u32]) -> Result<usize> {
        let Some((entry, common)) = cache.find(tokens, self.engine.kv_type()) else {
            return Ok(0);
        };
        let n = common.min(tokens.len().saturating_sub(2));
        if n == 0 || !self.engine.fork_from(&**entry.state.lock(), n)? {
            return Ok(0);
        }
        self.tokens.extend_from_slice(&tokens[..n]);
        cache.record_reuse(n);
        crate::log!(
            Debug,
            "prompt cache: {n} of {} prompt tokens taken from a stored prompt",
            tokens.len()
        );
        Ok(n)
    }

    /// Stores the context (a prompt just prefilled into an empty one) in `cache`, unless it is
    /// short or an entry already starts with it: a fork of the transformer state, sharing its
    /// memory with this session.
    fn store_prompt(&self, cache: &PromptCache) -> Result<()> {
        let kv_type = self.engine.kv_type();
        if self.tokens.len() < prompt_cache::MIN_TOKENS || cache.covers(&self.tokens, kv_type) {
            return Ok(());
        }
        let per_token = self.model.core()?.cfg.kv_bytes_per_token(kv_type);
        let state: Box<dyn std::any::Any + Send> = self.engine.fork();
        cache.insert(prompt_cache::Entry {
            tokens: self.tokens.clone(),
            kv_type,
            state: parking_lot::Mutex::new(state),
            kv_bytes: self.tokens.len() * per_token,
        });
        Ok(())
    }

    fn eval_batches(
        &mut self,
        tokens: &[u32],
        want: WantLogits,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>> {
        let mut output = Vec::new();
        let chunks: Vec<&[u32]> = tokens.chunks(self.n_batch).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let want = match want {
                WantLogits::Last if i + 1 < chunks.len() => WantLogits::None,
                w => w,
            };
            let engine = &mut self.engine;
            let out = self.model.run(|| engine.eval(chunk, want, cancel))?;
            output.extend_from_slice(&out);
            self.tokens.extend_from_slice(chunk);
        }
        Ok(output)
    }

    /// The embedding of `text`: its tokens' final hidden states (after the output norm) pooled as
    /// `pooling` says (`None`: as the model's file says, else the mean), scaled to unit length when
    /// `normalize`. `add_special` and `parse_special` tokenize as for [`Session::append_text`].
    ///
    /// The context is emptied first and afterwards holds the text's tokens without logits (append
    /// before generating); a text that does not fit the context, or has no tokens, is refused
    /// before anything changes. On cancel or another error the context is empty.
    pub fn embed(
        &mut self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        pooling: Option<Pooling>,
        normalize: bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>> {
        let core = self.model.core()?.clone();
        let pooling = match pooling {
            Some(p) => p,
            None => Pooling::from_file(core.cfg.pooling_type)?.unwrap_or(Pooling::Mean),
        };
        let toks = self
            .model
            .tokenizer()
            .encode(text, add_special, parse_special)?;
        if toks.is_empty() {
            bail!(InvalidArgument, "the text has no tokens to embed");
        }
        if toks.len() > self.n_ctx {
            bail!(
                ContextFull,
                "{} tokens do not fit a context of {}",
                toks.len(),
                self.n_ctx
            );
        }
        self.reset();
        let hidden = self.append(&toks, WantLogits::Hidden, cancel)?;
        let mut v = pooling.pool(&hidden, core.cfg.n_embd);
        if normalize {
            crate::model::normalize(&mut v);
        }
        Ok(v)
    }

    /// Appends one token to each of `sessions` (all over one model) in one forward pass: for each
    /// session the same as `append_tokens(&[tokens[i]], false, ..)`, but the weights are read once
    /// for all of them, which is what makes decoding many sessions at once fast. Afterwards each
    /// session's logits are those of its token, to sample its next one from: bit-identical to
    /// decoding alone where the batched product rounds each row as a single row's (see
    /// `chord_session_decode_batch`).
    ///
    /// Every session is checked first (token id, context space, one model); on such an error no
    /// session changes. `cancelled(i)` tells whether session i was cancelled: a cancelled session
    /// is left out of the step as a cancelled append leaves it (context unchanged, no logits)
    /// while the others are decoded, and the call then returns `Cancelled` naming it; when every
    /// session is cancelled the pass stops at its next layer, each left so.
    pub fn decode_batch(
        sessions: &mut [&mut Session],
        tokens: &[u32],
        cancelled: &(dyn Fn(usize) -> bool + Sync),
    ) -> Result<()> {
        if sessions.len() != tokens.len() {
            bail!(
                InvalidArgument,
                "{} sessions but {} tokens: a batch takes one token per session",
                sessions.len(),
                tokens.len()
            );
        }
        let Some(first) = sessions.first() else {
            return Ok(());
        };
        let model = first.model.clone();
        if sessions.iter().any(|s| !Arc::ptr_eq(&s.model, &model)) {
            bail!(
                InvalidArgument,
                "the sessions of a batch must share one model"
            );
        }
        for (s, &t) in sessions.iter().zip(tokens) {
            s.check_fits(&[t])?;
        }
        let start = Instant::now();
        let lists: Vec<&[u32]> = tokens.iter().map(std::slice::from_ref).collect();
        let n = sessions.len();
        let all_cancelled = || (0..n).all(cancelled);
        let logits = {
            let mut engines: Vec<&mut (dyn engine::Engine + 'static)> =
                sessions.iter_mut().map(|s| s.engine.as_mut()).collect();
            let run = || engine::eval_batch(&mut engines, &lists, WantLogits::Last, &all_cancelled);
            match model.run(run) {
                Ok(l) => l,
                Err(e) => {
                    // The pass stopped before its end (every session cancelled, or an internal
                    // error): each session's context is unchanged (the cache positions written
                    // are past its length), without logits, as after a failed append.
                    for s in sessions.iter_mut() {
                        s.logits.clear();
                    }
                    return Err(e);
                }
            }
        };
        let n_vocab = logits.len() / n;
        let elapsed = start.elapsed();
        let mut left_out = Vec::new();
        for (i, ((s, &t), row)) in sessions
            .iter_mut()
            .zip(tokens)
            .zip(logits.chunks_exact(n_vocab))
            .enumerate()
        {
            if cancelled(i) {
                // Rolled back as a cancelled append is: the position computed is forgotten.
                s.engine.truncate(s.tokens.len());
                s.logits.clear();
                left_out.push(i.to_string());
                continue;
            }
            s.logits = row.to_vec();
            s.tokens.push(t);
            s.record(Stats {
                decode_tokens: 1,
                decode_time: elapsed,
                ..Stats::default()
            });
        }
        if !left_out.is_empty() {
            bail!(
                Cancelled,
                "session(s) {} of the batch were cancelled and left out of the step; the others \
                 decoded their token",
                left_out.join(", ")
            );
        }
        Ok(())
    }

    /// Tokenizes `text` and appends it; returns the number of tokens. `add_special` adds the
    /// model's BOS/EOS as its file asks (only at the start of an empty context); `parse_special`
    /// recognises special-token text such as `<|im_start|>`.
    pub fn append_text(
        &mut self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<usize> {
        let add = add_special && self.tokens.is_empty();
        let toks = self.model.tokenizer().encode(text, add, parse_special)?;
        self.append_tokens(&toks, false, cancel)?;
        Ok(toks.len())
    }

    /// Generates up to `params.max_tokens` tokens, calling `on_out` with each token and the
    /// complete UTF-8 text it brings (never a split character), and at the end with any text held
    /// back; `on_out` returns false to stop. The context must not have been truncated since its
    /// last append (there must be logits). Returns why it stopped; [`Session::stats`] has the
    /// counters.
    ///
    /// Cancel is checked before each token and between the layers of each forward pass; a
    /// cancelled generation returns `Cancelled` and keeps the tokens generated before it (the
    /// token whose forward pass was interrupted is not added).
    pub fn generate(
        &mut self,
        params: &GenerateParams,
        sampler: &mut Sampler,
        on_out: &mut dyn FnMut(Output<'_>) -> bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<StopReason> {
        if self.logits.is_empty() {
            bail!(
                InvalidArgument,
                "there are no logits to generate from: append a prompt (after a truncate, at least one token) first"
            );
        }
        let start = Instant::now();
        let mut generated = 0;
        let result = self.generate_loop(params, sampler, on_out, cancel, &mut generated);
        self.record(Stats {
            decode_tokens: generated,
            decode_time: start.elapsed(),
            ..Stats::default()
        });
        result
    }

    fn generate_loop(
        &mut self,
        params: &GenerateParams,
        sampler: &mut Sampler,
        on_out: &mut dyn FnMut(Output<'_>) -> bool,
        cancel: &(dyn Fn() -> bool + Sync),
        generated: &mut usize,
    ) -> Result<StopReason> {
        let n_vocab = self.model.tokenizer().n_vocab();
        let mut stream = Utf8Stream::new();
        let mut stop = StopMatcher::new(&params.stop);
        let reason = loop {
            if *generated >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if cancel() {
                bail!(Cancelled, "generation cancelled");
            }
            let last = &self.logits[self.logits.len() - n_vocab..];
            let vocab = self.model.tokenizer();
            let tok = sampler.sample(last, &self.tokens, vocab)?;
            if vocab.is_eog(tok) {
                break StopReason::EndOfGeneration;
            }
            if self.tokens.len() >= self.n_ctx {
                break StopReason::ContextFull;
            }
            sampler.accept(tok, vocab)?;
            let lp = (params.logprobs > 0).then(|| logprobs(last, tok, params.logprobs));
            let engine = &mut self.engine;
            self.logits = self
                .model
                .run(|| engine.eval(&[tok], WantLogits::Last, cancel))?;
            self.tokens.push(tok);
            *generated += 1;
            let piece = self
                .model
                .tokenizer()
                .token_to_piece(tok, params.render_special);
            let text = stream.push(&piece);
            let (emit, hit) = stop.push(&text);
            if !on_out(Output::Token {
                id: tok,
                text: &emit,
                logprobs: lp.as_ref(),
            }) {
                break StopReason::Callback;
            }
            if hit {
                break StopReason::StopString;
            }
        };
        if !matches!(reason, StopReason::StopString | StopReason::Callback) {
            let rest = stop.finish(&stream.finish());
            if !rest.is_empty() {
                on_out(Output::Tail(&rest));
            }
        }
        Ok(reason)
    }
}
