//! Weight layouts other than GGUF's, made once at load for the kernels that read them: today
//! Q4_K in groups of eight rows ([`Layout::Q4KRows8`]), for the AVX2 and AVX-512 products that
//! take one weight row per i32 lane.
//!
//! In GGUF layout those products transposed each super-block of eight rows at every product
//! (about a third of the time of eight sessions decoding together on the TinyLlama-shape Q4_K_M
//! file); llama.cpp likewise repacks Q4_K at load (`block_q4_Kx8`, `ggml-cpu/repack.cpp`). The
//! packed layout has the same size as the GGUF one (1152 bytes per super-block of eight rows), so
//! a matrix's row groups stay where they were and its size in every account is unchanged; the
//! values and scales are the same numbers, only moved, so the products give the same bits.
//!
//! Q6_K packed the same way was measured and did not pay: its batch product's time is in the
//! multiplies, not the transposes (8 activation rows: 6.1 -> 6.3 GB/s of weights), and a gemv that
//! keeps llama.cpp's `vec_dot` order on packed rows was slower than on GGUF rows (13.8 -> 11.3).
//!
//! Layout of super-block `ib` of the rows `8g..8g + 8`, at byte `(8g · nb + 8 · ib) · 144` (`nb`
//! super-blocks per row), 1152 bytes:
//!
//! * `0..1024`: for `j` in 0..4 and `i` in 0..8, 32 bytes at `(8j + i) · 32`: bytes `4t..4t + 4`
//!   are row t's quant bytes `32j + 4i..32j + 4i + 4` (low nibbles: values of sub-block `2j`,
//!   high nibbles: of sub-block `2j + 1`);
//! * `1024..1040`: the eight rows' `d` (f16); `1040..1056`: their `dmin`;
//! * `1056..1120`: byte `8s + t` is row t's 6-bit scale of sub-block s, with the top two bits of
//!   its min in bits 6-7;
//! * `1120..1152`: byte `8j + t` is the low four bits of row t's mins of sub-blocks `2j` (low
//!   nibble) and `2j + 1` (high nibble).

use super::blocks;
use super::isa::Isa;
use super::GgmlType;

/// How a weight matrix's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// As in the GGUF file: row after row of blocks.
    #[default]
    Gguf,
    /// Q4_K, eight rows interleaved per super-block (see the module docs); the row count is a
    /// multiple of eight.
    Q4KRows8,
}

/// Bytes of one packed super-block of eight Q4_K rows.
pub(super) const Q4K_GROUP: usize = 8 * 144;
/// Offsets inside a packed super-block.
pub(super) const Q4K_D: usize = 1024;
pub(super) const Q4K_DMIN: usize = 1040;
pub(super) const Q4K_SC: usize = 1056;
pub(super) const Q4K_MN: usize = 1120;

/// The layout the products on `isa` read fastest for `n` rows of `ty`: [`Layout::Q4KRows8`] for
/// Q4_K with a multiple of eight rows on AVX2 and AVX-512, else GGUF's.
pub fn preferred_layout(isa: Isa, ty: GgmlType, n: usize) -> Layout {
    if isa.has_avx2() && ty == GgmlType::Q4_K && n.is_multiple_of(8) && n > 0 {
        Layout::Q4KRows8
    } else {
        Layout::Gguf
    }
}

/// `w` (`n` rows of `k` values of `ty`, GGUF layout) in `layout`, written to `out` (the same
/// length). Returns `false`, writing nothing, when the layout does not apply to this format and
/// shape.
pub fn pack(ty: GgmlType, layout: Layout, w: &[u8], n: usize, k: usize, out: &mut [u8]) -> bool {
    let Some(rb) = ty.row_bytes(k) else {
        return false;
    };
    if w.len() != n * rb || out.len() != w.len() {
        return false;
    }
    match layout {
        Layout::Gguf => out.copy_from_slice(w),
        Layout::Q4KRows8 => {
            if ty != GgmlType::Q4_K || !n.is_multiple_of(8) {
                return false;
            }
            for (src, dst) in w.chunks_exact(8 * rb).zip(out.chunks_exact_mut(8 * rb)) {
                for (ib, blk) in dst.chunks_exact_mut(Q4K_GROUP).enumerate() {
                    let rows: [&[u8]; 8] =
                        std::array::from_fn(|t| &src[t * rb + ib * 144..][..144]);
                    pack_q4k_block(&rows, blk.try_into().unwrap());
                }
            }
        }
    }
    true
}

/// [`pack`] without a second buffer of the matrix's size: `w` (GGUF layout) is rewritten in
/// `layout`, one group of eight rows at a time (a group keeps its bytes' place in the packed
/// layout, so a copy of one group is all the extra memory). For the pager's pinned units, which
/// are read into buffers of their own and must not cost the budget a second copy. Returns `false`,
/// leaving `w` as it was, where [`pack`] would.
pub fn pack_in_place(ty: GgmlType, layout: Layout, w: &mut [u8], n: usize, k: usize) -> bool {
    let Some(rb) = ty.row_bytes(k) else {
        return false;
    };
    if w.len() != n * rb {
        return false;
    }
    match layout {
        Layout::Gguf => true,
        Layout::Q4KRows8 => {
            if ty != GgmlType::Q4_K || !n.is_multiple_of(8) {
                return false;
            }
            let mut group = vec![0u8; 8 * rb];
            for dst in w.chunks_exact_mut(8 * rb) {
                group.copy_from_slice(dst);
                pack(ty, layout, &group, 8, k, dst);
            }
            true
        }
    }
}

/// Super-block `ib` of eight Q4_K rows into the packed layout.
fn pack_q4k_block(rows: &[&[u8]; 8], out: &mut [u8; Q4K_GROUP]) {
    use blocks::q4_k::*;
    for j in 0..4 {
        for i in 0..8 {
            for (t, row) in rows.iter().enumerate() {
                let at = QS + 32 * j + 4 * i;
                out[(8 * j + i) * 32 + 4 * t..][..4].copy_from_slice(&row[at..at + 4]);
            }
        }
    }
    for (t, row) in rows.iter().enumerate() {
        out[Q4K_D + 2 * t..][..2].copy_from_slice(&row[D..D + 2]);
        out[Q4K_DMIN + 2 * t..][..2].copy_from_slice(&row[DMIN..DMIN + 2]);
        let (sc, mn) = blocks::scales_mins_k4(&row[SCALES..SCALES + 12]);
        for s in 0..8 {
            out[Q4K_SC + 8 * s + t] = sc[s] | (mn[s] >> 4) << 6;
        }
        for j in 0..4 {
            out[Q4K_MN + 8 * j + t] = (mn[2 * j] & 15) | (mn[2 * j + 1] & 15) << 4;
        }
    }
}

/// Row `r` of a matrix of `n` rows of `k` values of `ty` stored in `layout`, in GGUF layout
/// (`out`: one row's bytes).
///
/// # Panics
/// When the lengths do not match the shape.
pub fn unpack_row(ty: GgmlType, layout: Layout, w: &[u8], k: usize, r: usize, out: &mut [u8]) {
    let rb = ty.row_bytes(k).expect("a valid row length");
    match layout {
        Layout::Gguf => out.copy_from_slice(&w[r * rb..(r + 1) * rb]),
        Layout::Q4KRows8 => {
            use blocks::q4_k::*;
            let (g, t) = (r / 8, r % 8);
            let group = &w[g * 8 * rb..(g + 1) * 8 * rb];
            for (ib, blk) in group.chunks_exact(Q4K_GROUP).enumerate() {
                let o = &mut out[ib * 144..(ib + 1) * 144];
                for j in 0..4 {
                    for i in 0..8 {
                        let at = QS + 32 * j + 4 * i;
                        o[at..at + 4].copy_from_slice(&blk[(8 * j + i) * 32 + 4 * t..][..4]);
                    }
                }
                o[D..D + 2].copy_from_slice(&blk[Q4K_D + 2 * t..][..2]);
                o[DMIN..DMIN + 2].copy_from_slice(&blk[Q4K_DMIN + 2 * t..][..2]);
                let sc: [u8; 8] = std::array::from_fn(|s| blk[Q4K_SC + 8 * s + t] & 63);
                let mn: [u8; 8] = std::array::from_fn(|s| {
                    let lo = blk[Q4K_MN + 8 * (s / 2) + t] >> (4 * (s % 2)) & 15;
                    lo | (blk[Q4K_SC + 8 * s + t] >> 6) << 4
                });
                o[SCALES..SCALES + 12].copy_from_slice(&pack_scales_mins_k4(&sc, &mn));
            }
        }
    }
}

/// The 12 bytes of packed 6-bit scales and mins of a Q4_K/Q5_K super-block (the inverse of
/// [`blocks::scales_mins_k4`]).
fn pack_scales_mins_k4(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = sc[j] | (sc[j + 4] >> 4) << 6;
        q[j + 4] = mn[j] | (mn[j + 4] >> 4) << 6;
        q[j + 8] = (sc[j + 4] & 15) | (mn[j + 4] & 15) << 4;
    }
    q
}
