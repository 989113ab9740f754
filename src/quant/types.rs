//! GGML tensor type ids and their block geometry.

use crate::error::{Error, ErrorCode, Result};

/// The tensor formats chord reads. Discriminants are GGML's type ids as stored in GGUF files.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgmlType {
    /// 32-bit IEEE float.
    F32 = 0,
    /// 16-bit IEEE float.
    F16 = 1,
    /// Blocks of 32: f16 scale, 4-bit values, offset -8.
    Q4_0 = 2,
    /// Blocks of 32: f16 scale and min, 4-bit values.
    Q4_1 = 3,
    /// Blocks of 32: f16 scale, 5-bit values, offset -16.
    Q5_0 = 6,
    /// Blocks of 32: f16 scale and min, 5-bit values.
    Q5_1 = 7,
    /// Blocks of 32: f16 scale, 8-bit values.
    Q8_0 = 8,
    /// Super-blocks of 256: 2-bit values with 4-bit scales and mins.
    Q2_K = 10,
    /// Super-blocks of 256: 3-bit values with 6-bit scales.
    Q3_K = 11,
    /// Super-blocks of 256: 4-bit values with 6-bit scales and mins.
    Q4_K = 12,
    /// Super-blocks of 256: 5-bit values with 6-bit scales and mins.
    Q5_K = 13,
    /// Super-blocks of 256: 6-bit values with 8-bit scales.
    Q6_K = 14,
    /// bfloat16.
    BF16 = 30,
}

impl GgmlType {
    /// Every supported type.
    pub const ALL: [GgmlType; 13] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];

    /// Maps a GGML type id to a supported type, or a `GgufUnknownType` error naming the id.
    pub fn from_id(id: u32) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| *t as u32 == id)
            .ok_or_else(|| {
                let known = match id {
                    9 => " (Q8_1)",
                    15 => " (Q8_K)",
                    16..=23 | 29 => " (an IQ format)",
                    24..=28 => " (an integer type)",
                    34..=36 => " (a ternary or MXFP format)",
                    _ => "",
                };
                Error::new(
                    ErrorCode::GgufUnknownType,
                    format!("unsupported tensor type id {id}{known}"),
                )
            })
    }

    /// Number of values in one block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => {
                32
            }
            _ => 256,
        }
    }

    /// Bytes of one block.
    pub fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
        }
    }

    /// Bytes of a row of `n` values, or `None` when `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: usize) -> Option<usize> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }

    /// The name llama.cpp uses for the type.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::BF16 => "BF16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
        }
    }
}
