//! Sessions: a KV cache and token history over a shared model, prompt processing, logits, and the
//! generation loop with streaming UTF-8 text and stop conditions.

mod engine;
pub mod sampler;
mod stop;

pub use sampler::{Sampler, SamplerParams};

use crate::bail;
use crate::error::Result;
use crate::model::{Model, WantLogits};
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
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 128,
            stop: Vec::new(),
            render_special: false,
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

/// Counters of one call, for the host's display.
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

/// A conversation state over a model. Use from one thread at a time.
pub struct Session {
    model: Arc<Model>,
    engine: Box<dyn Engine>,
    n_ctx: usize,
    n_batch: usize,
    tokens: Vec<u32>,
    logits: Vec<f32>,
    stats: Stats,
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
        let engine = engine::create(core, n_ctx, model.backend())?;
        Ok(Session {
            model,
            engine,
            n_ctx,
            n_batch,
            tokens: Vec::new(),
            logits: Vec::new(),
            stats: Stats::default(),
        })
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

    /// Counters of the last `append_*` or `generate` call.
    pub fn stats(&self) -> Stats {
        self.stats
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

    /// Evaluates `tokens` after the context. With `all_logits`, keeps the logits of every one of
    /// them, else of the last. On error (bad id, full context, cancel) the context is unchanged.
    pub fn append_tokens(
        &mut self,
        tokens: &[u32],
        all_logits: bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
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
        if tokens.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let before = self.tokens.len();
        let result = self.eval_batches(tokens, all_logits, cancel);
        if result.is_err() {
            self.engine.truncate(before);
            self.tokens.truncate(before);
            self.logits.clear();
        }
        self.stats = Stats {
            prefill_tokens: tokens.len(),
            prefill_time: start.elapsed(),
            ..Stats::default()
        };
        result
    }

    fn eval_batches(
        &mut self,
        tokens: &[u32],
        all_logits: bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        let mut logits = Vec::new();
        let chunks: Vec<&[u32]> = tokens.chunks(self.n_batch).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let want = match (all_logits, i + 1 == chunks.len()) {
                (true, _) => WantLogits::All,
                (false, true) => WantLogits::Last,
                (false, false) => WantLogits::None,
            };
            let engine = &mut self.engine;
            let out = self
                .model
                .pool()
                .install(|| engine.eval(chunk, want, cancel))?;
            logits.extend_from_slice(&out);
            self.tokens.extend_from_slice(chunk);
        }
        self.logits = logits;
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

    /// Generates up to `params.max_tokens` tokens, calling `on_text` with each complete piece of
    /// UTF-8 text (never a split character); `on_text` returns false to stop. The context must not
    /// be empty. Returns why it stopped; [`Session::stats`] has the counters.
    pub fn generate(
        &mut self,
        params: &GenerateParams,
        sampler: &mut Sampler,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<StopReason> {
        if self.logits.is_empty() {
            bail!(
                InvalidArgument,
                "the context is empty: append a prompt before generating"
            );
        }
        let n_vocab = self.model.tokenizer().n_vocab();
        let start = Instant::now();
        let mut stream = Utf8Stream::new();
        let mut stop = StopMatcher::new(&params.stop);
        let mut generated = 0;
        let reason = loop {
            if generated >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if cancel() {
                bail!(Cancelled, "generation cancelled");
            }
            let last = &self.logits[self.logits.len() - n_vocab..];
            let tok = sampler.sample(last, &self.tokens);
            if self.model.tokenizer().is_eog(tok) {
                break StopReason::EndOfGeneration;
            }
            if self.tokens.len() >= self.n_ctx {
                break StopReason::ContextFull;
            }
            let engine = &mut self.engine;
            self.logits = self
                .model
                .pool()
                .install(|| engine.eval(&[tok], WantLogits::Last, cancel))?;
            self.tokens.push(tok);
            generated += 1;
            let piece = self
                .model
                .tokenizer()
                .token_to_piece(tok, params.render_special);
            let text = stream.push(&piece);
            let (emit, hit) = stop.push(&text);
            if !emit.is_empty() && !on_text(&emit) {
                break StopReason::Callback;
            }
            if hit {
                break StopReason::StopString;
            }
        };
        if !matches!(reason, StopReason::StopString | StopReason::Callback) {
            let rest = stop.finish(&stream.finish());
            if !rest.is_empty() {
                on_text(&rest);
            }
        }
        self.stats = Stats {
            decode_tokens: generated,
            decode_time: start.elapsed(),
            ..Stats::default()
        };
        Ok(reason)
    }
}
