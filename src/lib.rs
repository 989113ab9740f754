//! chord: runs LLaMA-family GGUF models inside other programs.
//!
//! Module map (see shared/design/architecture.md):
//! * [`error`]: the error type and its stable codes.
//! * [`gguf`]: the memory-mapped GGUF reader.
//! * [`quant`]: tensor formats, dequantization and quantized products.
//! * [`tokenizer`]: text to tokens and back.

pub mod error;
pub mod gguf;
pub mod quant;
pub mod tokenizer;

pub use error::{Error, ErrorCode, Result};
