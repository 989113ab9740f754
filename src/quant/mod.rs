//! GGML tensor formats: block layouts, reference dequantization, and the products of quantized
//! weights with f32 activations that the forward pass uses.
//!
//! * [`types`]: type ids and block geometry ([`GgmlType`]).
//! * `blocks`: byte layouts of the blocks and the shared field readers.
//! * `dequant`: bit-exact reference dequantization ([`dequantize`], [`dequantize_row`]).
//! * `act`: activation rows converted to the format each weight type multiplies with.
//! * `dot`: portable per-row dot products; `avx2`: their x86_64 AVX2 counterparts, and
//!   (`avx2::orders`) the orders of llama.cpp's repacked, tiled and tinyBLAS x86 products;
//!   `avx512`: the 8-bit products again with AVX-512 VNNI sums, same float steps, same bits.
//! * `pack`: weight layouts other than GGUF's, made once at load for the kernels that read them
//!   ([`Layout`], [`pack()`]).
//! * `kernel`: picks the dot product for a format, path and product shape; `matmul`: the threaded
//!   product, whose tasks write their blocks of the output in place (`out`). On AVX2 every format gives the same bits as llama.cpp's CPU backend built for AVX2
//!   (tests/quant_llamacpp.rs checks this against ggml itself).

mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod blocks;
mod dequant;
mod dot;
mod isa;
mod kernel;
mod matmul;
mod out;
mod pack;
mod types;

pub use dequant::{dequantize, dequantize_row};
pub use isa::{Isa, ISA_ENV};
pub use matmul::{matmul, matmul_uninit, matmul_with};
pub use pack::{pack, pack_in_place, preferred_layout, unpack_row, Layout};
pub use types::GgmlType;

#[cfg(test)]
mod orders_tests;
#[cfg(test)]
mod tests;
