//! GGML tensor formats: block layouts, reference dequantization, and the products of quantized
//! weights with f32 activations that the forward pass uses.

mod types;

pub use types::GgmlType;
