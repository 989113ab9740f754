//! Random GGUF-encoded matrices for kernel tests and benchmarks: random bytes, with every f16
//! scale field overwritten by a sane value (some negative, some subnormal, some zero), so that
//! no dequantized value is NaN or infinite.

use chord::quant::GgmlType;

/// `rows x cols` values of `ty` (a quantized format, or F32, F16, BF16) from `seed`.
pub fn random_matrix(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*: enough for test data, and the same bytes on every machine.
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let ts = ty.type_size();
    let n = rows * cols / ty.block_size();
    let mut bytes: Vec<u8> = (0..n * ts).map(|_| (next() >> 32) as u8).collect();
    // Floats: values of -2..2 (BF16: an f32's top half).
    let float = |r: u64| (r >> 40) as f32 / (1u64 << 22) as f32 - 2.0;
    match ty {
        GgmlType::F32 => {
            return (0..n).flat_map(|_| float(next()).to_le_bytes()).collect();
        }
        GgmlType::BF16 => {
            return (0..n)
                .flat_map(|_| ((float(next()).to_bits() >> 16) as u16).to_le_bytes())
                .collect();
        }
        _ => {}
    }
    // Byte offsets of the f16 scale fields in each block.
    let fields: &[usize] = match ty {
        GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::F16 => &[0],
        GgmlType::Q6_K => &[208],
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 => &[0, 2],
        _ => panic!("no random blocks for {}", ty.name()),
    };
    for (i, b) in bytes.chunks_exact_mut(ts).enumerate() {
        for &at in fields {
            let r = next();
            let h = match i % 61 {
                0 => 0,                                 // zero
                1 => (r & 0x3ff) as u16 | 1,            // positive subnormal
                2 => 0x8000 | ((r & 0x3ff) as u16 | 1), // negative subnormal
                // A normal f16 of 2^-12 .. 2^-4, either sign: exponent field 3..=11.
                _ => {
                    ((r >> 63) as u16) << 15
                        | ((3 + (r >> 40) % 9) as u16) << 10
                        | (r & 0x3ff) as u16
                }
            };
            b[at..at + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    bytes
}
