//! GGML tensor formats: block layouts, reference dequantization, and the products of quantized
//! weights with f32 activations that the forward pass uses.
//!
//! * [`types`]: type ids and block geometry ([`GgmlType`]).
//! * `blocks`: byte layouts of the blocks and the shared field readers.
//! * `dequant`: bit-exact reference dequantization ([`dequantize`], [`dequantize_row`]).
//! * `act`: activation rows converted to the format each weight type multiplies with.
//! * `dot`: portable per-row dot products; `avx2`: their x86_64 AVX2 counterparts.
//! * `kernel`: picks the dot product for a format and path; `matmul`: the threaded product.

mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
mod blocks;
mod dequant;
mod dot;
mod isa;
mod kernel;
mod matmul;
mod types;

pub use dequant::{dequantize, dequantize_row};
pub use isa::Isa;
pub use matmul::{matmul, matmul_with};
pub use types::GgmlType;

#[cfg(test)]
mod orders_tests;
#[cfg(test)]
mod tests;
