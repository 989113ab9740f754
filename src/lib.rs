//! chord: runs LLaMA-family GGUF models inside other programs.
//!
//! Module map (see shared/design/architecture.md):
//! * [`error`]: the error type and its stable codes.
//! * [`log`]: the host-installed log sink and the level filter.
//! * [`gguf`]: the GGUF reader (the file mapped or read into memory).
//! * [`quant`]: tensor formats, dequantization and quantized products.
//! * [`tokenizer`]: text to tokens and back.
//! * [`model`]: hyperparameters, weights and the transformer forward pass.
//! * [`pager`]: layers paged in from the file under a memory budget, with prefetch.
//! * [`attn`]: attention over the f16 KV cache, as llama.cpp computes it.
//! * [`backend`]: the Burn backends and chord's operations on them.
//! * [`session`]: KV cache, sampling and the generation loop.
//! * [`grammar`]: GBNF grammars that constrain sampling.
//! * [`recycle`]: the global allocator (the system one plus a bounded cache of freed large blocks).
//! * [`chat`]: chat templates (Jinja, rendered with minijinja).
//! * [`ffi`]: the C ABI (`include/chord.h` is generated from it).

#![warn(missing_docs)]

pub mod attn;
pub mod backend;
pub mod chat;
pub mod error;
pub mod ffi;
pub mod gguf;
pub mod grammar;
pub mod huge;
pub mod log;
pub mod model;
pub mod pager;
pub mod quant;
pub mod recycle;
pub mod session;
pub mod team;
pub mod tokenizer;

pub use error::{Error, ErrorCode, Result};

/// chord's Rust allocations go through [`recycle::Recycling`] (feature `recycle-alloc`).
#[cfg(feature = "recycle-alloc")]
#[global_allocator]
static ALLOCATOR: recycle::Recycling = recycle::Recycling;
